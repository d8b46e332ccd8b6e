//! `--format junit`: JUnit XML for CI test views.
//!
//! Shape (the common Jenkins/Ant JUnit XSD): `<testsuites>` holding one
//! `<testsuite name="tapeloop" tests failures errors skipped time>`, one `<testcase
//! classname="<scenario>" name="<scenario> [<cassette file>]" time>` per run, a `<failure
//! message type>` with the failure lines when the run failed, and `<system-out>` with the key
//! metrics. `time` is the wall-clock seconds when the report has `wall_ms`, else 0 (simulated
//! time is in `<system-out>`). Text is XML-escaped; characters XML 1.0 cannot carry at all
//! (most C0 controls) are written as visible `\u{..}` escapes.

use super::model::{RunRecord, RunReport};
use super::text::{doom_cell, format_usd, retries_cell};

/// Escape for XML 1.0 content (`attr = false`) or a double-quoted attribute (`attr = true`).
pub(crate) fn xml_escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attr => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: Option<u64>) -> String {
    format!("{:.3}", ms.unwrap_or(0) as f64 / 1000.0)
}

fn metrics(r: &RunRecord) -> String {
    let mut s = format!(
        "finish: {}\nsteps: {}\ntool_calls: {}\ndoom_loop: {}\nretries: {}\ntokens: input {} output {} reasoning {} cache_read {} cache_write {}\ncost_usd: {}\nsim_ms: {}\n",
        r.finish,
        r.steps,
        r.tool_calls,
        doom_cell(r),
        retries_cell(r),
        r.tokens.input,
        r.tokens.output,
        r.tokens.reasoning,
        r.tokens.cache_read,
        r.tokens.cache_write,
        format_usd(r.cost_usd),
        r.sim_ms,
    );
    if let Some(t) = r.ttft_ms {
        s.push_str(&format!("ttft_ms: {t}\n"));
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}

pub(crate) fn render(report: &RunReport) -> String {
    let tests = report.runs.len();
    let failures = report.runs.iter().filter(|r| !r.passed).count();
    let total_ms: u64 = report.runs.iter().filter_map(|r| r.wall_ms).sum();
    let time = seconds(Some(total_ms));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"tapeloop\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time}\">\n"
    ));
    out.push_str(&format!(
        "  <testsuite name=\"tapeloop\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\">\n"
    ));
    for r in &report.runs {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n",
            xml_escape(&r.scenario, true),
            xml_escape(&r.label(), true),
            seconds(r.wall_ms)
        ));
        if !r.passed {
            let lines = if r.failures.is_empty() {
                vec!["failed (no expectation message recorded)".to_string()]
            } else {
                r.failures.clone()
            };
            out.push_str(&format!(
                "      <failure message=\"{}\" type=\"expectation\">{}</failure>\n",
                xml_escape(&lines.join("; "), true),
                xml_escape(&lines.join("\n"), false)
            ));
        }
        out.push_str(&format!(
            "      <system-out>{}</system-out>\n",
            xml_escape(&metrics(r), false)
        ));
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
