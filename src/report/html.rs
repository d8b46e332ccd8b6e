//! `--format html`: one self-contained page — inline CSS and JS, no network, readable without
//! JS. A summary header (regressions first when there is a baseline), then the runs table with
//! compact columns from the column spec, sortable and filterable, each run's failures and
//! warnings on rows of their own, and a drill-down per run ([`super::html_run`]).
//!
//! Stable hooks for tests and tools: each run's `<tbody>` carries `data-run="SCENARIO/CASSETTE"`
//! (and `data-verdict`, `data-finish`, `data-provider`); the drill-down's steps carry
//! `data-step`, retries `data-retry-wait-ms`, the doom-loop mark `data-doom-step`. Sorting and
//! filtering state lives in the URL hash (`#sort=cost_usd&desc=1&verdict=FAIL&q=retry&open=RUN`).
//! All text from scenarios and cassettes is escaped. Without `wall_time` the page is a pure
//! function of the report.

use std::collections::BTreeSet;

use super::columns::{columns, Align, Tone, View};
use super::findings::{FindingKind, UNEXPLAINED};
use super::html_run::drill_down;
use super::model::{RunRecord, RunReport};
use super::text::{format_ms, format_usd, html_escape};
use super::RenderOptions;

pub(crate) const STYLE: &str = include_str!("assets/report.css");
pub(crate) const SCRIPT: &str = include_str!("assets/report.js");

/// `SCENARIO/CASSETTE`: a run's `data-run` hook.
pub(crate) fn run_id(r: &RunRecord) -> String {
    format!("{}/{}", r.scenario, r.cassette)
}

/// The document up to `<body>`, with `title` (escaped here).
pub(crate) fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        html_escape(title)
    )
}

/// One summary card.
pub(crate) fn card(class: &str, value: &str, label: &str) -> String {
    format!(
        "<div class=\"card {class}\"><b>{}</b><span>{}</span></div>",
        html_escape(value),
        html_escape(label)
    )
}

pub(crate) fn render(report: &RunReport, opts: &RenderOptions) -> String {
    let s = &report.summary;
    let warnings = report
        .runs
        .iter()
        .flat_map(|r| r.findings(FindingKind::Warning))
        .count();
    let mut out = head(&format!(
        "tapeloop report: {} runs, {} failed",
        s.runs, s.failed
    ));
    out.push_str(&format!(
        "<h1>tapeloop report<small>tapeloop {}</small></h1>\n",
        html_escape(&report.tapeloop)
    ));
    if !opts.regressions.is_empty() {
        out.push_str(&format!(
            "<section class=\"regressions\"><h2>{} regression(s) against the baseline</h2><ul>\n",
            opts.regressions.len()
        ));
        for r in &opts.regressions {
            out.push_str(&format!(
                "<li data-regression=\"{}\">{}</li>\n",
                html_escape(&r.metric),
                html_escape(&r.message)
            ));
        }
        out.push_str("</ul></section>\n");
    }
    out.push_str(&summary_cards(report, warnings, opts.wall_time));
    out.push_str(&filters(report));
    out.push_str(&runs_table(report));
    out.push_str(&format!(
        "<footer>Click a run for its step timeline. Times are simulated (virtual) unless marked wall.</footer>\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    ));
    out
}

fn summary_cards(report: &RunReport, warnings: usize, wall_time: bool) -> String {
    let s = &report.summary;
    let cost: f64 = report.runs.iter().map(|r| r.cost_usd).sum();
    let tokens: u64 = report.runs.iter().map(|r| r.tokens.total()).sum();
    let sim: u64 = report.runs.iter().map(|r| r.sim_ms).sum();
    let mut cards = vec![
        card("", &s.runs.to_string(), "runs"),
        card("pass", &s.passed.to_string(), "passed"),
        card(
            if s.failed > 0 { "fail" } else { "" },
            &s.failed.to_string(),
            "failed",
        ),
        card(
            if warnings > 0 { "warn" } else { "" },
            &warnings.to_string(),
            "warnings",
        ),
        card("", &format_usd(cost), "total cost"),
        card("", &tokens.to_string(), "tokens"),
        card("", &format_ms(sim), "simulated time"),
    ];
    if wall_time {
        let wall: u64 = report.runs.iter().filter_map(|r| r.wall_ms).sum();
        cards.push(card("", &format_ms(wall), "wall time"));
    }
    format!("<div class=\"cards\">{}</div>\n", cards.join(""))
}

/// The filter controls (shown only when the script runs): every value present in the report.
fn filters(report: &RunReport) -> String {
    let select = |name: &str, label: &str, values: BTreeSet<String>| {
        let mut s =
            format!("<label>{label} <select name=\"{name}\"><option value=\"\">all</option>");
        for v in values {
            let v = html_escape(&v);
            s.push_str(&format!("<option>{v}</option>"));
        }
        s.push_str("</select></label>");
        s
    };
    let verdicts = report.runs.iter().map(|r| verdict(r).to_string()).collect();
    let finishes = report.runs.iter().map(|r| r.finish.to_string()).collect();
    let providers = report.runs.iter().map(provider_of).collect();
    format!(
        "<form class=\"filters\">{}{}{}<label>scenario <input name=\"q\" type=\"search\" placeholder=\"filter by scenario or cassette\"></label><output></output></form>\n",
        select("verdict", "verdict", verdicts),
        select("finish", "finish", finishes),
        select("provider", "provider", providers),
    )
}

fn verdict(r: &RunRecord) -> &'static str {
    if r.passed {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The provider cell as the table shows it (the filter's value).
fn provider_of(r: &RunRecord) -> String {
    columns(View::Html)
        .find(|c| c.name == "provider_api")
        .map(|c| c.cell_in(View::Html, r))
        .unwrap_or_else(|| r.provider.clone())
}

fn runs_table(report: &RunReport) -> String {
    let view = View::Html;
    let n = columns(view).count();
    let mut out = String::from("<table class=\"runs\">\n<thead><tr>");
    for c in columns(view) {
        let class = if c.right() { " class=\"n\"" } else { "" };
        out.push_str(&format!(
            "<th{class} data-col=\"{}\"><button type=\"button\">{}</button></th>",
            c.name, c.header
        ));
    }
    out.push_str("</tr></thead>\n");
    for r in &report.runs {
        out.push_str(&format!(
            "<tbody class=\"{}\" data-run=\"{}\" data-verdict=\"{}\" data-finish=\"{}\" data-provider=\"{}\">\n<tr class=\"row\">",
            if r.passed { "pass" } else { "fail" },
            html_escape(&run_id(r)),
            verdict(r),
            r.finish,
            html_escape(&provider_of(r)),
        ));
        for c in columns(view) {
            let class = match ((c.tone)(r), c.align) {
                (Tone::Good | Tone::Bad, _) => " class=\"v\"",
                (Tone::Plain, Align::Right) => " class=\"n\"",
                (Tone::Plain, Align::Left) => " class=\"name\"",
            };
            out.push_str(&format!(
                "<td{class} data-v=\"{}\">{}</td>",
                html_escape(&c.cell_in(View::Csv, r)),
                html_escape(&c.cell_in(view, r))
            ));
        }
        out.push_str("</tr>\n");
        for kind in FindingKind::ALL {
            for f in r.findings(kind) {
                let (class, mark) = match kind {
                    FindingKind::Failure => ("failure", "✗"),
                    FindingKind::Warning => ("warning", "!"),
                };
                out.push_str(&format!(
                    "<tr class=\"finding {class}\"><td colspan=\"{n}\">{mark} {}</td></tr>\n",
                    html_escape(f.message.unwrap_or(UNEXPLAINED))
                ));
            }
        }
        out.push_str(&format!(
            "<tr class=\"drill\"><td colspan=\"{n}\">{}</td></tr>\n</tbody>\n",
            drill_down(r)
        ));
    }
    out.push_str("</table>\n");
    out
}
