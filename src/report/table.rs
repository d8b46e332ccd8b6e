//! The terminal table: one aligned row per run, failures underneath, then a summary line.

use super::columns::{columns, Tone, View};
use super::findings::{FindingKind, UNEXPLAINED};
use super::model::RunReport;
use super::text::{format_ms, format_usd, sanitize, Cell, Grid, BOLD, GREEN, RED};

pub(crate) fn render(report: &RunReport, color: bool) -> String {
    let grid = Grid {
        headers: columns(View::Table).map(|c| c.header.to_string()).collect(),
        right: columns(View::Table).map(|c| c.right()).collect(),
        rows: report
            .runs
            .iter()
            .map(|r| {
                columns(View::Table)
                    .map(|c| {
                        let text = c.cell_in(View::Table, r);
                        match (c.tone)(r) {
                            Tone::Plain => Cell::plain(text),
                            Tone::Good => Cell::styled(text, GREEN),
                            Tone::Bad => Cell::styled(text, RED),
                        }
                    })
                    .collect()
            })
            .collect(),
        groups: Vec::new(),
    };
    let mut out = grid.render(color);
    let mut warnings = 0;
    for (i, f) in report.findings().enumerate() {
        match f.kind {
            FindingKind::Failure => {
                if i == 0 {
                    out.push('\n');
                }
                let line = format!("  ✗ {}", f.line(sanitize, UNEXPLAINED));
                if color {
                    out.push_str(&format!("{RED}{line}\x1b[0m\n"));
                } else {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            FindingKind::Warning => {
                warnings += 1;
                out.push_str(&format!("  ! {}\n", f.line(sanitize, "")));
            }
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
