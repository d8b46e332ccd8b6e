//! Hostile input against the decoders, through the real binary: the issue-16 reproducers (a
//! Gemini `partialArgs` JSON path of 100 000 segments, one that asks for 10 000-element arrays
//! 2 000 levels deep) must end in an error that names the limit, within a stated memory
//! bound, with `run` and `check` refusing the cassette (exit 2), and a cassette with no usable
//! interaction must never PASS.

mod support_rss;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support_rss::run_measured;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tapeloop"))
}

/// Peak resident memory (KiB) the memory bounds below are held to: the decoding work is capped
/// at 64 MiB (`limits::DEFAULT.max_bytes`); the rest is the binary itself.
const PEAK_RSS_LIMIT_KIB: i64 = 160 * 1024;

fn sse_with_path(path: &str) -> String {
    let chunk = json!({"candidates":[{"content":{"parts":[{"functionCall":{
        "name":"f","partialArgs":[{"jsonPath": path, "stringValue":"x"}]}}]}}]});
    format!("data: {chunk}\n\n")
}

fn deep_path() -> String {
    format!("${}", ".a".repeat(100_000))
}

fn wide_path() -> String {
    format!("${}", "[10000]".repeat(2_000))
}

/// A one-interaction Gemini cassette whose response body is `sse`.
fn gemini_cassette(dir: &Path, name: &str, sse: &str) -> PathBuf {
    let lines = [
        json!({"kind":"header","format":"tapeloop-cassette","version":1,"api":"gemini",
               "model":"gemini-2.5-flash","recorded_at":"2026-01-01T00:00:00Z","redacted":[]}),
        json!({"kind":"request","id":1,"step":1,"attempt":1,"method":"POST",
               "url":"http://127.0.0.1/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
               "headers":{},"body":{"contents":[]}}),
        json!({"kind":"response","id":1,"status":200,
               "headers":{"content-type":"text/event-stream"},"ms":1}),
        json!({"kind":"chunk","id":1,"ms":2,"data": sse}),
        json!({"kind":"end","id":1,"ms":3,"outcome":"complete"}),
    ];
    let p = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).unwrap();
    p
}

fn scenario(dir: &Path, cassette: &Path) -> PathBuf {
    let p = dir.join(format!(
        "{}.toml",
        cassette.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &p,
        format!(
            "name = \"hostile\"\napi = \"gemini\"\nmodel = \"gemini-2.5-flash\"\ncassettes = [{:?}]\nprompt = \"hi\"\n",
            cassette.display().to_string()
        ),
    )
    .unwrap();
    p
}

#[test]
fn deep_json_path_is_an_error_naming_the_limit_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let sse = dir.path().join("deep.sse");
    std::fs::write(&sse, sse_with_path(&deep_path())).unwrap();
    let out = bin()
        .args(["events", "--api", "gemini"])
        .arg(&sse)
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "killed by a signal: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("nests deeper than the 128-level limit"),
        "{stdout}"
    );
}

#[test]
fn amplifying_json_path_stays_under_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in [("wide", wide_path()), ("deep", deep_path())] {
        let sse = dir.path().join(format!("{name}.sse"));
        std::fs::write(&sse, sse_with_path(&path)).unwrap();
        let mut cmd = bin();
        cmd.args(["events", "--api", "gemini"]).arg(&sse);
        let (code, peak_kib) = run_measured(cmd);
        assert_eq!(code, 0, "{name}: events prints the error event");
        assert!(
            peak_kib < PEAK_RSS_LIMIT_KIB,
            "{name}: peak RSS {peak_kib} KiB is over the {PEAK_RSS_LIMIT_KIB} KiB bound"
        );
    }
}

#[test]
fn run_and_check_refuse_an_undecodable_cassette_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in [("wide", wide_path()), ("deep", deep_path())] {
        let c = gemini_cassette(dir.path(), &format!("{name}.jsonl"), &sse_with_path(&path));
        let sc = scenario(dir.path(), &c);

        let check = bin().arg("check").arg(&c).output().unwrap();
        let text = String::from_utf8_lossy(&check.stdout);
        assert_eq!(check.status.code(), Some(2), "{name}: check: {text}");
        assert!(
            text.contains("interaction 1 cannot be decoded") && text.contains("limit"),
            "{name}: check must say what run refuses: {text}"
        );

        let mut cmd = bin();
        cmd.arg("run").arg(&sc);
        let (code, peak_kib) = run_measured(cmd);
        assert_eq!(code, 2, "{name}: run must refuse the cassette");
        assert!(
            peak_kib < PEAK_RSS_LIMIT_KIB,
            "{name}: run peak RSS {peak_kib} KiB is over {PEAK_RSS_LIMIT_KIB} KiB"
        );
        let run = bin().arg("run").arg(&sc).output().unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            err.contains(&*c.display().to_string()) && err.contains("limit"),
            "{name}: the error names the file and the limit: {err}"
        );
    }
}

#[test]
fn a_cassette_with_no_usable_interaction_is_exit_2_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let full = gemini_cassette(dir.path(), "full.jsonl", "data: {}\n\n");
    // Cut after the request line: nothing replayable is left.
    let text = std::fs::read_to_string(&full).unwrap();
    let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    let c = dir.path().join("cut.jsonl");
    std::fs::write(&c, cut).unwrap();
    let sc = scenario(dir.path(), &c);
    let run = bin().arg("run").arg(&sc).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "run: {err}");
    assert!(err.contains("no usable interaction"), "{err}");
    let check = bin().arg("check").arg(&c).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
