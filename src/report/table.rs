//! The terminal table: one aligned row per run, failures underneath, then a summary line.
//! It fits the width it is given: names are shortened in the middle, numbers never.

use super::columns::{Column, Tone, View};
use super::findings::{FindingKind, UNEXPLAINED};
use super::model::RunReport;
use super::text::{format_ms, format_usd, sanitize, wrap, Cell, Grid, BOLD, GREEN, RED};
use super::RenderOptions;

pub(crate) fn render(report: &RunReport, opts: &RenderOptions) -> String {
    let color = opts.color;
    let cols: Vec<&Column> = opts.columns.resolve();
    let grid = Grid {
        headers: cols
            .iter()
            .map(|c| c.header_in(View::Table).to_string())
            .collect(),
        right: cols.iter().map(|c| c.right()).collect(),
        shrink: cols.iter().map(|c| c.shrink_rank()).collect(),
        width: Some(opts.width()),
        rows: report
            .runs
            .iter()
            .map(|r| {
                cols.iter()
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
        ..Grid::default()
    };
    let mut out = grid.render(color);
    let mut warnings = 0;
    for (i, f) in report.findings().enumerate() {
        match f.kind {
            FindingKind::Failure => {
                if i == 0 {
                    out.push('\n');
                }
                let line = wrap(
                    &format!("  ✗ {}", f.line(sanitize, UNEXPLAINED)),
                    opts.width(),
                    "    ",
                )
                .join("\n");
                if color {
                    out.push_str(&format!("{RED}{line}\x1b[0m\n"));
                } else {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            FindingKind::Warning => {
                warnings += 1;
                let line = format!("  ! {}", f.line(sanitize, ""));
                out.push_str(&wrap(&line, opts.width(), "    ").join("\n"));
                out.push('\n');
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
