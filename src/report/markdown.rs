//! `--format markdown`: a GitHub-flavoured table, then failures and warnings as lists (for PR
//! comments and job summaries). All user text is escaped.

use super::model::RunReport;
use super::text::{doom_cell, format_ms, format_usd, md_escape, md_table, retries_cell};

pub(crate) fn render(report: &RunReport) -> String {
    let headers: Vec<String> = [
        "scenario",
        "cassette",
        "provider",
        "verdict",
        "finish",
        "steps",
        "tool calls",
        "doom loop",
        "retries",
        "in",
        "out",
        "reasoning",
        "cache r/w",
        "cost",
        "sim",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let right = [
        false, false, false, false, false, true, true, false, true, true, true, true, true, true,
        true,
    ];
    let rows: Vec<Vec<String>> = report
        .runs
        .iter()
        .map(|r| {
            vec![
                md_escape(&r.scenario),
                md_escape(r.cassette_file()),
                md_escape(&r.provider),
                if r.passed { "✅ PASS" } else { "❌ FAIL" }.to_string(),
                md_escape(r.finish.as_str()),
                r.steps.to_string(),
                r.tool_calls.to_string(),
                md_escape(&doom_cell(r)),
                retries_cell(r),
                r.tokens.input.to_string(),
                r.tokens.output.to_string(),
                r.tokens.reasoning.to_string(),
                format!("{}/{}", r.tokens.cache_read, r.tokens.cache_write),
                md_escape(&format_usd(r.cost_usd)),
                format_ms(r.sim_ms),
            ]
        })
        .collect();
    let s = &report.summary;
    let mut out = format!(
        "**tapeloop**: {} runs, {} passed, {} failed\n\n",
        s.runs, s.passed, s.failed
    );
    out.push_str(&md_table(&headers, &right, &rows));
    let failed: Vec<_> = report.runs.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        out.push_str("\n### Failures\n\n");
        for r in failed {
            let label = md_escape(&r.label());
            if r.failures.is_empty() {
                out.push_str(&format!("- {label}: failed\n"));
            }
            for f in &r.failures {
                out.push_str(&format!("- {label}: {}\n", md_escape(f)));
            }
        }
    }
    let warned: Vec<_> = report
        .runs
        .iter()
        .filter(|r| !r.warnings.is_empty())
        .collect();
    if !warned.is_empty() {
        out.push_str("\n### Warnings\n\n");
        for r in warned {
            for w in &r.warnings {
                out.push_str(&format!("- {}: {}\n", md_escape(&r.label()), md_escape(w)));
            }
        }
    }
    out
}
