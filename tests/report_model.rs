//! Run report model: FORMATS.md's example, field order, round trip, reader rules, merging.

mod support_report;
use proptest::prelude::*;
use support_report::read_loop_run;
use tapeloop::event::Usage;
use tapeloop::provider::Api;
use tapeloop::report::{
    merge, partition_index, DetectorResult, Finish, RunRecord, RunReport, StepDetail,
};

/// FORMATS.md "Run report", verbatim.
const FORMATS_EXAMPLE: &str = r#"{"tapeloop":"0.1.0","format":1,"runs":[{
  "scenario":"read-loop","cassette":"recordings/read-loop.openai.jsonl","api":"openai-chat","provider":"openai","model":"gpt-4o-mini",
  "finish":"doom-loop","steps":3,"tool_calls":3,
  "doom_loop":{"step":3,"tool":"read","detector":"opencode"},
  "detectors":[{"detector":"opencode","step":3,"tool":"read"},{"detector":"seed","step":3,"tool":"read"}],
  "retries":[{"step":1,"attempt":1,"status":429,"delay_ms":3000,"reason":"rate limited"}],
  "tokens":{"input":1200,"output":90,"reasoning":0,"cache_read":0,"cache_write":0},
  "cost_usd":0.00024,"sim_ms":5210,"ttft_ms":412,
  "passed":true,"failures":[]
}],"summary":{"runs":1,"passed":1,"failed":0}}"#;

fn example_record() -> RunRecord {
    let mut r = read_loop_run();
    r.detectors = ["opencode", "seed"]
        .iter()
        .map(|d| DetectorResult {
            detector: d.to_string(),
            step: Some(3),
            tool: Some("read".into()),
        })
        .collect();
    r.ttft_ms = Some(412);
    r
}

fn example_report() -> RunReport {
    let mut report = RunReport::new(vec![example_record()]);
    report.tapeloop = "0.1.0".into();
    report
}

#[test]
fn serializes_exactly_as_formats_md_including_field_order() {
    let ours = serde_json::to_string(&example_report()).unwrap();
    // Parsed and re-serialized with preserve_order: same keys, same order, same values.
    let theirs: serde_json::Value = serde_json::from_str(FORMATS_EXAMPLE).unwrap();
    assert_eq!(ours, serde_json::to_string(&theirs).unwrap());
}

#[test]
fn reads_formats_md_example_and_round_trips() {
    let read = RunReport::from_json(FORMATS_EXAMPLE, "example").unwrap();
    assert_eq!(read, example_report());
    let text = read.to_json();
    assert!(text.ends_with("}\n"));
    assert_eq!(RunReport::from_json(&text, "x").unwrap(), read);
}

#[test]
fn extras_round_trip_and_are_skipped_when_empty() {
    let mut r = example_record();
    r.unused_interactions = 2;
    r.truncated = true;
    r.warnings = vec!["tool `x` unanswered".into()];
    r.divergence = Some("$.messages[2].content".into());
    r.stream_ms = Some(1798);
    r.wall_ms = Some(3);
    r.doom_loop = None;
    r.ttft_ms = None;
    r.step_details = vec![StepDetail {
        step: 1,
        status: "completed".into(),
        finish: Some("tool-calls".into()),
        tool_calls: 1,
        tokens: Usage::default(),
        cost_usd: 0.0001,
        started_ms: 0,
        finished_ms: 2210,
    }];
    let report = RunReport::new(vec![r]);
    let text = report.to_json();
    let back = RunReport::from_json(&text, "x").unwrap();
    assert_eq!(back, report);
    // null for absent core fields, extras after `failures`.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let run = &v["runs"][0];
    assert!(run["doom_loop"].is_null() && run["ttft_ms"].is_null());
    let keys: Vec<&str> = run
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let failures = keys.iter().position(|k| *k == "failures").unwrap();
    assert_eq!(
        &keys[failures + 1..],
        &[
            "unused_interactions",
            "truncated",
            "warnings",
            "divergence",
            "stream_ms",
            "wall_ms",
            "step_details"
        ]
    );
    let plain = serde_json::to_value(RunReport::new(vec![example_record()])).unwrap();
    assert!(plain["runs"][0].get("wall_ms").is_none());
    assert!(plain["runs"][0].get("warnings").is_none());
    // Determinism comparisons drop wall_ms.
    assert_eq!(back.deterministic().runs[0].wall_ms, None);
}

#[test]
fn reader_checks_format_and_tolerates_unknown_fields() {
    let future = FORMATS_EXAMPLE.replace("\"format\":1", "\"format\":2");
    let e = RunReport::from_json(&future, "r.json").unwrap_err();
    assert!(e.to_string().contains("unsupported report format 2"), "{e}");
    let extra = FORMATS_EXAMPLE.replace(
        "\"passed\":true,",
        "\"passed\":true,\"new_metric\":{\"a\":1},",
    );
    assert_eq!(RunReport::from_json(&extra, "r").unwrap(), example_report());
    let broken = RunReport::from_json("{\"format\":1,\n\"runs\":[{]}", "r.json").unwrap_err();
    assert!(broken.to_string().starts_with("r.json:2:"), "{broken}");
    assert!(RunReport::from_json("[]", "r").is_err());
}

fn record(scenario: &str, cassette: &str, passed: bool, steps: u32) -> RunRecord {
    let mut r = RunRecord::new(
        scenario,
        cassette,
        Api::Anthropic,
        "anthropic",
        "m",
        Finish::Completed,
    );
    r.steps = steps;
    r.passed = passed;
    if !passed {
        r.failures = vec!["steps: expected 1, got 2".into()];
    }
    r
}

#[test]
fn merge_sorts_recounts_and_rejects_duplicates() {
    let a = RunReport::new(vec![
        record("b", "x.jsonl", true, 1),
        record("a", "y.jsonl", false, 2),
    ]);
    let b = RunReport::new(vec![record("a", "x.jsonl", true, 3)]);
    let m = merge(vec![a.clone(), b]).unwrap();
    let order: Vec<(&str, &str)> = m
        .runs
        .iter()
        .map(|r| (r.scenario.as_str(), r.cassette.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![("a", "x.jsonl"), ("a", "y.jsonl"), ("b", "x.jsonl")]
    );
    assert_eq!(
        (m.summary.runs, m.summary.passed, m.summary.failed),
        (3, 2, 1)
    );
    let e = merge(vec![a.clone(), a.clone()]).unwrap_err();
    assert!(
        e.to_string()
            .contains("b [x.jsonl] appears in more than one report"),
        "{e}"
    );
    let mut other = a.clone();
    other.tapeloop = "9.9.9".into();
    assert!(merge(vec![a, other]).is_err());
    assert_eq!(merge(vec![]).unwrap().runs.len(), 0);
}

#[test]
fn partition_index_is_fixed() {
    // Pinned values: changing the hash would reshuffle every user's CI shards.
    assert_eq!(
        partition_index("read-loop", 4),
        (fnv("read-loop") % 4) as usize
    );
    assert_eq!(
        partition_index("read-loop", 7),
        (fnv("read-loop") % 7) as usize
    );
    assert_eq!(partition_index("read-loop", 1), 0);
    let counts = (0..1000).fold([0usize; 4], |mut c, i| {
        c[partition_index(&format!("scenario-{i}"), 4)] += 1;
        c
    });
    assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
}

/// Independent FNV-1a 64 reference.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

proptest! {
    #[test]
    fn merging_partitions_equals_the_whole(
        runs in prop::collection::btree_map(
            ("[a-z]{1,6}(-[a-z0-9]{1,4})?", prop::sample::select(vec!["p.openai.jsonl", "p.anthropic.jsonl", "q.jsonl"])),
            (any::<bool>(), 0u32..50),
            0..40,
        ),
        n in 1usize..6,
    ) {
        let records: Vec<RunRecord> = runs
            .iter()
            .map(|((s, c), (passed, steps))| record(s, c, *passed, *steps))
            .collect();
        let mut whole = RunReport::new(records.clone());
        whole.sort_runs();
        let mut shards: Vec<Vec<RunRecord>> = vec![Vec::new(); n];
        for r in records.into_iter().rev() {
            shards[partition_index(&r.scenario, n)].push(r);
        }
        let merged = merge(shards.into_iter().map(RunReport::new).collect()).unwrap();
        prop_assert_eq!(merged, whole);
    }
}
