//! `tapeloop run` end to end, as CI uses it: the README's command on the bundled corpus, the JSON
//! report against FORMATS.md, JUnit through a real consumer, policy overrides and baselines,
//! determinism (repeat, `--jobs`, `--partition` + `merge`), truncated and diverging cassettes,
//! bad input, `--accept`, `compare`, and terminal hygiene (no progress bar or ANSI when piped).
//!
//! Every test runs the real binary; the repository is only read (copies go to temp dirs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `tapeloop args…` in `dir`, piped (not a terminal), without CI, colour or width
/// (`COLUMNS`) variables.
fn tapeloop_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapeloop"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("COLUMNS")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tapeloop");
    let o = Out {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    };
    assert!(!o.stderr.contains("panicked"), "panic:\n{}", o.all());
    o
}

/// Run in the crate root (the fresh-clone situation).
fn tapeloop(args: &[&str]) -> Out {
    tapeloop_in(Path::new(ROOT), args, &[])
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn read_json(p: &Path) -> Value {
    json(&std::fs::read_to_string(p).unwrap())
}

/// The pretty JSON report without its `wall_ms` lines (the only nondeterministic field).
fn without_wall_ms(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("\"wall_ms\":"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every (scenario name, cassette path relative to the crate root) the corpus defines, read
/// straight from the TOML files (independently of tapeloop's loader).
fn corpus_pairs() -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("scenarios")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let doc: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        let name = doc
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned());
        for c in doc["cassettes"].as_array().unwrap() {
            let c = c.as_str().unwrap();
            let rel = c
                .strip_prefix("../")
                .expect("corpus cassettes are ../recordings/…");
            pairs.insert((name.clone(), rel.to_string()));
        }
    }
    assert!(pairs.len() >= 30, "the corpus shrank: {pairs:?}");
    pairs
}

/// Copy a corpus scenario into `dir`, pointing its cassettes at the corpus by absolute path,
/// and apply `edit` to its text.
fn copy_scenario(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let src = std::fs::read_to_string(Path::new(ROOT).join("scenarios").join(name)).unwrap();
    let recordings = format!("{ROOT}/recordings/");
    assert!(src.contains("\"../recordings/"), "{name} names no cassette");
    let text = edit(src.replace("\"../recordings/", &format!("\"{recordings}")));
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The scenario text without its `[expect]` table (which is always last in the corpus).
fn strip_expect(text: String) -> String {
    let i = text.find("\n[expect]").expect("has [expect]");
    text[..i + 1].to_string()
}

fn run_of<'a>(report: &'a Value, scenario: &str) -> &'a Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scenario"] == scenario)
        .unwrap_or_else(|| panic!("no run of {scenario}"))
}

// ------------------------------------------------------------------------------------------------
// 1. The README's command

#[test]
fn readme_command_replays_the_whole_corpus_and_prints_the_table() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(
        readme.contains("cargo run --release -- run\n"),
        "the README's main command changed; update this test"
    );
    // Issue 15: the default table is compact (provider, not cassette) and fits the terminal;
    // a wide terminal shows the names whole, so every run's row can be found by them.
    let o = tapeloop_in(Path::new(ROOT), &["run"], &[("COLUMNS", "200")]);
    assert_eq!(o.code, 0, "{}", o.all());
    let pairs = corpus_pairs();
    let header = o.stdout.lines().next().unwrap();
    for col in ["scenario", "provider", "verdict", "finish", "steps"] {
        assert!(header.contains(col), "header lacks {col}: {header}");
    }
    let report = json(&tapeloop(&["run", "--format", "json"]).stdout);
    for (scenario, cassette) in &pairs {
        let run = report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["scenario"] == scenario.as_str() && r["cassette"] == cassette.as_str())
            .expect("the run is in the JSON report");
        let provider = run["provider"].as_str().unwrap();
        let api = run["api"].as_str().unwrap();
        let label = if provider == api {
            provider.to_string()
        } else {
            format!("{provider}/{}", api.trim_start_matches("openai-"))
        };
        assert!(
            o.stdout.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.first() == Some(&scenario.as_str())
                    && cells.get(1) == Some(&label.as_str())
                    && l.contains(" PASS ")
            }),
            "no passing row for {scenario} × {label}:\n{}",
            o.stdout
        );
    }
    let n = pairs.len();
    assert!(
        o.stdout
            .contains(&format!("\n{n} runs: {n} passed, 0 failed")),
        "{}",
        o.stdout
    );
}

// ------------------------------------------------------------------------------------------------
// 2. The JSON report against FORMATS.md

fn is_uint(v: &Value) -> bool {
    v.as_u64().is_some()
}

fn expect_keys(obj: &Value, keys: &[&str], what: &str) {
    let map = obj
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {obj}"));
    for k in keys {
        assert!(map.contains_key(*k), "{what} lacks `{k}`: {obj}");
    }
}

const FINISHES: &[&str] = &[
    "completed",
    "max-steps",
    "doom-loop",
    "retries-exhausted",
    "context-overflow",
    "provider-error",
    "aborted",
    "divergence",
    "cassette-exhausted",
];
const APIS: &[&str] = &["openai-chat", "openai-responses", "anthropic", "gemini"];

fn is_detector_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let nums =
        |n: usize| parts.len() == n + 1 && parts[1..].iter().all(|p| p.parse::<u32>().is_ok());
    match parts[0] {
        "opencode" | "seed" => parts.len() == 1,
        "consecutive" | "fanout" | "no-progress" | "text-repeat" => nums(1),
        "cycle" => nums(2),
        _ => false,
    }
}

/// Structural validation of a run report against FORMATS.md "Run report".
fn validate_report(r: &Value) {
    expect_keys(r, &["tapeloop", "format", "runs", "summary"], "report");
    assert!(r["tapeloop"].is_string());
    assert_eq!(r["format"], 1, "format must be 1");
    let runs = r["runs"].as_array().expect("runs is an array");
    for run in runs {
        let what = format!(
            "run {} [{}]",
            run["scenario"].as_str().unwrap_or("?"),
            run["cassette"].as_str().unwrap_or("?")
        );
        expect_keys(
            run,
            &[
                "scenario",
                "cassette",
                "api",
                "provider",
                "model",
                "finish",
                "steps",
                "tool_calls",
                "doom_loop",
                "detectors",
                "retries",
                "tokens",
                "cost_usd",
                "sim_ms",
                "ttft_ms",
                "passed",
                "failures",
            ],
            &what,
        );
        for k in ["scenario", "cassette", "provider", "model"] {
            assert!(run[k].is_string(), "{what}: {k} is not a string");
        }
        assert!(APIS.contains(&run["api"].as_str().unwrap()), "{what}: api");
        assert!(
            FINISHES.contains(&run["finish"].as_str().unwrap()),
            "{what}: finish {}",
            run["finish"]
        );
        for k in ["steps", "tool_calls", "sim_ms"] {
            assert!(is_uint(&run[k]), "{what}: {k} is not a whole number");
        }
        assert!(
            run["ttft_ms"].is_null() || is_uint(&run["ttft_ms"]),
            "{what}: ttft_ms"
        );
        let cost = run["cost_usd"].as_f64().expect("cost_usd is a number");
        assert!(cost >= 0.0, "{what}: cost_usd < 0");
        match &run["doom_loop"] {
            Value::Null => {}
            d => {
                expect_keys(
                    d,
                    &["step", "tool", "detector"],
                    &format!("{what} doom_loop"),
                );
                assert_eq!(d.as_object().unwrap().len(), 3, "{what}: doom_loop keys");
                assert!(is_uint(&d["step"]) && d["step"].as_u64() >= Some(1));
                assert!(d["tool"].is_string());
                assert!(is_detector_name(d["detector"].as_str().unwrap()), "{d}");
                // The run's doom loop is one detector's own first detection.
                assert!(
                    run["detectors"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| { x["detector"] == d["detector"] && x["step"] == d["step"] }),
                    "{what}: doom_loop {d} is not among detectors"
                );
            }
        }
        for d in run["detectors"].as_array().expect("detectors is an array") {
            expect_keys(
                d,
                &["detector", "step", "tool"],
                &format!("{what} detector"),
            );
            assert!(is_detector_name(d["detector"].as_str().unwrap()), "{d}");
            if d["step"].is_null() {
                assert!(
                    d["tool"].is_null(),
                    "{what}: a silent detector names a tool"
                );
            } else {
                assert!(is_uint(&d["step"]), "{d}");
                assert!(d["tool"].is_string() || d["tool"].is_null(), "{d}");
            }
        }
        for x in run["retries"].as_array().expect("retries is an array") {
            expect_keys(
                x,
                &["step", "attempt", "status", "delay_ms", "reason"],
                &format!("{what} retry"),
            );
            assert!(is_uint(&x["step"]) && is_uint(&x["attempt"]) && is_uint(&x["delay_ms"]));
            assert!(
                x["status"].is_null() || x["status"].as_u64().is_some_and(|s| s < 1000),
                "{what}: retry status {}",
                x["status"]
            );
            assert!(x["reason"].is_string());
        }
        let tokens = &run["tokens"];
        expect_keys(
            tokens,
            &["input", "output", "reasoning", "cache_read", "cache_write"],
            &format!("{what} tokens"),
        );
        for k in ["input", "output", "reasoning", "cache_read", "cache_write"] {
            assert!(is_uint(&tokens[k]), "{what}: tokens.{k}");
        }
        let passed = run["passed"].as_bool().expect("passed is a boolean");
        let failures = run["failures"].as_array().expect("failures is an array");
        assert!(failures.iter().all(Value::is_string));
        assert_eq!(passed, failures.is_empty(), "{what}: passed vs failures");
        for f in failures {
            let f = f.as_str().unwrap();
            assert!(f.contains("expected ") && f.contains(", got "), "{f}");
        }
    }
    let s = &r["summary"];
    expect_keys(s, &["runs", "passed", "failed"], "summary");
    let passed = runs.iter().filter(|r| r["passed"] == true).count() as u64;
    assert_eq!(s["runs"].as_u64(), Some(runs.len() as u64), "summary.runs");
    assert_eq!(s["passed"].as_u64(), Some(passed), "summary.passed");
    assert_eq!(
        s["failed"].as_u64(),
        Some(runs.len() as u64 - passed),
        "summary.failed"
    );
}

#[test]
fn json_report_validates_against_formats_md() {
    let o = tapeloop(&["run", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let r = json(&o.stdout);
    validate_report(&r);
    let got: BTreeSet<(String, String)> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["scenario"].as_str().unwrap().to_string(),
                x["cassette"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, corpus_pairs());
    // The corpus exercises every optional shape: a doom loop, a silent detector, a retry with
    // an HTTP status and one without (connection reset).
    let runs = r["runs"].as_array().unwrap();
    assert!(runs.iter().any(|x| !x["doom_loop"].is_null()));
    assert!(runs
        .iter()
        .flat_map(|x| x["detectors"].as_array().unwrap())
        .any(|d| d["step"].is_null()));
    let retries: Vec<&Value> = runs
        .iter()
        .flat_map(|x| x["retries"].as_array().unwrap())
        .collect();
    assert!(retries.iter().any(|x| x["status"].is_u64()));
    assert!(retries.iter().any(|x| x["status"].is_null()));

    // A failing run report validates too, and its summary counts the failures.
    let o = tapeloop(&["run", "--format", "json", "--retry", "seed"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let r = json(&o.stdout);
    validate_report(&r);
    assert!(r["summary"]["failed"].as_u64().unwrap() > 0);
}

#[test]
fn the_validator_rejects_reports_that_break_the_format() {
    let o = tapeloop(&[
        "run",
        "--format",
        "json",
        "scenarios/retry-429-retry-after.toml",
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    let good = json(&o.stdout);
    validate_report(&good);
    type Edit = fn(&mut Value);
    let breakages: &[(&str, Edit)] = &[
        ("format 2", |r| r["format"] = 2.into()),
        ("summary", |r| r["summary"]["passed"] = 0.into()),
        ("status string", |r| {
            r["runs"][0]["retries"][0]["status"] = "429".into()
        }),
        ("doom_loop shape", |r| {
            r["runs"][0]["doom_loop"] = serde_json::json!({"step": 1})
        }),
        ("missing tokens", |r| {
            r["runs"][0].as_object_mut().unwrap().remove("tokens");
        }),
    ];
    for (what, edit) in breakages {
        let mut bad = good.clone();
        edit(&mut bad);
        let caught = std::panic::catch_unwind(|| validate_report(&bad)).is_err();
        assert!(caught, "the validator accepted a report with a bad {what}");
    }
}

// ------------------------------------------------------------------------------------------------
// 3. JUnit through a real consumer

const JUNIT_READER: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
out = {"suites": [], "cases": []}
for suite in xml:
    out["suites"].append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                          "errors": suite.errors, "skipped": suite.skipped})
    for case in suite:
        fails = [r for r in case.result if isinstance(r, Failure)]
        out["cases"].append({"classname": case.classname, "name": case.name,
                             "failures": [{"message": f.message, "text": f.text} for f in fails]})
print(json.dumps(out))
"#;

#[test]
fn junit_parses_with_junitparser() {
    let Some(python) = std::env::var_os("TAPELOOP_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but TAPELOOP_TEST_PYTHON is not: .ci/run must export it"
        );
        eprintln!("note: TAPELOOP_TEST_PYTHON is unset; skipping the junitparser check");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // `--retry seed` makes some corpus runs fail, so failures are exercised too.
    let xml = dir.path().join("junit.xml");
    let o = tapeloop(&[
        "run",
        "--retry",
        "seed",
        "--format",
        "junit",
        "--out",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 1, "{}", o.all());
    let o2 = tapeloop(&["run", "--retry", "seed", "--format", "json"]);
    let report = json(&o2.stdout);
    let script = dir.path().join("read_junit.py");
    std::fs::write(&script, JUNIT_READER).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(&xml)
        .output()
        .expect("run the TAPELOOP_TEST_PYTHON interpreter");
    assert!(
        out.status.success(),
        "junitparser failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = json(&String::from_utf8(out.stdout).unwrap());

    let runs = report["runs"].as_array().unwrap();
    let failed = runs.iter().filter(|r| r["passed"] == false).count();
    assert!(failed > 0 && failed < runs.len());
    let suites = parsed["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0]["tests"], runs.len());
    assert_eq!(suites[0]["failures"], failed);
    assert_eq!(suites[0]["errors"], 0);
    let cases = parsed["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        corpus_pairs().len(),
        "one testcase per scenario × cassette"
    );
    for run in runs {
        let scenario = run["scenario"].as_str().unwrap();
        let file = run["cassette"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let name = format!("{scenario} [{file}]");
        let case = cases
            .iter()
            .find(|c| c["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no testcase {name}"));
        assert_eq!(case["classname"], scenario);
        let fails = case["failures"].as_array().unwrap();
        if run["passed"] == true {
            assert!(fails.is_empty(), "{name} passed but has a failure");
        } else {
            assert_eq!(fails.len(), 1, "{name}");
            let expected: Vec<&str> = run["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert_eq!(fails[0]["message"], expected.join("; ").as_str(), "{name}");
            assert_eq!(fails[0]["text"], expected.join("\n").as_str(), "{name}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// 4. Policy changes and baselines

#[test]
fn detector_override_changes_the_verdict_as_the_rules_predict() {
    // The scenario runs opencode, seed and consecutive:3: seed catches the sequential repeat.
    let o = tapeloop(&[
        "run",
        "--format",
        "json",
        "scenarios/doom-sequential-repeat.toml",
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    let run = run_of(&json(&o.stdout), "doom-sequential-repeat").clone();
    assert_eq!(run["finish"], "doom-loop");
    assert_eq!(run["doom_loop"]["detector"], "seed");
    assert_eq!(run["doom_loop"]["step"], 3);

    // opencode alone only looks inside one message: it misses the loop, the run goes on to the
    // cassette's final text step (ask-reject never triggers) and the expectation fails.
    let o = tapeloop(&[
        "run",
        "--format",
        "json",
        "--doom-loop",
        "opencode",
        "scenarios/doom-sequential-repeat.toml",
    ]);
    assert_eq!(o.code, 1, "{}", o.all());
    let run = run_of(&json(&o.stdout), "doom-sequential-repeat").clone();
    assert!(run["doom_loop"].is_null(), "{run}");
    assert_eq!(run["finish"], "completed");
    assert_eq!(run["steps"], 7);
    assert_eq!(run["detectors"].as_array().unwrap().len(), 1);
    let failures = run["failures"].to_string();
    assert!(failures.contains("doom_loop: expected"), "{failures}");
    assert!(
        failures.contains("finish: expected doom-loop, got completed"),
        "{failures}"
    );

    // `--doom-action allow` keeps the detection but lets the run finish.
    let o = tapeloop(&[
        "run",
        "--format",
        "json",
        "--doom-action",
        "allow",
        "scenarios/doom-sequential-repeat.toml",
    ]);
    assert_eq!(o.code, 1, "{}", o.all());
    let run = run_of(&json(&o.stdout), "doom-sequential-repeat").clone();
    assert_eq!(run["doom_loop"]["step"], 3);
    assert_eq!(run["finish"], "completed");
    assert_eq!(run["steps"], 7);
}

#[test]
fn policy_edited_in_a_scenario_copy_changes_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy_scenario(dir.path(), "doom-sequential-repeat.toml", |t| {
        t.replace(
            "doom_loop = [\"opencode\", \"seed\", \"consecutive:3\"]",
            "doom_loop = \"opencode\"",
        )
    });
    let o = tapeloop_in(
        dir.path(),
        &["run", "--format", "json", "doom-sequential-repeat.toml"],
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let run = run_of(&json(&o.stdout), "doom-sequential-repeat").clone();
    assert!(run["doom_loop"].is_null());
    assert_eq!(run["passed"], false);

    // `consecutive:4` fires one step later than the expectation says.
    std::fs::write(
        &p,
        std::fs::read_to_string(&p)
            .unwrap()
            .replace("doom_loop = \"opencode\"", "doom_loop = \"consecutive:4\""),
    )
    .unwrap();
    let o = tapeloop_in(
        dir.path(),
        &["run", "--format", "json", "doom-sequential-repeat.toml"],
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let run = run_of(&json(&o.stdout), "doom-sequential-repeat").clone();
    assert_eq!(run["doom_loop"]["step"], 4);
    assert_eq!(run["doom_loop"]["detector"], "consecutive:4");
    assert!(run["failures"]
        .to_string()
        .contains("doom_loop: expected at step 3"));
}

#[test]
fn baseline_then_regressed_run_exits_1_and_names_the_metric() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let o = tapeloop(&["run", "--state-dir", state, "--save-baseline", "main"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("saved baseline `main`"), "{}", o.all());
    assert!(Path::new(state).join("baselines/main.json").is_file());

    // The same corpus again: no regression.
    let o = tapeloop(&["run", "--state-dir", state, "--baseline", "main"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("no regressions against baseline `main`"),
        "{}",
        o.all()
    );

    // The seed retry policy retries non-retryable provider errors: more retries, more steps
    // of simulated time; runs that passed now fail.
    let o = tapeloop(&[
        "run",
        "--state-dir",
        state,
        "--baseline",
        "main",
        "--retry",
        "seed",
    ]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stderr.contains("regression(s) against baseline `main`"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr
            .lines()
            .any(|l| l.contains("groq-tool-use-failed") && l.contains("retries")),
        "{}",
        o.all()
    );

    const SC: &str = "doom-sequential-repeat.toml";
    // A scenario edited to regress alone (opencode misses the loop: more steps, more tokens).
    let sc = tempfile::tempdir().unwrap();
    copy_scenario(sc.path(), "doom-sequential-repeat.toml", |t| {
        strip_expect(t.replace(
            "doom_loop = [\"opencode\", \"seed\", \"consecutive:3\"]",
            "doom_loop = [\"seed\"]",
        ))
    });
    let o = tapeloop_in(
        sc.path(),
        &["run", "--state-dir", state, "--save-baseline", "one", SC],
        &[],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    copy_scenario(sc.path(), "doom-sequential-repeat.toml", |t| {
        strip_expect(t.replace(
            "doom_loop = [\"opencode\", \"seed\", \"consecutive:3\"]",
            "doom_loop = [\"consecutive:5\"]",
        ))
    });
    let o = tapeloop_in(
        sc.path(),
        &["run", "--state-dir", state, "--baseline", "one", SC],
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    for metric in ["steps", "doom_loop"] {
        assert!(
            o.stderr
                .lines()
                .any(|l| l.contains("doom-sequential-repeat") && l.contains(metric)),
            "no {metric} regression:\n{}",
            o.all()
        );
    }
}

#[test]
fn a_shard_is_compared_with_its_part_of_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let o = tapeloop(&["run", "--state-dir", state, "--save-baseline", "full"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for k in 1..=3 {
        let part = format!("{k}/3");
        let o = tapeloop(&[
            "run",
            "--state-dir",
            state,
            "--baseline",
            "full",
            "--partition",
            &part,
        ]);
        assert_eq!(o.code, 0, "shard {part}: {}", o.all());
        assert!(o.stderr.contains("no regressions"), "{}", o.all());
    }
    // A shard still catches its own regressions.
    let o = tapeloop(&[
        "run",
        "--state-dir",
        state,
        "--baseline",
        "full",
        "--partition",
        "1/1",
        "--retry",
        "seed",
    ]);
    assert_eq!(o.code, 1, "{}", o.all());
}

#[test]
fn missing_baseline_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = tapeloop(&[
        "run",
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--baseline",
        "nope",
    ]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("--save-baseline nope"), "{}", o.all());
}

// ------------------------------------------------------------------------------------------------
// 5. Determinism

#[test]
fn replays_are_deterministic_across_runs_and_job_counts() {
    let a = tapeloop(&["run", "--format", "json", "--jobs", "1"]);
    let b = tapeloop(&["run", "--format", "json", "--jobs", "8"]);
    let c = tapeloop(&["run", "--format", "json"]);
    for o in [&a, &b, &c] {
        assert_eq!(o.code, 0, "{}", o.all());
    }
    assert!(
        a.stdout.contains("\"wall_ms\""),
        "wall_ms is the field being dropped"
    );
    let a = without_wall_ms(&a.stdout);
    assert_eq!(a, without_wall_ms(&b.stdout), "--jobs 1 vs --jobs 8");
    assert_eq!(a, without_wall_ms(&c.stdout), "two runs");
    assert!(!a.contains("wall_ms"));
}

#[test]
fn partitions_merge_into_the_unsharded_report() {
    let dir = tempfile::tempdir().unwrap();
    let full = tapeloop(&["run", "--format", "json"]);
    assert_eq!(full.code, 0, "{}", full.all());
    let mut shards = Vec::new();
    let mut seen = 0;
    for k in 1..=3 {
        let p = dir.path().join(format!("shard{k}.json"));
        let part = format!("{k}/3");
        let o = tapeloop(&[
            "run",
            "--partition",
            &part,
            "--format",
            "json",
            "--out",
            p.to_str().unwrap(),
        ]);
        assert_eq!(o.code, 0, "{}", o.all());
        let r = read_json(&p);
        validate_report(&r);
        let n = r["runs"].as_array().unwrap().len();
        assert!(
            n > 0,
            "shard {part} is empty: the hash does not spread the corpus"
        );
        seen += n;
        shards.push(p);
    }
    assert_eq!(seen, corpus_pairs().len(), "shards overlap or miss runs");
    let merged = dir.path().join("merged.json");
    let mut args = vec!["merge".to_string()];
    args.extend(shards.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = tapeloop(&args);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(
        without_wall_ms(&std::fs::read_to_string(&merged).unwrap()),
        without_wall_ms(&full.stdout)
    );

    // Overlapping shards are refused.
    let o = tapeloop(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[0].to_str().unwrap(),
    ]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("more than one report"), "{}", o.all());
}

// ------------------------------------------------------------------------------------------------
// 6. Cassettes cut short or diverging, bad input, accept, compare, terminal hygiene

/// Rewrite the footer of cassette `lines` (without footer) so that its hash matches.
fn with_footer(lines: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut body = String::new();
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    let interactions = lines
        .iter()
        .filter(|l| json(l)["kind"] == "request")
        .count();
    let sha = hex::encode(Sha256::digest(body.as_bytes()));
    format!(
        "{body}{{\"kind\":\"footer\",\"interactions\":{interactions},\"lines\":{},\"sha256\":\"{sha}\"}}\n",
        lines.len()
    )
}

#[test]
fn truncated_cassette_replays_its_complete_prefix_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(ROOT).join("recordings/polling-job-status.openai-chat.jsonl"),
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.last().unwrap().contains("\"kind\":\"footer\""));
    // Cut the footer and the last 4 lines: the last interaction loses its end (and more).
    let kept = &lines[..lines.len() - 5];
    let complete = kept.iter().filter(|l| json(l)["kind"] == "end").count();
    let requests = kept.iter().filter(|l| json(l)["kind"] == "request").count();
    assert_eq!(
        requests,
        complete + 1,
        "the cut must fall inside an interaction"
    );
    let cas = dir.path().join("cut.jsonl");
    std::fs::write(&cas, kept.join("\n") + "\n").unwrap();
    let sc = dir.path().join("cut.toml");
    let scenario =
        std::fs::read_to_string(Path::new(ROOT).join("scenarios/polling-job-status.toml"))
            .unwrap()
            .replace(
                "../recordings/polling-job-status.openai-chat.jsonl",
                "cut.jsonl",
            );
    std::fs::write(&sc, strip_expect(scenario)).unwrap();

    let o = tapeloop_in(dir.path(), &["run", "--format", "json", "cut.toml"], &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    let r = json(&o.stdout);
    validate_report(&r);
    let run = &r["runs"][0];
    assert_eq!(run["truncated"], true, "{run}");
    assert_eq!(run["finish"], "cassette-exhausted", "{run}");
    assert_eq!(run["steps"].as_u64(), Some(complete as u64), "{run}");
    assert!(run.get("unused_interactions").is_none(), "{run}");
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "cut short (no footer): replayed its {complete} complete"
        )),
        "{warnings}"
    );
    // The table says so as well.
    let o = tapeloop_in(dir.path(), &["run", "cut.toml"], &[]);
    assert!(o.stdout.contains("cut short"), "{}", o.all());
    // And `check` calls it a warning, not an error.
    let o = tapeloop_in(dir.path(), &["check", "cut.jsonl", "cut.toml"], &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("1 truncated"), "{}", o.all());
}

#[test]
fn strict_mode_reports_the_first_differing_json_path() {
    let dir = tempfile::tempdir().unwrap();
    // This cassette's request bodies are exactly what tapeloop sends.
    let name = "call-with-tools.openai-responses.jsonl";
    let text = std::fs::read_to_string(Path::new(ROOT).join("recordings").join(name)).unwrap();
    let scenario =
        std::fs::read_to_string(Path::new(ROOT).join("scenarios/call-with-tools.toml")).unwrap();
    let cassettes_start = scenario.find("cassettes = [").unwrap();
    let cassettes_end = cassettes_start + scenario[cassettes_start..].find(']').unwrap() + 1;
    let scenario = format!(
        "{}cassettes = [\"{name}\"]{}",
        &scenario[..cassettes_start],
        &scenario[cassettes_end..]
    );
    std::fs::write(dir.path().join("s.toml"), &scenario).unwrap();
    std::fs::write(dir.path().join(name), &text).unwrap();
    let o = tapeloop_in(
        dir.path(),
        &["run", "--strict", "--format", "json", "s.toml"],
        &[],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(json(&o.stdout)["runs"][0]["finish"], "completed");

    // Change the second request's tool output: the loop sends the real one.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.pop(); // footer
    let i = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"request\"") && l.contains("\"id\":2"))
        .unwrap();
    let mut req = json(&lines[i]);
    let input = req["body"]["input"].as_array_mut().unwrap();
    let at = input
        .iter()
        .position(|x| x["type"] == "function_call_output")
        .unwrap();
    input[at]["output"] = "tampered".into();
    lines[i] = serde_json::to_string(&req).unwrap();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    std::fs::write(dir.path().join(name), with_footer(&refs)).unwrap();

    // Sequence mode does not look at request bodies.
    let o = tapeloop_in(dir.path(), &["run", "--format", "json", "s.toml"], &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = tapeloop_in(
        dir.path(),
        &["run", "--strict", "--format", "json", "s.toml"],
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let r = json(&o.stdout);
    validate_report(&r);
    let run = &r["runs"][0];
    assert_eq!(run["finish"], "divergence");
    let path = format!("$.input[{at}].output");
    assert_eq!(run["divergence"], path.as_str(), "{run}");
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains("interaction 2") && warnings.contains("tampered"),
        "the warning shows the recorded value: {warnings}"
    );
    // `[policy] match = "strict"` in the scenario does the same.
    std::fs::write(
        dir.path().join("s.toml"),
        scenario.replace("[policy]\n", "[policy]\nmatch = \"strict\"\n"),
    )
    .unwrap();
    let o = tapeloop_in(dir.path(), &["run", "--format", "json", "s.toml"], &[]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert_eq!(json(&o.stdout)["runs"][0]["divergence"], path.as_str());
}

#[test]
fn bad_scenarios_are_reported_with_file_and_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        // (file, replace, with, expected message fragment)
        (
            "typo.toml",
            "retries = 0",
            "retires = 0",
            "did you mean `retries`?",
        ),
        (
            "detector.toml",
            "doom_loop = [\"opencode\", \"seed\", \"consecutive:3\"]",
            "doom_loop = [\"opencode\", \"consecutiv:3\"]",
            "did you mean `consecutive:3`?",
        ),
        (
            "missing.toml",
            "doom-sequential-repeat.anthropic.jsonl",
            "doom-sequential-repeats.anthropic.jsonl",
            "not found",
        ),
    ];
    for (file, from, to, needle) in cases {
        let text =
            std::fs::read_to_string(Path::new(ROOT).join("scenarios/doom-sequential-repeat.toml"))
                .unwrap()
                .replace("\"../recordings/", &format!("\"{ROOT}/recordings/"));
        assert!(text.contains(from), "{from}");
        let text = text.replace(from, to).replace(
            "name = \"doom-sequential-repeat\"",
            &format!("name = \"{file}\""),
        );
        let p = dir.path().join(file);
        std::fs::write(&p, &text).unwrap();
        let line = text.lines().position(|l| l.contains(to)).unwrap() + 1;
        let o = tapeloop_in(dir.path(), &["run", file], &[]);
        assert_eq!(o.code, 2, "{file}: {}", o.all());
        assert!(
            o.stderr.contains(&format!("{file}:{line}")) && o.stderr.contains(needle),
            "{file}: expected {file}:{line} and `{needle}`:\n{}",
            o.all()
        );
        assert!(o.stdout.is_empty(), "no report on bad input: {}", o.all());
        // `check` reports the same problem as path:line:col.
        let o = tapeloop_in(dir.path(), &["check", file], &[]);
        assert_eq!(o.code, 2, "{file}: {}", o.all());
        assert!(
            o.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{file}:{line}:"))),
            "{}",
            o.all()
        );
        assert!(o.stdout.contains(needle), "{}", o.all());
    }
}

/// `tapeloop run --accept [--dry-run] doom-sequential-repeat.toml` in `dir`.
fn accept_in(dir: &Path, dry_run: bool) -> Out {
    let mut args = vec!["run", "--accept"];
    if dry_run {
        args.push("--dry-run");
    }
    args.push("doom-sequential-repeat.toml");
    tapeloop_in(dir, &args, &[])
}

#[test]
fn accept_writes_expectations_that_the_next_run_checks() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy_scenario(dir.path(), "doom-sequential-repeat.toml", strip_expect);
    let before = std::fs::read_to_string(&p).unwrap();
    assert!(!before.contains("[expect]"));

    let o = accept_in(dir.path(), true);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("+[expect]"),
        "the diff is shown:\n{}",
        o.all()
    );
    assert!(o.stdout.contains("+finish = \"doom-loop\""), "{}", o.all());
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        before,
        "--dry-run wrote"
    );

    let o = accept_in(dir.path(), false);
    assert_eq!(o.code, 0, "{}", o.all());
    let after = std::fs::read_to_string(&p).unwrap();
    // Only the [expect] table is added (a block of lines ending at a blank line or the end);
    // everything else, comments included, is kept.
    let start = after.find("[expect]\n").expect("[expect] written");
    let len = after[start..]
        .find("\n\n")
        .map_or(after.len() - start, |n| n + 2);
    assert_eq!(
        format!("{}{}", &after[..start], &after[start + len..]),
        before,
        "accept changed more than [expect]:\n{after}"
    );
    assert!(after.contains("[expect]\n"), "{after}");
    assert!(after.contains("finish = \"doom-loop\""), "{after}");

    let o = tapeloop_in(dir.path(), &["run", "doom-sequential-repeat.toml"], &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("1 runs: 1 passed, 0 failed"),
        "{}",
        o.all()
    );
    // The accepted expectations are real: a policy change now fails them.
    let o = tapeloop_in(
        dir.path(),
        &[
            "run",
            "--doom-loop",
            "opencode",
            "doom-sequential-repeat.toml",
        ],
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    // Accepting again changes nothing.
    let o = accept_in(dir.path(), false);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("already matches"), "{}", o.all());
    assert_eq!(std::fs::read_to_string(&p).unwrap(), after);
}

/// `--accept --dry-run` is a check: it writes nothing, shows the diff it would write, and exits
/// like `run` (1 when an expectation fails), so CI can use it to catch stale expectations.
#[test]
fn accept_dry_run_fails_like_run_and_shows_the_diff() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy_scenario(dir.path(), "doom-sequential-repeat.toml", |t| {
        t.replace("steps = 3\n", "steps = 4\n")
    });
    let before = std::fs::read_to_string(&p).unwrap();
    assert!(before.contains("steps = 4\n"), "{before}");

    let plain = tapeloop_in(dir.path(), &["run", "doom-sequential-repeat.toml"], &[]);
    assert_eq!(plain.code, 1, "{}", plain.all());

    let o = accept_in(dir.path(), true);
    assert_eq!(o.code, 1, "a dry run exits like run:\n{}", o.all());
    assert!(o.stdout.contains("steps: expected 4, got 3"), "{}", o.all());
    assert!(
        o.stdout.contains("-steps = 4") && o.stdout.contains("+steps = 3"),
        "the diff it would write is shown:\n{}",
        o.all()
    );
    assert!(o.stderr.contains("would change"), "{}", o.all());
    let unchanged = std::fs::read_to_string(&p).unwrap() == before;
    assert!(unchanged, "--dry-run wrote");

    // Without --dry-run the observed outcome becomes the expectation, and the run passes.
    let o = accept_in(dir.path(), false);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = tapeloop_in(dir.path(), &["run", "doom-sequential-repeat.toml"], &[]);
    assert_eq!(o.code, 0, "{}", o.all());
}

#[test]
fn compare_shows_the_four_providers_of_call_with_tools() {
    let o = tapeloop(&["compare", "scenarios/call-with-tools.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for api in [
        "anthropic",
        "google/gemini",
        "openai/chat",
        "openai/responses",
    ] {
        assert!(o.stdout.contains(api), "{api} missing:\n{}", o.stdout);
    }
    // Issue 15: long format, one row per provider; the scenario names its first row.
    assert!(
        o.stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("call-with-tools "),
        "{}",
        o.stdout
    );
    // Total tokens of each provider, from the JSON report, on that provider's row.
    let r = json(&tapeloop(&["run", "--format", "json", "scenarios/call-with-tools.toml"]).stdout);
    for run in r["runs"].as_array().unwrap() {
        let total = run["tokens"].as_object().unwrap();
        let total: u64 = total.values().map(|v| v.as_u64().unwrap()).sum();
        let provider = run["provider"].as_str().unwrap();
        assert!(
            o.stdout
                .lines()
                .any(|l| l.contains(provider)
                    && l.split_whitespace().any(|c| c == total.to_string())),
            "no row of {provider} with {total} tokens:\n{}",
            o.stdout
        );
    }
    assert!(
        o.stdout.lines().all(|l| l.chars().count() <= 100),
        "{}",
        o.stdout
    );

    let o = tapeloop(&["compare", "--markdown", "scenarios/call-with-tools.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains('|'), "{}", o.stdout);
}

#[test]
fn compare_two_reports_highlights_the_changed_value() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    let args = |out: &Path, extra: &[&'static str]| {
        let mut v = vec![
            "run".to_string(),
            "--format".into(),
            "json".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push("scenarios/doom-sequential-repeat.toml".into());
        v.push("scenarios/polling-job-status.toml".into());
        v
    };
    let run = |v: Vec<String>| tapeloop(&v.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(args(&a, &[])).code, 0);
    assert_eq!(run(args(&b, &["--doom-loop", "opencode"])).code, 1);
    let o = tapeloop(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.all());
    let changed = o
        .stdout
        .lines()
        .find(|l| l.starts_with("doom-sequential-repeat "))
        .unwrap();
    assert!(changed.contains("changed"), "{changed}");
    assert!(changed.contains("PASS → FAIL"), "{changed}");
    assert!(changed.contains("doom-loop → completed"), "{changed}");
    assert!(changed.contains("3 → 7"), "steps: {changed}");
    let same = o
        .stdout
        .lines()
        .find(|l| l.starts_with("polling-job-status "))
        .unwrap();
    assert!(!same.contains('→') && !same.contains("changed"), "{same}");
    assert!(o.stdout.contains("1 changed, 1 unchanged"), "{}", o.stdout);
    assert!(!o.stdout.contains('\x1b'), "piped output has no ANSI");
    // With colour forced, the change is highlighted.
    let o = tapeloop(&[
        "compare",
        "--color",
        "always",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let changed = o
        .stdout
        .lines()
        .find(|l| l.contains("doom-sequential-repeat"))
        .unwrap();
    assert!(changed.contains('\x1b'), "{changed:?}");
}

#[test]
fn the_table_fits_80_100_and_200_columns() {
    let widest = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    for width in [80, 100, 200] {
        let cols = width.to_string();
        for args in [&["run"][..], &["run", "--wide"][..], &["compare"][..]] {
            let o = tapeloop_in(Path::new(ROOT), args, &[("COLUMNS", cols.as_str())]);
            assert_eq!(o.code, 0, "{}", o.all());
            let table: String = o
                .stdout
                .lines()
                .filter(|l| !l.contains(" runs: "))
                .map(|l| format!("{l}\n"))
                .collect();
            // `--wide` has more numeric columns than 80 or 100 characters hold: it then keeps
            // its names whole (numbers never shrink), and fits from 200 on.
            if args != ["run", "--wide"] || width >= 200 {
                assert!(
                    widest(&table) <= width,
                    "{args:?} at {width}:\n{}",
                    o.stdout
                );
            }
            assert!(o.stdout.lines().count() > 3, "{}", o.stdout);
        }
    }
    // Piped without COLUMNS: 100; names are shortened in the middle, never dropped.
    let o = tapeloop(&["run"]);
    assert!(widest(&o.stdout) <= 100, "{}", o.stdout);
    assert!(o.stdout.contains('…'), "{}", o.stdout);
    // At 200 the names are whole.
    let o = tapeloop_in(Path::new(ROOT), &["run"], &[("COLUMNS", "200")]);
    assert!(
        o.stdout.contains("polling-job-status-consecutive "),
        "{}",
        o.stdout
    );
    // --columns chooses, in order; an unknown name is bad input that lists the names.
    let one = "scenarios/doom-cycle.toml";
    let o = tapeloop(&["run", "--columns", "cassette,verdict,cost", one]);
    assert_eq!(o.code, 0, "{}", o.all());
    let header: Vec<&str> = o
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["cassette", "verdict", "cost"]);
    let o = tapeloop(&["run", "--columns", "nope"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("unknown column `nope`"), "{}", o.stderr);
}

#[test]
fn piped_output_has_no_progress_bar_and_no_ansi() {
    for envs in [&[][..], &[("NO_COLOR", "1")][..]] {
        let o = tapeloop_in(Path::new(ROOT), &["run"], envs);
        assert_eq!(o.code, 0, "{}", o.all());
        for (what, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            assert!(!text.contains('\x1b'), "ANSI in {what}: {text:?}");
            assert!(!text.contains('\r'), "progress redraw in {what}: {text:?}");
            assert!(!text.contains("replaying"), "progress bar in {what}");
        }
    }
    // A failing run (red FAIL, failure lines) is plain too.
    let o = tapeloop(&["run", "--retry", "seed"]);
    assert_eq!(o.code, 1);
    assert!(!o.stdout.contains('\x1b') && o.stdout.contains("FAIL"));
    // The same table with colour forced does carry escapes: the check above can fail.
    let o = tapeloop(&["run", "--color", "always"]);
    assert!(o.stdout.contains("\x1b["), "{}", o.all());
    // NO_COLOR wins over a forced-on terminal check only in auto mode; never is never.
    let o = tapeloop_in(
        Path::new(ROOT),
        &["run", "--color", "never"],
        &[("NO_COLOR", "1")],
    );
    assert!(!o.stdout.contains('\x1b'));
}

// ------------------------------------------------------------------------------------------------
// 8. Exit codes

#[test]
fn exit_codes_are_0_pass_1_fail_2_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(tapeloop(&["run", "scenarios/text-repeat.toml"]).code, 0);
    assert_eq!(
        tapeloop(&["run", "--doom-loop", "seed", "scenarios/text-repeat.toml"]).code,
        1
    );
    let bad: &[&[&str]] = &[
        &["run", "no/such/dir"],
        &["run", "--partition", "4/3"],
        &["run", "--doom-loop", "bogus"],
        &["run", "--retry", "bogus"],
        &["run", "--format", "yaml"],
        &["merge", "no-such-report.json"],
        &["compare", "a.json"],
    ];
    for args in bad {
        let o = tapeloop(args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.all());
        assert!(!o.stderr.is_empty(), "{args:?}: no message");
    }
    // An empty directory is bad input, not a pass with zero scenarios.
    let o = tapeloop(&["run", dir.path().to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.all());
    // A TOML syntax error.
    std::fs::write(dir.path().join("broken.toml"), "name = \n").unwrap();
    let o = tapeloop_in(dir.path(), &["run", "broken.toml"], &[]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("broken.toml:1"), "{}", o.all());
    // A cassette whose footer hash does not match is a harness error naming the file.
    let text = std::fs::read_to_string(Path::new(ROOT).join("recordings/text-repeat.gemini.jsonl"))
        .unwrap();
    std::fs::write(
        dir.path().join("text-repeat.gemini.jsonl"),
        text.replacen("search_logs", "search_logz", 1),
    )
    .unwrap();
    let sc = std::fs::read_to_string(Path::new(ROOT).join("scenarios/text-repeat.toml"))
        .unwrap()
        .replace("../recordings/", "");
    std::fs::write(dir.path().join("t.toml"), sc).unwrap();
    let o = tapeloop_in(dir.path(), &["run", "t.toml"], &[]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("text-repeat.gemini.jsonl"), "{}", o.all());
}

// ------------------------------------------------------------------------------------------------
// 7. `check` on scenarios and cassettes together

#[test]
fn check_validates_the_whole_corpus() {
    let o = tapeloop(&["check", "scenarios/", "recordings/"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let n_cassettes = std::fs::read_dir(Path::new(ROOT).join("recordings"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jsonl")
        })
        .count();
    let n_scenarios = std::fs::read_dir(Path::new(ROOT).join("scenarios"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(
        o.stdout.contains(&format!(
            "checked {n_cassettes} cassettes: {n_cassettes} valid, 0 invalid"
        )),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(&format!(
            "checked {n_scenarios} scenarios: {n_scenarios} valid, 0 invalid (0 problems)"
        )),
        "{}",
        o.stdout
    );
}

#[test]
fn check_reports_every_scenario_problem_with_line_column_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy_scenario(dir.path(), "doom-sequential-repeat.toml", |t| {
        t.replace("max_retries = 10", "max_retires = 10")
            .replace("retry = \"opencode\"", "retry = \"opencod\"")
    });
    let text = std::fs::read_to_string(&p).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    std::fs::write(
        dir.path().join("ok.toml"),
        std::fs::read_to_string(Path::new(ROOT).join("scenarios/text-repeat.toml"))
            .unwrap()
            .replace("\"../recordings/", &format!("\"{ROOT}/recordings/")),
    )
    .unwrap();
    let o = tapeloop_in(dir.path(), &["check", "."], &[]);
    assert_eq!(o.code, 2, "{}", o.all());
    let lines: Vec<&str> = o.stdout.lines().collect();
    let at = |prefix: String, needle: &str, help: &str| {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&prefix) && l.contains(needle))
            .unwrap_or_else(|| panic!("no `{prefix}…{needle}` in:\n{}", o.stdout));
        assert!(
            lines
                .get(i + 1)
                .is_some_and(|l| l.trim_start().starts_with("help:") && l.contains(help)),
            "no help line after {}:\n{}",
            lines[i],
            o.stdout
        );
    };
    at(
        format!(
            "./doom-sequential-repeat.toml:{}:1: ",
            line_of("max_retires")
        ),
        "unknown key `max_retires` in [limits]",
        "did you mean `max_retries`?",
    );
    at(
        format!("./doom-sequential-repeat.toml:{}:9: ", line_of("opencod\"")),
        "opencod",
        "did you mean `opencode`?",
    );
    assert!(
        o.stdout
            .contains("checked 2 scenarios: 1 valid, 1 invalid (2 problems)"),
        "{}",
        o.stdout
    );
    // Fixing the file makes the same command pass.
    std::fs::write(
        &p,
        text.replace("max_retires", "max_retries")
            .replace("opencod\"", "opencode\""),
    )
    .unwrap();
    let o = tapeloop_in(dir.path(), &["check", "."], &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("checked 2 scenarios: 2 valid, 0 invalid"),
        "{}",
        o.stdout
    );
}
