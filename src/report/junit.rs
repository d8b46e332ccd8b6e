//! `--format junit`: JUnit XML for CI test views.
//!
//! Shape (the common Jenkins/Ant JUnit XSD): `<testsuites>` holding one
//! `<testsuite name="tapeloop" tests failures errors skipped time>`, one `<testcase
//! classname="<scenario>" name="<scenario> [<cassette file>]" time>` per run, a `<failure
//! message type>` with the failure lines when the run failed, and `<system-out>` with the key
//! metrics. `time` is the wall-clock seconds when the report has `wall_ms`, else 0 (simulated
//! time is in `<system-out>`). Text is XML-escaped; characters XML 1.0 cannot carry at all
//! (most C0 controls) are written as visible `\u{..}` escapes.

use super::findings::{FindingKind, UNEXPLAINED};
use super::model::{RunRecord, RunReport};
use super::text::{doom_cell, format_usd, markup_escape, retries_cell, Markup};

fn xml_escape(s: &str, attr: bool) -> String {
    markup_escape(
        s,
        if attr {
            Markup::XmlAttr
        } else {
            Markup::XmlText
        },
    )
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
    for w in r.findings(FindingKind::Warning) {
        s.push_str(&format!("warning: {}\n", w.message.unwrap_or_default()));
    }
    s
}

pub(crate) fn render(report: &RunReport) -> String {
    let tests = report.runs.len();
    let failures = report.runs.iter().filter(|r| !r.passed).count();
    let total_ms: u64 = report.runs.iter().filter_map(|r| r.wall_ms).sum();
    let time = seconds(Some(total_ms));
    // Runs of an agent under test (`tapeloop exec`) say so in the suite name.
    let suite = if report.runs.iter().any(|r| r.agent.is_some()) {
        "tapeloop exec"
    } else {
        "tapeloop"
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time}\">\n"
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\">\n"
    ));
    for r in &report.runs {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n",
            xml_escape(&r.scenario, true),
            xml_escape(&r.label(), true),
            seconds(r.wall_ms)
        ));
        let lines: Vec<&str> = r
            .findings(FindingKind::Failure)
            .map(|f| f.message.unwrap_or(UNEXPLAINED))
            .collect();
        if !lines.is_empty() {
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
