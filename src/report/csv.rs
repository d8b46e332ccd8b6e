//! `--format csv`: one row per run with a header row; token fields flattened, failures joined
//! with `; `, optional values empty.

use super::model::RunReport;

/// The CSV header, in column order.
pub const CSV_HEADER: &[&str] = &[
    "scenario",
    "cassette",
    "api",
    "provider",
    "model",
    "passed",
    "finish",
    "steps",
    "tool_calls",
    "doom_loop_step",
    "doom_loop_tool",
    "doom_loop_detector",
    "retries",
    "retry_wait_ms",
    "tokens_input",
    "tokens_output",
    "tokens_reasoning",
    "tokens_cache_read",
    "tokens_cache_write",
    "tokens_total",
    "cost_usd",
    "sim_ms",
    "ttft_ms",
    "stream_ms",
    "unused_interactions",
    "truncated",
    "failures",
    "warnings",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub(crate) fn render(report: &RunReport) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    // Writing into a Vec cannot fail except on invariant violations (wrong field count), which
    // the fixed layout below rules out; errors are ignored rather than panicking.
    let _ = w.write_record(CSV_HEADER);
    for r in &report.runs {
        let d = r.doom_loop.as_ref();
        let row: Vec<String> = vec![
            r.scenario.clone(),
            r.cassette.clone(),
            r.api.as_str().to_string(),
            r.provider.clone(),
            r.model.clone(),
            r.passed.to_string(),
            r.finish.as_str().to_string(),
            r.steps.to_string(),
            r.tool_calls.to_string(),
            opt(d.map(|d| d.step)),
            opt(d.map(|d| d.tool.clone())),
            opt(d.map(|d| d.detector.clone())),
            r.retries.len().to_string(),
            r.retry_wait_ms().to_string(),
            r.tokens.input.to_string(),
            r.tokens.output.to_string(),
            r.tokens.reasoning.to_string(),
            r.tokens.cache_read.to_string(),
            r.tokens.cache_write.to_string(),
            r.tokens.total().to_string(),
            r.cost_usd.to_string(),
            r.sim_ms.to_string(),
            opt(r.ttft_ms),
            opt(r.stream_ms),
            r.unused_interactions.to_string(),
            r.truncated.to_string(),
            r.failures.join("; "),
            r.warnings.join("; "),
        ];
        let _ = w.write_record(&row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}
