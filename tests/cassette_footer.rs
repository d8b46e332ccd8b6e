//! The footer hash (FORMATS.md "Footer hash"): tapeloop writes `blake3`; readers verify `blake3`
//! when present and still verify the older `sha256` (the fixture below has one); `check` reports
//! which hash a cassette carries and `--rewrite-footer` turns `sha256` into `blake3`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tapeloop::cassette::{
    rewrite_footer, Cassette, CassetteReader, CassetteStream, CassetteWriter, ErrorKind,
    FooterHash, Header, Redactor, Rewrite,
};
use tapeloop::provider::Api;

/// A cassette written before BLAKE3 (its footer carries `sha256` only), and a bundled recording
/// written with a `blake3` footer; both relative to the repository root.
const SHA256_FIXTURE: &str = "tests/fixtures/cassettes/read-loop.openai.jsonl";
const BLAKE3_RECORDING: &str = "recordings/doom-cycle.openai-chat.jsonl";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The bytes before the footer line and the footer line itself (without its newline).
fn split_footer(bytes: &[u8]) -> (&[u8], &str) {
    let body_end = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let footer = std::str::from_utf8(&bytes[body_end..]).unwrap().trim_end();
    (&bytes[..body_end], footer)
}

/// Every way of reading a cassette must give the same verdict: whole load from a file, from
/// memory, the generic streaming reader (which cannot look ahead and hashes both ways; also
/// through small buffers, so lines and the footer fall across refills), and the replay stream.
fn verdicts(path: &Path, bytes: &[u8]) -> Vec<Result<(), String>> {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(path.file_name().unwrap());
    std::fs::write(&copy, bytes).unwrap();
    fn generic(input: impl std::io::BufRead) -> Result<(), String> {
        CassetteReader::new(input, "mem.jsonl")
            .map_err(|e| e.to_string())
            .and_then(|mut r| match r.by_ref().find_map(Result::err) {
                Some(e) => Err(e.to_string()),
                None => Ok(()),
            })
    }
    let mut ways = vec![generic(bytes)];
    for capacity in [1, 7, 100, 1000, 8192] {
        ways.push(generic(std::io::BufReader::with_capacity(capacity, bytes)));
    }
    let stream = |mut s: CassetteStream| {
        while s.next_interaction().is_some() {}
        s.finish().map(drop).map_err(|e| e.to_string())
    };
    ways.extend([
        Cassette::load(&copy).map(drop).map_err(|e| e.to_string()),
        Cassette::from_bytes(bytes, "mem.jsonl")
            .map(drop)
            .map_err(|e| e.to_string()),
        CassetteStream::open(&copy)
            .map_err(|e| e.to_string())
            .and_then(stream),
        CassetteStream::from_bytes(bytes.to_vec(), "mem.jsonl")
            .map_err(|e| e.to_string())
            .and_then(stream),
    ]);
    ways
}

fn assert_all_ok(path: &Path, bytes: &[u8]) {
    for (i, v) in verdicts(path, bytes).into_iter().enumerate() {
        assert_eq!(v, Ok(()), "reader {i} on {}", path.display());
    }
}

fn assert_all_reject(path: &Path, bytes: &[u8], needle: &str) {
    for (i, v) in verdicts(path, bytes).into_iter().enumerate() {
        let e = v.expect_err(&format!("reader {i} accepted a damaged cassette"));
        assert!(e.contains(needle), "reader {i}: {e}");
    }
}

#[test]
fn bundled_recordings_carry_blake3_and_the_old_fixture_sha256() {
    let c = Cassette::load(repo(BLAKE3_RECORDING)).unwrap();
    let f = c.footer.as_ref().unwrap();
    assert_eq!(f.hash().unwrap().0, FooterHash::Blake3);
    assert!(f.sha256.is_none());
    let c = Cassette::load(repo(SHA256_FIXTURE)).unwrap();
    let f = c.footer.as_ref().unwrap();
    assert_eq!(f.hash().unwrap().0, FooterHash::Sha256);
    assert!(f.blake3.is_none());
}

#[test]
fn both_hashes_verify_and_a_changed_byte_fails_under_each() {
    for (path, field) in [(BLAKE3_RECORDING, "blake3"), (SHA256_FIXTURE, "sha256")] {
        let path = repo(path);
        let bytes = std::fs::read(&path).unwrap();
        assert_all_ok(&path, &bytes);
        // One byte of a chunk changed, structure intact: only the hash can tell.
        let mut bad = bytes.clone();
        let data = memchr::memmem::find(&bad, br#""data":"data: "#).unwrap() + 14;
        let pos = data + bad[data..].iter().position(u8::is_ascii_lowercase).unwrap();
        bad[pos] = bad[pos].to_ascii_uppercase();
        assert_all_reject(&path, &bad, &format!("footer says {field}"));
    }
}

#[test]
fn blake3_wins_over_sha256_and_a_footer_with_neither_is_rejected() {
    let bytes = std::fs::read(repo(BLAKE3_RECORDING)).unwrap();
    let (body, footer) = split_footer(&bytes);
    let path = Path::new("f.jsonl");
    // A wrong sha256 next to the right blake3: blake3 is the one verified.
    let both = footer.replacen(r#","blake3":"#, r#","sha256":"00","blake3":"#, 1);
    assert_ne!(both, footer);
    assert_all_ok(path, &[body, both.as_bytes(), b"\n"].concat());
    // A wrong blake3 next to a right sha256 still fails.
    let sha = hex_sha256(body);
    let wrong_b3 = footer
        .split(r#","blake3":""#)
        .next()
        .map(|head| format!(r#"{head},"blake3":"{}","sha256":"{sha}"}}"#, "0".repeat(64)))
        .unwrap();
    assert_all_reject(
        path,
        &[body, wrong_b3.as_bytes(), b"\n"].concat(),
        "footer says blake3",
    );
    // Neither hash.
    let neither = footer.split(r#","blake3":""#).next().unwrap().to_string() + "}";
    let bad = [body, neither.as_bytes(), b"\n"].concat();
    assert_all_reject(path, &bad, "neither `blake3` nor `sha256`");
    let e = Cassette::from_bytes(&bad, "t.jsonl").unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::InvalidLine { kind: "footer", .. }
    ));
    assert_eq!(e.line, Some(body.split(|&b| b == b'\n').count() as u64));
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn writer_writes_blake3_of_every_byte_before_the_footer() {
    let mut w =
        CassetteWriter::new(Vec::new(), Header::new(Api::OpenAiChat), Redactor::new()).unwrap();
    w.write_tool(&tapeloop::cassette::ToolRecord {
        step: 1,
        call_id: "c".into(),
        tool: "read".into(),
        input: serde_json::json!({"path": "a"}),
        output: "x".into(),
        error: false,
    })
    .unwrap();
    let out = w.finish().unwrap();
    let (body, footer) = split_footer(&out);
    let footer: serde_json::Value = serde_json::from_str(footer).unwrap();
    assert_eq!(
        footer["blake3"].as_str().unwrap(),
        blake3::hash(body).to_hex().as_str()
    );
    assert!(footer.get("sha256").is_none());
    // Field order: counts, then the hash.
    let keys: Vec<&String> = footer.as_object().unwrap().keys().collect();
    assert_eq!(keys[..4], ["kind", "interactions", "lines", "blake3"]);
}

#[test]
fn rewrite_turns_sha256_into_blake3_and_keeps_every_other_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.jsonl");
    let old = std::fs::read(repo(SHA256_FIXTURE)).unwrap();
    std::fs::write(&p, &old).unwrap();
    assert_eq!(rewrite_footer(&p).unwrap(), Rewrite::Rewritten);
    let new = std::fs::read(&p).unwrap();
    let (old_body, old_footer) = split_footer(&old);
    let (new_body, new_footer) = split_footer(&new);
    assert_eq!(old_body, new_body);
    let hash = blake3::hash(new_body).to_hex().to_string();
    let sha_value = old_footer.split(r#""sha256":""#).nth(1).unwrap();
    let sha_value = &sha_value[..sha_value.find('"').unwrap()];
    assert_eq!(
        new_footer,
        old_footer.replace(
            &format!(r#""sha256":"{sha_value}""#),
            &format!(r#""blake3":"{hash}""#)
        )
    );
    let c = Cassette::load(&p).unwrap();
    assert_eq!(c.footer.unwrap().hash().unwrap().0, FooterHash::Blake3);
    // A second rewrite changes nothing; no temporary file is left behind.
    assert_eq!(rewrite_footer(&p).unwrap(), Rewrite::AlreadyBlake3);
    assert_eq!(std::fs::read(&p).unwrap(), new);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn rewrite_refuses_a_damaged_cassette_and_leaves_a_truncated_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = std::fs::read(repo(SHA256_FIXTURE)).unwrap();
    let pos = memchr::memmem::find(&bad, b"src/main.rs").unwrap();
    bad[pos] = b'S';
    let p = dir.path().join("bad.jsonl");
    std::fs::write(&p, &bad).unwrap();
    let e = rewrite_footer(&p).unwrap_err();
    assert!(e.to_string().contains("footer says sha256"), "{e}");
    assert_eq!(
        std::fs::read(&p).unwrap(),
        bad,
        "a damaged cassette is not re-hashed"
    );

    let good = std::fs::read(repo(SHA256_FIXTURE)).unwrap();
    let (body, _) = split_footer(&good);
    let p = dir.path().join("cut.jsonl");
    std::fs::write(&p, body).unwrap();
    assert_eq!(rewrite_footer(&p).unwrap(), Rewrite::Truncated);
    assert_eq!(std::fs::read(&p).unwrap(), body);
}

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_reports_the_hash_and_rewrites_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.jsonl");
    std::fs::copy(repo(SHA256_FIXTURE), &old).unwrap();
    let new = dir.path().join("new.jsonl");
    std::fs::copy(repo(BLAKE3_RECORDING), &new).unwrap();
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());

    let (code, out) = check(&[o, n]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{o}: note: sha256 footer")), "{out}");
    assert!(!out.contains(&format!("{n}: note")), "{out}");
    assert!(out.contains("footer hash: 1 blake3, 1 sha256"), "{out}");

    let (code, out) = check(&["--rewrite-footer", o, n]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{o}: footer rewritten: sha256 -> blake3")),
        "{out}"
    );
    assert!(
        out.contains("footer hash: 2 blake3 (1 rewritten from sha256), 0 sha256"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&new).unwrap(),
        std::fs::read(repo(BLAKE3_RECORDING)).unwrap()
    );

    let (code, out) = check(&[o]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("footer hash: 1 blake3, 0 sha256"), "{out}");

    // A damaged sha256 cassette is reported and left alone.
    let mut bad = std::fs::read(repo(SHA256_FIXTURE)).unwrap();
    let pos = memchr::memmem::find(&bad, b"src/main.rs").unwrap();
    bad[pos] = b'S';
    let b = dir.path().join("bad.jsonl");
    std::fs::write(&b, &bad).unwrap();
    let (code, out) = check(&["--rewrite-footer", b.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("footer says sha256"), "{out}");
    assert!(!out.contains("rewritten"), "{out}");
    assert_eq!(std::fs::read(&b).unwrap(), bad);
}
