//! The HTML report (issue 15) as a person gets it: rendered by headless Chromium from disk,
//! scripts run, and checked on the resulting DOM — every run has its row, a retry scenario's
//! drill-down has one wait per retry, the doom-loop run marks its step, sorting and filtering
//! (driven through the URL hash the page honours) change the visible rows, and hostile names
//! stay text. Screenshots are kept under `target/report-html/` as test artifacts.
//!
//! Chromium comes from Debian's `chromium` package, which `.ci/run` installs. Without it the
//! browser tests say so loudly and skip — and fail when `CI` is set.
//! `TAPELOOP_CHROMIUM` names another binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tapeloop::provider::Api;
use tapeloop::report::{render, render_with, Finish, Format, RenderOptions, RunRecord, RunReport};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HOSTILE: &str = "<script>alert(1)</script>";

fn tapeloop(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .current_dir(ROOT)
        .args(args)
        .env_remove("CI")
        .env_remove("COLUMNS")
        .output()
        .expect("run tapeloop");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The browser, or None after saying loudly why the test skips (a failure under `CI`).
fn chromium() -> Option<PathBuf> {
    let candidates = std::env::var_os("TAPELOOP_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    let msg = "no Chromium found (/usr/bin/chromium; `apt-get install chromium`, as .ci/run does, \
               or set TAPELOOP_CHROMIUM): the HTML report was NOT tested in a browser";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// Run headless Chromium on `url` with `extra` flags; its stdout. Killed after 90 s.
fn browse(browser: &Path, extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    // Read stdout while the browser runs: a DOM larger than the pipe would block it.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
}

/// The DOM after the page's scripts ran.
fn dom(browser: &Path, file: &Path, hash: &str) -> String {
    let url = format!("file://{}{hash}", file.display());
    let d = browse(browser, &["--dump-dom".to_string()], &url);
    assert!(d.contains("</html>"), "no DOM for {url}:\n{d}");
    d
}

/// Each run's `<tbody>` in document order: (data-run, its markup, shown).
fn groups(dom: &str) -> Vec<(String, String, bool)> {
    dom.split("<tbody")
        .skip(1)
        .map(|chunk| {
            let chunk = chunk.split("</tbody>").next().unwrap();
            let open_tag = chunk.split('>').next().unwrap();
            let run = open_tag
                .split("data-run=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("a data-run hook")
                .to_string();
            (run, chunk.to_string(), !open_tag.contains("hidden"))
        })
        .collect()
}

fn visible(dom: &str) -> Vec<String> {
    groups(dom)
        .into_iter()
        .filter(|g| g.2)
        .map(|g| g.0)
        .collect()
}

/// The bundled run: its JSON report and its HTML report written to `dir`.
fn bundled(dir: &Path) -> (Value, PathBuf) {
    let json: Value = serde_json::from_str(&tapeloop(&["run", "--format", "json"])).unwrap();
    let html = dir.join("report.html");
    tapeloop(&["run", "--format", "html", "--out", html.to_str().unwrap()]);
    (json, html)
}

fn run_id(run: &Value) -> String {
    format!(
        "{}/{}",
        run["scenario"].as_str().unwrap(),
        run["cassette"].as_str().unwrap()
    )
}

fn artifacts() -> PathBuf {
    let dir = Path::new(ROOT).join("target/report-html");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_bundled_report_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = bundled(dir.path());
    let runs = json["runs"].as_array().unwrap();

    // Every run has its row, in report order, all shown; the script ran (it counts them).
    let page = dom(&browser, &html, "");
    let ids: Vec<String> = runs.iter().map(run_id).collect();
    assert_eq!(visible(&page), ids);
    assert!(
        page.contains(&format!("{n} of {n} runs", n = ids.len())),
        "the script did not run"
    );
    let by_run: BTreeMap<String, String> = groups(&page).into_iter().map(|g| (g.0, g.1)).collect();

    // A retry scenario's drill-down: one wait per retry, each with its wait.
    let retry = runs
        .iter()
        .find(|r| r["scenario"] == "retry-anthropic-overloaded")
        .unwrap();
    let waits: Vec<String> = retry["retries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["delay_ms"].to_string())
        .collect();
    assert_eq!(waits.len(), 2);
    let body = &by_run[&run_id(retry)];
    let found: Vec<&str> = body
        .split("data-retry-wait-ms=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(found, waits, "{body}");
    assert!(body.contains("HTTP 529"), "the reason's status is told");

    // The doom-loop run marks the detection at the documented step, with its detector.
    let doom = runs.iter().find(|r| r["scenario"] == "doom-cycle").unwrap();
    let step = doom["doom_loop"]["step"].to_string();
    assert_eq!(step, "6", "the documented step (scenarios/doom-cycle.toml)");
    let body = &by_run[&run_id(doom)];
    assert_eq!(body.matches("data-doom-step=").count(), 1, "{body}");
    assert!(
        body.contains(&format!("data-doom-step=\"{step}\"")),
        "{body}"
    );
    assert!(body.contains("cycle:2:3"), "{body}");
    for n in 1..=6 {
        assert!(body.contains(&format!("data-step=\"{n}\"")), "step {n}");
    }

    // Filtering by text, verdict, finish and provider changes the visible rows.
    let retry_runs: Vec<String> = ids
        .iter()
        .filter(|i| i.contains("retry"))
        .cloned()
        .collect();
    assert!(!retry_runs.is_empty() && retry_runs.len() < ids.len());
    assert_eq!(visible(&dom(&browser, &html, "#q=retry")), retry_runs);
    assert!(visible(&dom(&browser, &html, "#verdict=FAIL")).is_empty());
    // Each filter shows exactly the runs whose JSON field has the value.
    for (hash, field, value) in [
        ("#finish=doom-loop", "finish", "doom-loop"),
        ("#provider=google%2Fgemini", "provider", "google"),
    ] {
        let expected: Vec<String> = runs
            .iter()
            .filter(|r| r[field] == value)
            .map(run_id)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(visible(&dom(&browser, &html, hash)), expected, "{hash}");
    }

    // Sorting by steps, descending: the most steps first (ties keep report order), and the
    // reverse ascending.
    let mut by_steps: Vec<(i64, usize, String)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (-r["steps"].as_i64().unwrap(), i, run_id(r)))
        .collect();
    by_steps.sort();
    let expected: Vec<String> = by_steps.into_iter().map(|x| x.2).collect();
    let sorted = visible(&dom(&browser, &html, "#sort=steps&desc=1"));
    assert_eq!(sorted, expected);
    assert_ne!(sorted, ids, "sorting changed the order");
    let asc = visible(&dom(&browser, &html, "#sort=steps"));
    assert_eq!(
        asc.first(),
        ids.iter().find(|i| i.starts_with("doom-key-reorder/"))
    );

    // Opening a run from the hash expands its drill-down.
    let page = dom(&browser, &html, &format!("#open={}", run_id(doom)));
    let open: Vec<_> = groups(&page)
        .into_iter()
        .filter(|g| g.1.contains("class=\"row\"") && page.contains("open"))
        .collect();
    assert!(!open.is_empty());
    assert!(
        page.contains(&format!(
            "class=\"pass open\" data-run=\"{}\"",
            run_id(doom)
        )),
        "the doom-cycle drill-down is open"
    );

    // Screenshots as test artifacts: the overview and one drill-down.
    let out = artifacts();
    for (name, hash) in [
        ("overview.png", String::new()),
        (
            "drill-down.png",
            format!("#q=doom-cycle&open={}", run_id(doom)),
        ),
    ] {
        let png = out.join(name);
        let _ = std::fs::remove_file(&png);
        browse(
            &browser,
            &[format!("--screenshot={}", png.display())],
            &format!("file://{}{hash}", html.display()),
        );
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{name}: no screenshot"
        );
        eprintln!("screenshot: {}", png.display());
    }
}

fn hostile_report() -> RunReport {
    let mut r = RunRecord::new(
        HOSTILE,
        format!("recordings/{HOSTILE}.jsonl"),
        Api::Anthropic,
        HOSTILE,
        HOSTILE,
        Finish::Completed,
    );
    r.set_failures(vec![format!("steps: {HOSTILE}")]);
    r.warnings = vec![HOSTILE.to_string()];
    RunReport::new(vec![r])
}

#[test]
fn a_hostile_scenario_name_renders_as_text() {
    let html = render(&hostile_report(), Format::Html, false);
    assert!(!html.contains(HOSTILE), "raw markup in the page");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script"
    );
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.html");
    std::fs::write(&file, &html).unwrap();
    let page = dom(&browser, &file, "");
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(visible(&page).len(), 1);
}

#[test]
fn the_page_is_byte_identical_for_the_same_input() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = bundled(dir.path());
    let a = std::fs::read(a).unwrap();
    let (_, b) = bundled(dir.path());
    assert_eq!(a, std::fs::read(b).unwrap(), "two runs, two pages");
    let text = String::from_utf8(a).unwrap();
    assert!(!text.contains("wall time"));
    // Nothing loads from anywhere (cassette text may mention URLs; the page fetches none).
    for tag in ["src=", "<link", "url(", "@import"] {
        assert!(!text.contains(tag), "{tag} in the page");
    }
    // Wall time only when asked.
    let mut report = hostile_report();
    report.runs[0].wall_ms = Some(1234);
    let plain = render(&report, Format::Html, false);
    assert!(!plain.contains("wall time"));
    let asked = render_with(
        &report,
        Format::Html,
        &RenderOptions {
            wall_time: true,
            ..RenderOptions::default()
        },
    );
    assert!(asked.contains("1.23s") && asked.contains("wall time"));
}

#[test]
fn without_a_script_every_drill_down_is_in_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = bundled(dir.path());
    let text = std::fs::read_to_string(html).unwrap();
    let n = json["runs"].as_array().unwrap().len();
    // The drill-down rows are in the markup (collapsed only by the script's stylesheet rule).
    assert_eq!(text.matches("<tr class=\"drill\">").count(), n);
    assert!(text.contains(".js tbody:not(.open) tr.drill{display:none}"));
}
