//! Baselines (save/load, regression rules and their edges) and the comparison tables.

use tapeloop::event::Usage;
use tapeloop::provider::Api;
use tapeloop::report::{
    baseline, compare_providers, compare_reports, compare_to_baseline, load_baseline,
    save_baseline, DoomLoopHit, Finish, RegressionRules, RetryRecord, RunRecord, RunReport, Style,
    Threshold,
};

fn rec(scenario: &str, provider: &str) -> RunRecord {
    let mut r = RunRecord::new(
        scenario,
        format!("recordings/{scenario}.{provider}.jsonl"),
        Api::OpenAiChat,
        provider,
        "m",
        Finish::Completed,
    );
    r.steps = 5;
    r.tool_calls = 4;
    r.tokens = Usage {
        input: 800,
        output: 200,
        reasoning: 0,
        cache_read: 0,
        cache_write: 0,
    };
    r.cost_usd = 0.01;
    r.sim_ms = 1000;
    r
}

fn one(base: RunRecord, cur: RunRecord) -> Vec<String> {
    compare_to_baseline(
        &RunReport::new(vec![cur]),
        &RunReport::new(vec![base]),
        &RegressionRules::default(),
    )
    .into_iter()
    .map(|r| r.message)
    .collect()
}

#[test]
fn unchanged_and_improved_runs_do_not_regress() {
    let base = rec("read-loop", "openai");
    assert!(one(base.clone(), base.clone()).is_empty());
    let mut better = base.clone();
    better.steps = 2;
    better.cost_usd = 0.001;
    better.tokens.input = 1;
    assert!(one(base, better).is_empty());
}

#[test]
fn each_integer_metric_regresses_on_any_increase() {
    let base = rec("read-loop", "openai");
    let mut c = base.clone();
    c.steps = 7;
    assert_eq!(
        one(base.clone(), c),
        vec!["read-loop [read-loop.openai.jsonl]: steps regressed 5 → 7 (+2, +40.0%)"]
    );
    let mut c = base.clone();
    c.tool_calls = 5;
    assert_eq!(
        one(base.clone(), c),
        vec!["read-loop [read-loop.openai.jsonl]: tool_calls regressed 4 → 5 (+1, +25.0%)"]
    );
    let mut c = base.clone();
    c.retries = vec![RetryRecord {
        step: 1,
        attempt: 1,
        status: None,
        delay_ms: 1000,
        reason: "reset".into(),
    }];
    let regs = compare_to_baseline(
        &RunReport::new(vec![c]),
        &RunReport::new(vec![base]),
        &RegressionRules {
            sim_ms: None,
            ..RegressionRules::default()
        },
    );
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].metric, "retries");
    assert_eq!((regs[0].baseline, regs[0].current), (0.0, 1.0));
    assert_eq!(
        regs[0].message,
        "read-loop [read-loop.openai.jsonl]: retries regressed 0 → 1 (+1)"
    );
}

#[test]
fn tokens_cost_and_sim_time_tolerate_five_percent_exactly() {
    let base = rec("s", "openai");
    // tokens total 1000: +50 (exactly 5%) is fine, +51 is not.
    let mut c = base.clone();
    c.tokens.output += 50;
    assert!(one(base.clone(), c.clone()).is_empty());
    c.tokens.reasoning += 1;
    assert_eq!(
        one(base.clone(), c),
        vec!["s [s.openai.jsonl]: tokens regressed 1000 → 1051 (+51, +5.1%)"]
    );
    let mut c = base.clone();
    c.cost_usd = 0.0105;
    assert!(one(base.clone(), c.clone()).is_empty());
    c.cost_usd = 0.01051;
    let msgs = one(base.clone(), c);
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].starts_with("s [s.openai.jsonl]: cost_usd regressed $0.01 → $0.01051"),
        "{msgs:?}"
    );
    let mut c = base.clone();
    c.sim_ms = 1050;
    assert!(one(base.clone(), c.clone()).is_empty());
    c.sim_ms = 1051;
    assert_eq!(one(base.clone(), c).len(), 1);
    // From zero, any increase is more than 5%.
    let mut zero = base.clone();
    zero.cost_usd = 0.0;
    let mut c = zero.clone();
    c.cost_usd = 0.000001;
    assert_eq!(one(zero, c).len(), 1);
}

#[test]
fn thresholds_are_configurable_absolute_and_relative() {
    let t = Threshold { abs: 2.0, rel: 0.0 };
    assert!(!t.exceeded(5.0, 7.0));
    assert!(t.exceeded(5.0, 8.0));
    let t = Threshold { abs: 2.0, rel: 0.5 };
    assert!(!t.exceeded(10.0, 15.0)); // +5 ≤ 50% of 10
    assert!(t.exceeded(10.0, 16.0));
    assert!(!t.exceeded(1.0, 3.0)); // +2 is not > abs 2
    let base = rec("s", "openai");
    let mut c = base.clone();
    c.steps = 6;
    let lenient = RegressionRules {
        steps: Some(Threshold { abs: 1.0, rel: 0.0 }),
        ..RegressionRules::default()
    };
    let run = |rules: &RegressionRules, c: &RunRecord| {
        compare_to_baseline(
            &RunReport::new(vec![c.clone()]),
            &RunReport::new(vec![base.clone()]),
            rules,
        )
    };
    assert!(run(&lenient, &c).is_empty());
    c.steps = 7;
    assert_eq!(run(&lenient, &c).len(), 1);
    let off = RegressionRules {
        steps: None,
        ..RegressionRules::default()
    };
    assert!(run(&off, &c).is_empty());
}

#[test]
fn doom_loop_later_lost_and_new_are_named() {
    let hit = |step| {
        Some(DoomLoopHit {
            step,
            tool: "read".into(),
            detector: "opencode".into(),
        })
    };
    let mut base = rec("s", "openai");
    base.doom_loop = hit(3);
    let mut c = base.clone();
    c.doom_loop = hit(3);
    assert!(one(base.clone(), c.clone()).is_empty());
    c.doom_loop = hit(2);
    assert!(
        one(base.clone(), c.clone()).is_empty(),
        "earlier detection is better"
    );
    c.doom_loop = hit(5);
    assert_eq!(
        one(base.clone(), c.clone()),
        vec!["s [s.openai.jsonl]: doom_loop detected later: step 3 → step 5 (+2)"]
    );
    let allow = RegressionRules {
        doom_loop_later_by: Some(2),
        ..RegressionRules::default()
    };
    let regs = compare_to_baseline(
        &RunReport::new(vec![c.clone()]),
        &RunReport::new(vec![base.clone()]),
        &allow,
    );
    assert!(regs.is_empty());
    c.doom_loop = None;
    assert_eq!(
        one(base.clone(), c.clone()),
        vec!["s [s.openai.jsonl]: doom_loop no longer detected (was step 3, read, opencode)"]
    );
    let mut none = base.clone();
    none.doom_loop = None;
    let mut now = none.clone();
    now.doom_loop = hit(4);
    assert_eq!(
        one(none, now),
        vec!["s [s.openai.jsonl]: doom_loop newly detected at step 4 (read, opencode)"]
    );
}

#[test]
fn newly_failing_and_missing_runs() {
    let base = rec("s", "openai");
    let mut c = base.clone();
    c.set_failures(vec!["finish: expected completed, got max-steps".into()]);
    assert_eq!(
        one(base.clone(), c),
        vec!["s [s.openai.jsonl]: passed before, fails now: finish: expected completed, got max-steps"]
    );
    let regs = compare_to_baseline(
        &RunReport::new(vec![rec("other", "openai")]),
        &RunReport::new(vec![base]),
        &RegressionRules::default(),
    );
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].metric, "run");
    assert_eq!(
        regs[0].to_string(),
        "s [s.openai.jsonl]: run missing (in the baseline, not in this report)"
    );
}

#[test]
fn baselines_save_and_load_without_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rec("s", "openai");
    r.wall_ms = Some(17);
    let report = RunReport::new(vec![r]);
    let bdir = dir.path().join(".tapeloop/baselines");
    let path = save_baseline(&report, &bdir, "main").unwrap();
    assert_eq!(path, bdir.join("main.json"));
    let loaded = load_baseline(&bdir, "main").unwrap();
    assert_eq!(loaded, report.deterministic());
    // Saving again gives the same bytes.
    let before = std::fs::read(&path).unwrap();
    save_baseline(&report, &bdir, "main").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    for bad in ["", "../x", "a/b", ".hidden"] {
        assert!(save_baseline(&report, &bdir, bad).is_err(), "{bad}");
    }
    let missing = load_baseline(&bdir, "nope").unwrap_err();
    assert!(missing.to_string().contains("nope.json"));
    assert_eq!(baseline::DEFAULT_BASELINE_DIR, ".tapeloop/baselines");
}

#[test]
fn provider_comparison_table_and_markdown() {
    let mut a = rec("read-loop", "openai");
    a.ttft_ms = Some(412);
    a.stream_ms = Some(1800);
    let mut b = rec("read-loop", "anthropic");
    b.steps = 7;
    b.tokens.cache_read = 300;
    let single = rec("solo", "openai");
    let report = RunReport::new(vec![a, b, single]);
    // Issue 15: long format, one row per scenario × provider grouped by scenario.
    let text = compare_providers(
        &report,
        Style::Table {
            color: false,
            width: 100,
        },
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("scenario") && lines[0].contains("provider"),
        "{text}"
    );
    assert!(lines[0].contains("cache r/w") && lines[0].contains("ttft"));
    assert!(lines[1].starts_with("read-loop") && lines[1].contains("openai"));
    assert!(lines[1].contains("412ms"), "{text}");
    assert!(lines[2].starts_with(' ') && lines[2].contains("anthropic"));
    assert!(
        lines[2].contains("300/0") && lines[2].contains(" 7 "),
        "{text}"
    );
    assert!(!text.contains("solo"));
    assert!(!text.contains('\u{1b}'));
    let md = compare_providers(&report, Style::Markdown);
    assert!(md.contains("| scenario | provider | steps |"), "{md}");
    assert!(
        md.contains("| read-loop | openai |") && md.contains("|  | anthropic |"),
        "{md}"
    );
    let none = compare_providers(
        &RunReport::new(vec![rec("solo", "openai")]),
        Style::Markdown,
    );
    assert!(none.contains("nothing to compare"));
}

#[test]
fn report_comparison_highlights_changes_only() {
    let a = rec("a", "openai");
    let gone = rec("gone", "openai");
    let mut a2 = a.clone();
    a2.steps = 6;
    let same = rec("same", "openai");
    let new = rec("new", "openai");
    let before = RunReport::new(vec![a, gone, same.clone()]);
    let after = RunReport::new(vec![a2, same, new]);
    let text = compare_reports(
        &before,
        &after,
        Style::Table {
            color: false,
            width: 100,
        },
    );
    assert!(!text.contains('\u{1b}'));
    assert!(text.contains("5 → 6"), "{text}");
    assert!(text.contains("1 changed, 1 unchanged, 1 new, 1 removed"));
    let colored = compare_reports(
        &before,
        &after,
        Style::Table {
            color: true,
            width: 100,
        },
    );
    assert!(colored.contains("\u{1b}[33m5 → 6\u{1b}[0m"), "{colored}");
    let changed_row = colored.lines().find(|l| l.starts_with("a ")).unwrap();
    assert_eq!(
        changed_row.matches("\u{1b}[33m").count(),
        2,
        "{changed_row}"
    ); // `changed` + steps
    assert!(
        !changed_row.contains("\u{1b}[33m4\u{1b}[0m"),
        "unchanged tool calls stay plain"
    );
    let md = compare_reports(&before, &after, Style::Markdown);
    assert!(md.contains("**5 → 6**"), "{md}");
    let row = md.lines().find(|l| l.starts_with("| same ")).unwrap();
    assert!(!row.contains("**"), "{row}");
}
