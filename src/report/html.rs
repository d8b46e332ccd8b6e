//! `--format html`: one self-contained page (inline CSS, no scripts, no external assets) with
//! the run table and the failures. All user text is escaped.

use super::columns::{columns, Align, Tone, View};
use super::findings::FindingKind;
use super::model::RunReport;
use super::text::html_escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em}\
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.fail td.v{color:#b00;font-weight:bold}tr.pass td.v{color:#070}\
ul.failures li{color:#b00}pre{white-space:pre-wrap}";

pub(crate) fn render(report: &RunReport) -> String {
    let view = View::Html;
    let s = &report.summary;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!(
        "<title>tapeloop report: {} runs, {} failed</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        s.runs, s.failed
    ));
    out.push_str(&format!(
        "<h1>tapeloop {}</h1>\n<p>{} runs: {} passed, {} failed</p>\n",
        html_escape(&report.tapeloop),
        s.runs,
        s.passed,
        s.failed
    ));
    out.push_str("<table>\n<thead><tr>");
    for c in columns(view) {
        out.push_str(&format!("<th>{}</th>", c.header));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &report.runs {
        let class = if r.passed { "pass" } else { "fail" };
        out.push_str(&format!("<tr class=\"{class}\">"));
        for c in columns(view) {
            // The row carries pass/fail; a toned cell is the one the stylesheet colours.
            let cell_class = match ((c.tone)(r), c.align) {
                (Tone::Good | Tone::Bad, _) => " class=\"v\"",
                (Tone::Plain, Align::Right) => " class=\"n\"",
                (Tone::Plain, Align::Left) => "",
            };
            out.push_str(&format!(
                "<td{cell_class}>{}</td>",
                html_escape(&c.cell_in(view, r))
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    for (kind, findings) in report.finding_sections() {
        let list_class = match kind {
            FindingKind::Failure => " class=\"failures\"",
            FindingKind::Warning => "",
        };
        out.push_str(&format!("<h2>{}</h2>\n<ul{list_class}>\n", kind.title()));
        for f in findings {
            out.push_str(&format!("<li>{}</li>\n", f.line(html_escape, "failed")));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
