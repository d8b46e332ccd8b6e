//! `tapeloop run` end to end, as CI uses it: the README's command on the bundled corpus,
//! determinism (repeat, `--jobs`, `--partition` + `merge`), truncated and diverging cassettes,
//! bad input, terminal hygiene (no progress bar or ANSI when piped), exit codes and `check`.
//! The JSON report and JUnit are in `cli_run_report.rs`; policy changes, baselines, `--accept`
//! and `compare` in `cli_run_compare.rs`.
//!
//! Every test runs the real binary; the repository is only read (copies go to temp dirs).

mod support_cli;

use std::path::Path;

use support_cli::*;

// ------------------------------------------------------------------------------------------------
// The README's command

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
// Determinism

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
// Cassettes cut short or diverging, bad input, terminal hygiene

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
// Exit codes

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
// `check` on scenarios and cassettes together

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
