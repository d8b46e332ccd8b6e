//! What the `tapeloop run` tests share (`cli_run`, `cli_run_report`, `cli_run_compare`): the
//! binary run piped in a directory, JSON helpers, the corpus read independently of tapeloop's
//! loader, scenario copies, and the validator of the JSON report against FORMATS.md.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `tapeloop args…` in `dir`, piped (not a terminal), without CI, colour or width
/// (`COLUMNS`) variables.
pub fn tapeloop_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Out {
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
pub fn tapeloop(args: &[&str]) -> Out {
    tapeloop_in(Path::new(ROOT), args, &[])
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

pub fn read_json(p: &Path) -> Value {
    json(&std::fs::read_to_string(p).unwrap())
}

/// The pretty JSON report without its `wall_ms` lines (the only nondeterministic field).
pub fn without_wall_ms(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("\"wall_ms\":"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every (scenario name, cassette path relative to the crate root) the corpus defines, read
/// straight from the TOML files (independently of tapeloop's loader).
pub fn corpus_pairs() -> BTreeSet<(String, String)> {
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
pub fn copy_scenario(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let src = std::fs::read_to_string(Path::new(ROOT).join("scenarios").join(name)).unwrap();
    let recordings = format!("{ROOT}/recordings/");
    assert!(src.contains("\"../recordings/"), "{name} names no cassette");
    let text = edit(src.replace("\"../recordings/", &format!("\"{recordings}")));
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The scenario text without its `[expect]` table (which is always last in the corpus).
pub fn strip_expect(text: String) -> String {
    let i = text.find("\n[expect]").expect("has [expect]");
    text[..i + 1].to_string()
}

pub fn run_of<'a>(report: &'a Value, scenario: &str) -> &'a Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scenario"] == scenario)
        .unwrap_or_else(|| panic!("no run of {scenario}"))
}

// ------------------------------------------------------------------------------------------------
// The JSON report against FORMATS.md

pub fn is_uint(v: &Value) -> bool {
    v.as_u64().is_some()
}

pub fn expect_keys(obj: &Value, keys: &[&str], what: &str) {
    let map = obj
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {obj}"));
    for k in keys {
        assert!(map.contains_key(*k), "{what} lacks `{k}`: {obj}");
    }
}

pub const FINISHES: &[&str] = &[
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
pub const APIS: &[&str] = &["openai-chat", "openai-responses", "anthropic", "gemini"];

pub fn is_detector_name(s: &str) -> bool {
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
pub fn validate_report(r: &Value) {
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
