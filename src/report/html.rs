//! `--format html`: one self-contained page (inline CSS, no scripts, no external assets) with
//! the run table and the failures. All user text is escaped.

use super::model::RunReport;
use super::text::{doom_cell, format_ms, format_usd, html_escape, retries_cell};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em}\
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.fail td.v{color:#b00;font-weight:bold}tr.pass td.v{color:#070}\
ul.failures li{color:#b00}pre{white-space:pre-wrap}";

pub(crate) fn render(report: &RunReport) -> String {
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
    for h in [
        "scenario",
        "cassette",
        "provider",
        "model",
        "verdict",
        "finish",
        "steps",
        "tool calls",
        "doom loop",
        "retries",
        "in",
        "out",
        "reasoning",
        "cache read",
        "cache write",
        "cost",
        "sim",
    ] {
        out.push_str(&format!("<th>{h}</th>"));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &report.runs {
        let (class, verdict) = if r.passed {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        out.push_str(&format!("<tr class=\"{class}\">"));
        for text in [&r.scenario, r.cassette_file(), &r.provider, &r.model] {
            out.push_str(&format!("<td>{}</td>", html_escape(text)));
        }
        out.push_str(&format!("<td class=\"v\">{verdict}</td>"));
        out.push_str(&format!("<td>{}</td>", r.finish));
        for n in [r.steps.to_string(), r.tool_calls.to_string()] {
            out.push_str(&format!("<td class=\"n\">{n}</td>"));
        }
        out.push_str(&format!("<td>{}</td>", html_escape(&doom_cell(r))));
        let nums = [
            retries_cell(r),
            r.tokens.input.to_string(),
            r.tokens.output.to_string(),
            r.tokens.reasoning.to_string(),
            r.tokens.cache_read.to_string(),
            r.tokens.cache_write.to_string(),
            format_usd(r.cost_usd),
            format_ms(r.sim_ms),
        ];
        for n in nums {
            out.push_str(&format!("<td class=\"n\">{}</td>", html_escape(&n)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let failed: Vec<_> = report.runs.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        out.push_str("<h2>Failures</h2>\n<ul class=\"failures\">\n");
        for r in failed {
            for f in &r.failures {
                out.push_str(&format!(
                    "<li>{}: {}</li>\n",
                    html_escape(&r.label()),
                    html_escape(f)
                ));
            }
            if r.failures.is_empty() {
                out.push_str(&format!("<li>{}: failed</li>\n", html_escape(&r.label())));
            }
        }
        out.push_str("</ul>\n");
    }
    let warned: Vec<_> = report
        .runs
        .iter()
        .filter(|r| !r.warnings.is_empty())
        .collect();
    if !warned.is_empty() {
        out.push_str("<h2>Warnings</h2>\n<ul>\n");
        for r in warned {
            for w in &r.warnings {
                out.push_str(&format!(
                    "<li>{}: {}</li>\n",
                    html_escape(&r.label()),
                    html_escape(w)
                ));
            }
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
