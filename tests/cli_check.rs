//! `tapeloop check` on valid and hostile cassettes: file:line messages, exit codes, no panics.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/read-loop.openai.jsonl"
);
const HEADER: &str =
    r#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"openai-chat"}"#;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(paths: &[&Path]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .arg("check")
        .args(paths)
        .output()
        .unwrap();
    let o = Out {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!o.stderr.contains("panicked"), "panic: {}", o.stderr);
    o
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Assert the file is rejected with exit 2 and a `path:line:` message containing `needle`.
fn rejected(dir: &Path, name: &str, bytes: &[u8], line: u64, needle: &str) {
    let p = write(dir, name, bytes);
    let o = check(&[&p]);
    assert_eq!(o.code, 2, "{name}: {}", o.stdout);
    let prefix = format!("{}:{line}: ", p.display());
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(needle)),
        "{name}: expected `{prefix}...{needle}` in:\n{}",
        o.stdout
    );
    assert!(o.stdout.contains("1 invalid"), "{}", o.stdout);
}

#[test]
fn valid_cassette_passes() {
    let o = check(&[Path::new(FIXTURE)]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("checked 1 cassette: 1 valid, 0 invalid"),
        "{}",
        o.stdout
    );
}

#[test]
fn hostile_inputs_are_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rejected(
        d,
        "notjson.jsonl",
        format!("{HEADER}\nhello world\n").as_bytes(),
        2,
        "not JSON",
    );
    rejected(
        d,
        "version.jsonl",
        br#"{"kind":"header","format":"tapeloop-cassette","version":2,"api":"anthropic"}
"#,
        1,
        "unknown version 2",
    );
    rejected(
        d,
        "orphan.jsonl",
        format!(
            "{HEADER}\n{}\n",
            r#"{"kind":"chunk","id":4,"ms":1,"data":"x"}"#
        )
        .as_bytes(),
        2,
        "chunk for id 4 has no request",
    );
    rejected(
        d,
        "junk.jsonl",
        b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe\x00\n\x00\x01",
        1,
        "not UTF-8",
    );
    let p = write(d, "empty.jsonl", b"");
    let o = check(&[&p]);
    assert_eq!(o.code, 2);
    assert!(
        o.stdout.contains(&format!("{}: empty file", p.display())),
        "{}",
        o.stdout
    );

    let mut bytes = std::fs::read(FIXTURE).unwrap();
    let pos = memchr::memmem::find(&bytes, b"src/main.rs").unwrap();
    bytes[pos] = b'S';
    rejected(d, "hash.jsonl", &bytes, 14, "footer says sha256");
}

#[test]
fn hundred_megabyte_line_is_rejected_without_reading_it_into_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    writeln!(f, "{HEADER}").unwrap();
    f.write_all(br#"{"kind":"tool","step":1,"call_id":"c","tool":"t","output":""#)
        .unwrap();
    let block = vec![b'a'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&block).unwrap();
    }
    f.write_all(b"\"}\n").unwrap();
    f.write_all(b"{\"kind\":\"bogus\"}\n").unwrap();
    drop(f);
    let o = check(&[&p]);
    assert_eq!(o.code, 2);
    let prefix = format!("{}:2: line is", p.display());
    assert!(
        o.stdout.contains(&prefix) && o.stdout.contains("limit"),
        "{}",
        o.stdout
    );
    // Checking went on after the long line.
    assert!(
        o.stdout
            .contains(&format!("{}:3: unknown kind `bogus`", p.display())),
        "{}",
        o.stdout
    );
}

#[test]
fn keeps_going_after_bad_lines_and_caps_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{HEADER}\n");
    for i in 0..80 {
        text.push_str(&format!(
            "{{\"kind\":\"end\",\"id\":{i},\"ms\":0,\"outcome\":\"complete\"}}\n"
        ));
    }
    let p = write(dir.path(), "many.jsonl", text.as_bytes());
    let o = check(&[&p]);
    assert_eq!(o.code, 2);
    assert!(o
        .stdout
        .contains(&format!("{}:2: end for id 0", p.display())));
    assert!(o
        .stdout
        .contains(&format!("{}:51: end for id 49", p.display())));
    assert!(!o.stdout.contains(":52: "), "capped at 50 shown");
    assert!(
        o.stdout.contains("... and 30 more problems"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("(80 problems)"), "{}", o.stdout);
}

#[test]
fn truncated_cassette_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(FIXTURE).unwrap();
    let footer = memchr::memmem::rfind(&bytes, b"{\"kind\":\"footer\"").unwrap();
    let p = write(dir.path(), "cut.jsonl", &bytes[..footer - 40]);
    let o = check(&[&p, Path::new(FIXTURE)]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.contains("warning: truncated"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("2 valid, 0 invalid (0 problems), 1 truncated"),
        "{}",
        o.stdout
    );
}

#[test]
fn one_bad_file_among_good_ones_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.jsonl", b"{}\n");
    let o = check(&[Path::new(FIXTURE), &bad]);
    assert_eq!(o.code, 2);
    assert!(o.stdout.contains("1 valid, 1 invalid"), "{}", o.stdout);
    // A directory is searched for *.jsonl.
    let o = check(&[dir.path()]);
    assert_eq!(o.code, 2);
    assert!(o.stdout.contains("checked 1 cassette"), "{}", o.stdout);
}
