//! `--format markdown`: a GitHub-flavoured table, then failures and warnings as lists (for PR
//! comments and job summaries). All user text is escaped.

use super::columns::{columns, Tone, View};
use super::model::RunReport;
use super::text::{md_escape, md_table};

pub(crate) fn render(report: &RunReport) -> String {
    let view = View::Markdown;
    let headers: Vec<String> = columns(view).map(|c| c.header.to_string()).collect();
    let right: Vec<bool> = columns(view).map(|c| c.right()).collect();
    let rows: Vec<Vec<String>> = report
        .runs
        .iter()
        .map(|r| {
            columns(view)
                .map(|c| {
                    let mark = match (c.tone)(r) {
                        Tone::Plain => "",
                        Tone::Good => "✅ ",
                        Tone::Bad => "❌ ",
                    };
                    format!("{mark}{}", md_escape(&c.cell_in(view, r)))
                })
                .collect()
        })
        .collect();
    let s = &report.summary;
    let mut out = format!(
        "**tapeloop**: {} runs, {} passed, {} failed\n\n",
        s.runs, s.passed, s.failed
    );
    out.push_str(&md_table(&headers, &right, &rows));
    for (kind, findings) in report.finding_sections() {
        out.push_str(&format!("\n### {}\n\n", kind.title()));
        for f in findings {
            out.push_str(&format!("- {}\n", f.line(md_escape, "failed")));
        }
    }
    out
}
