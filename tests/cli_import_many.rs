//! `tapeloop import` over many files and directories: outputs mirror the inputs, an existing
//! output is never overwritten without `--force` (and then nothing at all is written), and a
//! request that is no model call is skipped with a note.

use std::path::{Path, PathBuf};
use std::process::Command;

use tapeloop::cassette::Cassette;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn tapeloop(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(args)
        .output()
        .expect("run tapeloop");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CASSETTES: &str = "tests/fixtures/provider-streams/cassettes";

#[test]
fn a_directory_and_a_file_import_together_and_never_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tree = repo(&format!("{CASSETTES}/llm-anthropic"));
    let single = repo(&format!(
        "{CASSETTES}/llm-anthropic/tests/cassettes/test_anthropic/test_stream_events_text.yaml"
    ));
    // The directory and the file into `out`, with `extra` arguments.
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            tree.to_str().unwrap(),
            single.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        tapeloop(&args)
    };
    let (code, err) = import(&[]);
    assert_eq!(code, 0, "{err}");
    let yaml_count = walk(&tree, "yaml").len();
    assert!(yaml_count >= 2, "the fixture tree has several cassettes");
    let written = walk(&out, "jsonl");
    assert_eq!(written.len(), yaml_count + 1, "{err}");
    assert!(out.join("test_stream_events_text.jsonl").exists());
    assert!(
        out.join("llm-anthropic").is_dir(),
        "the directory's name is kept"
    );
    for p in &written {
        Cassette::load(p).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        err.contains(&format!(
            "{} of {} cassettes imported",
            yaml_count + 1,
            yaml_count + 1
        )),
        "{err}"
    );

    // Again without --force: refused, and no file is touched.
    let before: Vec<_> = written.iter().map(|p| std::fs::read(p).unwrap()).collect();
    std::fs::write(&written[0], b"sentinel").unwrap();
    let (code, err) = import(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&written[0]).unwrap(), b"sentinel");
    // With --force: rewritten.
    let (code, err) = import(&["--force"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&written[0]).unwrap(), before[0]);
}

#[test]
fn a_metadata_get_is_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let src = repo(&format!(
        "{CASSETTES}/pydantic-ai/tests/models/cassettes/test_stream_close/test_cancel_recorded_provider_stream[huggingface].yaml"
    ));
    let out = dir.path().join("hf.jsonl");
    let (code, err) = tapeloop(&["import", src.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: skipped interaction 1: GET https://huggingface.co/api/models/"),
        "{err}"
    );
    let c = Cassette::load(&out).unwrap();
    assert_eq!(c.interactions.len(), 1);
    assert!(c.interactions[0].request.url.ends_with("/chat/completions"));
}

#[test]
fn bad_arguments_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let (code, err) = tapeloop(&["import", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("nope.yaml: no such file or directory"),
        "{err}"
    );
    let (code, err) = tapeloop(&["import", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no *.yaml cassettes below this directory"),
        "{err}"
    );
    // Two inputs that would land on one output.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(
            repo(&format!("{CASSETTES}/llm-anthropic/tests/cassettes/test_anthropic/test_stream_events_text.yaml")),
            d.join("x.yaml"),
        )
        .unwrap();
    }
    let out = dir.path().join("o");
    let (code, err) = tapeloop(&[
        "import",
        a.join("x.yaml").to_str().unwrap(),
        b.join("x.yaml").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("would both be written to"), "{err}");
    assert!(!out.exists(), "nothing written");
}

fn walk(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}
