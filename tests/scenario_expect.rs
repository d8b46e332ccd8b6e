//! Expectations (`expected X, got Y` lines) and accepting an observed run into `[expect]`.

mod support_report;
use std::path::Path;
use support_report::read_loop_run;

use tapeloop::report::{DetectorResult, Finish, RunRecord};
use tapeloop::scenario::{self, accept, Expectations, LoadOptions};

fn run() -> RunRecord {
    let mut r = read_loop_run();
    r.detectors = vec![
        DetectorResult {
            detector: "opencode".into(),
            step: Some(3),
            tool: Some("read".into()),
        },
        DetectorResult {
            detector: "consecutive:4".into(),
            step: None,
            tool: None,
        },
    ];
    r
}

fn expect(body: &str) -> Expectations {
    let text = format!(
        "cassettes = [\"x.jsonl\"]\nprompt = \"p\"\n[policy]\ndoom_loop = [\"opencode\", \"consecutive:4\"]\n[expect]\n{body}"
    );
    let opts = LoadOptions {
        check_cassettes: false,
    };
    scenario::parse_str(&text, Path::new("t.toml"), &opts)
        .unwrap_or_else(|e| panic!("{e:#?}"))
        .expect
}

fn check(body: &str) -> Vec<String> {
    expect(body).check(&run())
}

#[test]
fn each_kind_passes_when_met() {
    let all = r#"
finish = "doom-loop"
doom_loop = { step = 3, tool = "read", detector = "opencode" }
retries = 1
steps = { min = 2, max = 3 }
tool_calls = 3
cost_usd = { max = 0.00024 }
tokens = { input = 1200, output = { max = 2000 }, reasoning = 0, cache_read = { max = 0 }, cache_write = 0, total = 1290 }
sim_ms = { min = 5000 }
detectors = { opencode = 3, "consecutive:4" = false }
"#;
    assert_eq!(check(all), Vec::<String>::new());
    assert_eq!(check("doom_loop = true"), Vec::<String>::new());
    assert!(expect("").is_empty());
}

#[test]
fn each_kind_fails_with_an_exact_message() {
    let cases: &[(&str, &str)] = &[
        (
            "finish = \"completed\"",
            "finish: expected completed, got doom-loop",
        ),
        (
            "doom_loop = false",
            "doom_loop: expected none, got step 3 (read, opencode)",
        ),
        (
            "doom_loop = { step = 2, tool = \"read\" }",
            "doom_loop: expected at step 2 (read), got step 3 (read, opencode)",
        ),
        (
            "doom_loop = { step = 3, tool = \"read\", detector = \"consecutive:4\" }",
            "doom_loop: expected at step 3 (read, consecutive:4), got step 3 (read, opencode)",
        ),
        ("retries = 0", "retries: expected 0, got 1"),
        (
            "retries = { min = 2, max = 5 }",
            "retries: expected between 2 and 5, got 1",
        ),
        ("steps = { max = 2 }", "steps: expected at most 2, got 3"),
        ("steps = { min = 4 }", "steps: expected at least 4, got 3"),
        ("tool_calls = 4", "tool_calls: expected 4, got 3"),
        (
            "cost_usd = { max = 0.0002 }",
            "cost_usd: expected at most 0.0002, got 0.00024",
        ),
        ("cost_usd = 0.001", "cost_usd: expected 0.001, got 0.00024"),
        (
            "tokens = { output = { max = 50 } }",
            "tokens.output: expected at most 50, got 90",
        ),
        (
            "tokens = { input = 1 }",
            "tokens.input: expected 1, got 1200",
        ),
        (
            "tokens = { reasoning = { min = 1 } }",
            "tokens.reasoning: expected at least 1, got 0",
        ),
        (
            "tokens = { cache_read = 5 }",
            "tokens.cache_read: expected 5, got 0",
        ),
        (
            "tokens = { cache_write = 5 }",
            "tokens.cache_write: expected 5, got 0",
        ),
        (
            "tokens = { total = { max = 1000 } }",
            "tokens.total: expected at most 1000, got 1290",
        ),
        (
            "sim_ms = { max = 5000 }",
            "sim_ms: expected at most 5000, got 5210",
        ),
        (
            "detectors = { opencode = 2 }",
            "detectors.opencode: expected at step 2, got step 3 (read)",
        ),
        (
            "detectors = { \"consecutive:4\" = true }",
            "detectors.consecutive:4: expected fires, got none",
        ),
        (
            "detectors = { opencode = false }",
            "detectors.opencode: expected never fires, got step 3 (read)",
        ),
        (
            "detectors = { seed = 3 }",
            "detectors.seed: expected at step 3, got not run",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(check(body), vec![want.to_string()], "for {body}");
    }
    let mut none = run();
    none.doom_loop = None;
    assert_eq!(
        expect("doom_loop = { step = 3, tool = \"read\" }").check(&none),
        vec!["doom_loop: expected at step 3 (read), got none"]
    );
    assert_eq!(
        expect("doom_loop = true").check(&none),
        vec!["doom_loop: expected a doom loop, got none"]
    );
}

#[test]
fn several_failures_come_in_a_stable_order() {
    let got = check("steps = 1\nfinish = \"completed\"\ntool_calls = 1\n");
    assert_eq!(
        got,
        vec![
            "finish: expected completed, got doom-loop",
            "steps: expected 1, got 3",
            "tool_calls: expected 1, got 3"
        ]
    );
}

const WITHOUT_EXPECT: &str = r#"# The model re-reads the same file.
name = "read-loop"
cassettes = ["x.jsonl"]   # one provider
prompt = "Why does the build fail?"

[policy]
retry = "opencode"   # keep the default
"#;

#[test]
fn accept_creates_expect_and_writes_only_on_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-loop.toml");
    std::fs::write(&path, WITHOUT_EXPECT).unwrap();
    let plan = accept::plan(&path, &run()).unwrap();
    assert!(plan.changes());
    assert_eq!(plan.old_text, WITHOUT_EXPECT);
    assert!(
        plan.new_text.starts_with(WITHOUT_EXPECT),
        "{}",
        plan.new_text
    );
    let added = &plan.new_text[WITHOUT_EXPECT.len()..];
    assert_eq!(
        added,
        "\n[expect]\nfinish = \"doom-loop\"\ndoom_loop = { step = 3, tool = \"read\" }\nretries = 1\nsteps = 3\ntool_calls = 3\ncost_usd = { max = 0.00027 }\ntokens = { input = { max = 1320 }, output = { max = 99 } }\n"
    );
    assert!(plan.diff.contains("+[expect]"), "{}", plan.diff);
    assert!(plan.diff.contains("+steps = 3"));
    assert!(plan.diff.starts_with("--- "));
    // Nothing written yet.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), WITHOUT_EXPECT);
    plan.apply().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), plan.new_text);
    // The accepted scenario loads and passes on the run it was made from.
    let s = scenario::load(
        &path,
        &LoadOptions {
            check_cassettes: false,
        },
    )
    .unwrap();
    assert_eq!(s.expect.check(&run()), Vec::<String>::new());
    // Accepting again is a no-op.
    let again = accept::plan(&path, &run()).unwrap();
    assert!(!again.changes());
    assert!(again.diff.is_empty());
}

#[test]
fn accept_keeps_comments_and_other_keys() {
    let text = r#"# header comment
cassettes = ["x.jsonl"]
prompt = "p"

[policy]
doom_loop = ["opencode", "consecutive:4"]   # compare two

[expect]
# the loop must be caught early
finish = "completed"   # was wrong
steps = { max = 2 }    # tight
sim_ms = 1
detectors = { "consecutive:4" = 9 }

[limits]
max_steps = 50 # hard
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let plan = accept::plan(&path, &run()).unwrap();
    let new = &plan.new_text;
    for kept in [
        "# header comment\n",
        "doom_loop = [\"opencode\", \"consecutive:4\"]   # compare two\n",
        "# the loop must be caught early\n",
        "finish = \"doom-loop\"   # was wrong\n",
        "steps = 3    # tight\n",
        "[limits]\nmax_steps = 50 # hard\n",
        "sim_ms = { max = 5731 }\n",
        "detectors = { \"consecutive:4\" = false }\n",
        "doom_loop = { step = 3, tool = \"read\", detector = \"opencode\" }\n",
    ] {
        assert!(new.contains(kept), "missing {kept:?} in\n{new}");
    }
    assert!(plan.diff.contains("-finish = \"completed\"   # was wrong"));
    assert!(plan.diff.contains("+finish = \"doom-loop\"   # was wrong"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // The file changed since planning: apply refuses.
    std::fs::write(&path, format!("{text}\n")).unwrap();
    assert!(plan.apply().is_err());
}

#[test]
fn accept_several_cassettes_uses_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        "cassettes = [\"a.jsonl\", \"b.jsonl\"]\nprompt = \"p\"\n",
    )
    .unwrap();
    let a = run();
    let mut b = run();
    b.steps = 5;
    b.finish = Finish::MaxSteps;
    let plan = accept::plan_runs(&path, &[a, b]).unwrap();
    assert!(
        plan.new_text.contains("steps = { min = 3, max = 5 }"),
        "{}",
        plan.new_text
    );
    assert!(!plan.new_text.contains("finish"));
}
