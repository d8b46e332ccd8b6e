//! Hostile input against the decoders, through the real binary: the issue-16 reproducers (a
//! Gemini `partialArgs` JSON path of 100 000 segments, one that asks for 10 000-element arrays
//! 2 000 levels deep) must end in an error that names the limit, within a stated memory
//! bound, with `run` and `check` refusing the cassette (exit 2), and a cassette with no usable
//! interaction must never PASS.

mod support_rss;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support_rss::{run_measured, wait_measured};

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

/// A cassette of interactions that never end (request, response, 1 MiB chunks, no `end`)
/// grows what the reader must hold until an `end` arrives: it stops at the 256 MiB it allows
/// open interactions (`cassette::reader::OPEN_INTERACTION_LIMITS`), names that limit, and never
/// holds the whole file (here 640 MiB).
#[test]
fn open_interactions_stop_at_their_limit_not_at_the_end_of_the_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never-ends.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(
        f,
        "{}",
        json!({"kind":"header","format":"tapeloop-cassette","version":1,"api":"openai-chat",
               "model":"gpt-4o","recorded_at":"2026-01-01T00:00:00Z","redacted":[]})
    )
    .unwrap();
    let data = format!("data: {}\n\n", "x".repeat((1 << 20) - 8));
    let chunk_line = |id: u32| json!({"kind":"chunk","id":id,"ms":2,"data":data}).to_string();
    for id in 1..=8u32 {
        writeln!(
            f,
            "{}",
            json!({"kind":"request","id":id,"step":id,"attempt":1,"method":"POST",
            "url":"http://127.0.0.1/v1/chat/completions","headers":{},"body":{"messages":[]}})
        )
        .unwrap();
        writeln!(
            f,
            "{}",
            json!({"kind":"response","id":id,"status":200,"headers":{},"ms":1})
        )
        .unwrap();
        let line = chunk_line(id);
        for _ in 0..80 {
            writeln!(f, "{line}").unwrap();
        }
    }
    f.flush().unwrap();
    drop(f);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 600 << 20, "the cassette is {size} bytes");

    let log = dir.path().join("check.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = bin()
        .arg("check")
        .arg(&path)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let (code, peak_kib) = wait_measured(&mut child);
    std::mem::forget(child); // already reaped
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("interactions open"), "{text}");
    assert!(
        text.contains("268435456"),
        "the message names the limit: {text}"
    );
    // The 256 MiB held, plus one 64 MiB line buffer and the binary: well under the file.
    assert!(
        peak_kib < 420 * 1024,
        "peak RSS {peak_kib} KiB for a {size}-byte cassette"
    );
    eprintln!(
        "check on a {size}-byte cassette of open interactions: exit 2, peak RSS {peak_kib} KiB"
    );
}
