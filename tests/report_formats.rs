//! Output formats: JUnit (parsed by python3's ElementTree), escaping of hostile names, CSV
//! round trip, no ANSI without colour, Markdown and HTML escaping.

use std::process::Command;

mod support_report;
use support_report::read_loop_run;

use tapeloop::provider::Api;
use tapeloop::report::{
    render, render_with, Columns, Finish, Format, RenderOptions, RunRecord, RunReport,
};

const HOSTILE: &str = "a<b>&c\"d'e\u{1b}[31mf\u{0}g\u{7}h\ti";

fn report() -> RunReport {
    let mut ok = read_loop_run();
    ok.tokens.reasoning = 5;
    ok.tokens.cache_read = 7;
    ok.tokens.cache_write = 11;
    ok.ttft_ms = Some(412);
    let mut bad = RunRecord::new(
        HOSTILE,
        format!("recordings/{HOSTILE}.jsonl"),
        Api::Anthropic,
        "anthropic",
        "claude",
        Finish::Completed,
    );
    bad.set_failures(vec![
        "steps: expected at most 5, got 7".into(),
        format!("doom_loop: expected at step 3 ({HOSTILE}), got none"),
    ]);
    bad.warnings = vec!["tool `x` unanswered".into()];
    RunReport::new(vec![ok, bad])
}

#[test]
fn format_names_parse() {
    for name in ["table", "json", "csv", "junit", "markdown", "html"] {
        let f: Format = name.parse().unwrap();
        assert_eq!(f.to_string(), name);
    }
    let e = "xml".parse::<Format>().unwrap_err();
    assert!(e.contains("table, json, csv, junit, markdown, html"));
}

#[test]
fn table_has_no_ansi_without_color_and_lists_failures() {
    // Issue 15 made the default table compact; these assertions are about the wide one.
    let wide = |color| RenderOptions {
        color,
        width: Some(400),
        columns: Columns::Wide,
        ..RenderOptions::default()
    };
    let text = render_with(&report(), Format::Table, &wide(false));
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("read-loop.openai.jsonl (openai)"));
    assert!(text.contains("PASS") && text.contains("FAIL"));
    assert!(text.contains("3/read/opencode"));
    assert!(text.contains("1 (3.00s)"));
    assert!(text.contains("$0.00024"));
    assert!(text.contains("7/11"));
    assert!(text.contains("  ✗ a<b>&c\"d'e\\u{1b}[31mf\\u{0}g\\u{7}h\\u{9}i [a<b>&c\"d'e\\u{1b}[31mf\\u{0}g\\u{7}h\\u{9}i.jsonl]: steps: expected at most 5, got 7"), "{text}");
    assert!(text.contains("2 runs: 1 passed, 1 failed"));
    // Columns line up: the header and the first row have `verdict` at the same offset.
    let lines: Vec<&str> = text.lines().collect();
    let col = lines[0].find("verdict").unwrap();
    assert_eq!(&lines[1][col..col + 4], "PASS");
    let colored = render_with(&report(), Format::Table, &wide(true));
    assert!(colored.contains("\u{1b}[32mPASS\u{1b}[0m"));
    assert!(render(&report(), Format::Table, true).contains("\u{1b}[32mPASS"));
    // Hostile escapes are neutralised even with colour on: only our own SGR codes appear.
    assert!(!colored.contains("\u{1b}[31mf"));
}

#[test]
fn junit_escapes_hostile_text() {
    let xml = render(&report(), Format::Junit, false);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    assert!(
        xml.contains("classname=\"a&lt;b&gt;&amp;c&quot;d&apos;e\\u{1b}[31mf\\u{0}g\\u{7}h&#9;i\"")
    );
    // No raw control characters at all (XML 1.0 forbids most of them).
    assert!(
        !xml.chars()
            .any(|c| (c as u32) < 0x20 && c != '\n' && c != '\t'),
        "{xml:?}"
    );
    assert!(xml.contains(
        "<testsuite name=\"tapeloop\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\""
    ));
    assert!(xml.contains("name=\"read-loop [read-loop.openai.jsonl]\""));
}

#[test]
fn junit_parses_with_python_elementtree() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipping: python3 not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, render(&report(), Format::Junit, false)).unwrap();
    let script = r#"
import sys, json, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
cases = suite.findall("testcase")
print(json.dumps({
  "root": root.tag,
  "suite": suite.get("name"),
  "tests": suite.get("tests"),
  "failures": suite.get("failures"),
  "cases": [[c.get("classname"), c.get("name"), c.get("time")] for c in cases],
  "failure_messages": [f.get("message") for c in cases for f in c.findall("failure")],
  "failure_texts": [f.text for c in cases for f in c.findall("failure")],
  "out": cases[0].find("system-out").text,
}))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["root"], "testsuites");
    assert_eq!(v["suite"], "tapeloop");
    assert_eq!(v["tests"], "2");
    assert_eq!(v["failures"], "1");
    let hostile = "a<b>&c\"d'e\\u{1b}[31mf\\u{0}g\\u{7}h\ti";
    assert_eq!(
        v["cases"][0],
        serde_json::json!(["read-loop", "read-loop [read-loop.openai.jsonl]", "0.000"])
    );
    assert_eq!(v["cases"][1][0], hostile);
    assert_eq!(v["cases"][1][1], format!("{hostile} [{hostile}.jsonl]"));
    assert_eq!(
        v["failure_messages"][0],
        format!(
            "steps: expected at most 5, got 7; doom_loop: expected at step 3 ({hostile}), got none"
        )
    );
    assert_eq!(
        v["failure_texts"][0],
        format!(
            "steps: expected at most 5, got 7\ndoom_loop: expected at step 3 ({hostile}), got none"
        )
    );
    let metrics = v["out"].as_str().unwrap();
    assert!(
        metrics.contains("steps: 3") && metrics.contains("doom_loop: 3/read/opencode"),
        "{metrics}"
    );
}

#[test]
fn csv_parses_back() {
    let text = render(&report(), Format::Csv, false);
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("scenario")], "read-loop");
    assert_eq!(&rows[0][col("tokens_input")], "1200");
    assert_eq!(&rows[0][col("tokens_cache_write")], "11");
    assert_eq!(&rows[0][col("tokens_total")], "1313");
    assert_eq!(&rows[0][col("doom_loop_detector")], "opencode");
    assert_eq!(&rows[0][col("retry_wait_ms")], "3000");
    assert_eq!(rows[0][col("cost_usd")].parse::<f64>().unwrap(), 0.00024);
    assert_eq!(&rows[0][col("failures")], "");
    assert_eq!(&rows[1][col("scenario")], HOSTILE);
    assert_eq!(&rows[1][col("passed")], "false");
    assert_eq!(&rows[1][col("doom_loop_step")], "");
    let failures: Vec<&str> = rows[1][col("failures")].split("; ").collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0], "steps: expected at most 5, got 7");
}

#[test]
fn markdown_and_html_escape_user_text() {
    let md = render(&report(), Format::Markdown, false);
    assert!(md.contains("| scenario | cassette |"));
    assert!(md.contains("|---|---|"));
    assert!(md.contains("a\\<b\\>\\&c"));
    // Every table row has the same number of unescaped pipes.
    let pipes = |l: &str| l.replace("\\|", "").matches('|').count();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert!(rows.iter().all(|l| pipes(l) == pipes(rows[0])), "{md}");
    assert!(md.contains("### Failures"));
    assert!(!md.contains('\u{1b}'));

    let html = render(&report(), Format::Html, false);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("a&lt;b&gt;&amp;c&quot;d&#39;e"));
    assert!(!html.contains("a<b>"));
    // Issue 15 added inline JS: the page's own script is the only one, and nothing loads
    // from the network.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("http"));
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn json_format_is_the_report() {
    let r = report();
    let text = render(&r, Format::Json, true);
    assert_eq!(RunReport::from_json(&text, "x").unwrap(), r);
    assert_eq!(render(&r, Format::Json, false), text);
}
