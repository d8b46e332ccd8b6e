//! The terminal table: one aligned row per run, failures underneath, then a summary line.

use super::model::{RunRecord, RunReport};
use super::text::{
    doom_cell, format_ms, format_usd, retries_cell, sanitize, Cell, Grid, BOLD, GREEN, RED,
};

/// The column headers of the run table.
const HEADERS: &[&str] = &[
    "scenario",
    "cassette (provider)",
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
];
const RIGHT: &[bool] = &[
    false, false, false, false, true, true, false, true, true, true, true, true, true, true,
];

pub(crate) fn row(r: &RunRecord) -> Vec<Cell> {
    let verdict = if r.passed {
        Cell::styled("PASS", GREEN)
    } else {
        Cell::styled("FAIL", RED)
    };
    vec![
        Cell::plain(r.scenario.clone()),
        Cell::plain(format!("{} ({})", r.cassette_file(), r.provider)),
        verdict,
        Cell::plain(r.finish.as_str()),
        Cell::plain(r.steps.to_string()),
        Cell::plain(r.tool_calls.to_string()),
        Cell::plain(doom_cell(r)),
        Cell::plain(retries_cell(r)),
        Cell::plain(r.tokens.input.to_string()),
        Cell::plain(r.tokens.output.to_string()),
        Cell::plain(r.tokens.reasoning.to_string()),
        Cell::plain(format!("{}/{}", r.tokens.cache_read, r.tokens.cache_write)),
        Cell::plain(format_usd(r.cost_usd)),
        Cell::plain(format_ms(r.sim_ms)),
    ]
}

pub(crate) fn render(report: &RunReport, color: bool) -> String {
    let grid = Grid {
        headers: HEADERS.iter().map(|h| h.to_string()).collect(),
        right: RIGHT.to_vec(),
        rows: report.runs.iter().map(row).collect(),
        groups: Vec::new(),
    };
    let mut out = grid.render(color);
    let failed: Vec<&RunRecord> = report.runs.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        out.push('\n');
        for r in &failed {
            let mut lines: Vec<String> = r.failures.clone();
            if lines.is_empty() {
                lines.push("failed (no expectation message recorded)".to_string());
            }
            for f in lines {
                let line = format!("  ✗ {}: {}", sanitize(&r.label()), sanitize(&f));
                if color {
                    out.push_str(&format!("{RED}{line}\x1b[0m\n"));
                } else {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
    }
    let warnings: usize = report.runs.iter().map(|r| r.warnings.len()).sum();
    for r in &report.runs {
        for w in &r.warnings {
            out.push_str(&format!("  ! {}: {}\n", sanitize(&r.label()), sanitize(w)));
        }
    }
    let s = &report.summary;
    let mut summary = format!("{} runs: {} passed, {} failed", s.runs, s.passed, s.failed);
    if warnings > 0 {
        summary.push_str(&format!(", {warnings} warning(s)"));
    }
    let cost: f64 = report.runs.iter().map(|r| r.cost_usd).sum();
    let sim: u64 = report.runs.iter().map(|r| r.sim_ms).sum();
    summary.push_str(&format!(
        "; total cost {}, simulated time {}",
        format_usd(cost),
        format_ms(sim)
    ));
    out.push('\n');
    if color {
        let c = if s.failed > 0 { RED } else { GREEN };
        out.push_str(&format!("{BOLD}{c}{summary}\x1b[0m\n"));
    } else {
        out.push_str(&summary);
        out.push('\n');
    }
    out
}
