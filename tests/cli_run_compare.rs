//! What a `tapeloop run` is compared against: policy changes in a scenario copy or on the
//! command line, baselines (whole and sharded), `--accept` writing expectations, and `compare`
//! across providers and reports.
//!
//! Every test runs the real binary; the repository is only read (copies go to temp dirs).

mod support_cli;

use std::path::Path;

use support_cli::*;

// ------------------------------------------------------------------------------------------------
// Policy changes and baselines

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
// `--accept` and `compare`

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
