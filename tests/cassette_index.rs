//! `CassetteIndex` (what `serve` holds): the same interactions as `Cassette::load` without the
//! body bytes, byte ranges that point at the right lines, bodies read back byte-exact, the same
//! errors for bad files, and a clear error (never other bytes) when the file changed after it
//! was indexed.

use std::path::{Path, PathBuf};

use tapeloop::cassette::{Cassette, CassetteIndex, ErrorKind};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every bundled cassette: the corpus and the reader fixture (which has `b64` chunks).
fn bundled() -> Vec<PathBuf> {
    let mut out = vec![repo("tests/fixtures/cassettes/read-loop.openai.jsonl")];
    for e in std::fs::read_dir(repo("recordings")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The index agrees with a whole load in everything, and each body reads back byte-exact.
fn assert_same_as_load(path: &Path) {
    let loaded = Cassette::load(path).unwrap_or_else(|e| panic!("{e}"));
    let index = CassetteIndex::open(path).unwrap_or_else(|e| panic!("{e}"));
    let file = std::fs::read(path).unwrap();
    let ctx = path.display();
    assert_eq!(index.header, loaded.header, "{ctx}");
    assert_eq!(index.tools, loaded.tools, "{ctx}");
    assert_eq!(index.footer, loaded.footer, "{ctx}");
    assert_eq!(index.truncation, loaded.truncation, "{ctx}");
    assert_eq!(index.interactions.len(), loaded.interactions.len(), "{ctx}");
    for (k, (ix, full)) in index
        .interactions
        .iter()
        .zip(&loaded.interactions)
        .enumerate()
    {
        let ctx = format!("{ctx} interaction {}", full.id);
        assert_eq!(
            (ix.id, ix.step, ix.attempt),
            (full.id, full.step, full.attempt),
            "{ctx}"
        );
        assert_eq!(ix.request, full.request, "{ctx}");
        assert_eq!(ix.response, full.response, "{ctx}");
        assert_eq!(ix.end, full.end, "{ctx}");
        assert_eq!(ix.chunk_count(), full.chunks.len() as u64, "{ctx}");
        let body = full.body();
        let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
        assert_eq!(ix.body_first_byte(), first, "{ctx}");
        // The range starts at this interaction's first chunk (or its end) line and stops
        // just past its end line.
        let range = ix.body_range();
        let text = &file[range.start as usize..range.end as usize];
        let first_line: serde_json::Value =
            serde_json::from_slice(text.split(|&b| b == b'\n').next().unwrap()).unwrap();
        let want_kind = if full.chunks.is_empty() {
            "end"
        } else {
            "chunk"
        };
        assert_eq!(first_line["kind"], want_kind, "{ctx}");
        assert_eq!(first_line["id"], full.id, "{ctx}");
        assert!(
            range.start == 0 || file[range.start as usize - 1] == b'\n',
            "{ctx}"
        );
        assert_eq!(file[range.end as usize - 1], b'\n', "{ctx}");
        let last_line = text[..text.len() - 1]
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap();
        let last_line: serde_json::Value = serde_json::from_slice(last_line.trim_ascii()).unwrap();
        assert_eq!(last_line["kind"], "end", "{ctx}");
        assert_eq!(last_line["id"], full.id, "{ctx}");
        // Read back: the same chunks, bytes and times, by both ways of reading.
        assert_eq!(index.interaction(k).unwrap(), *full, "{ctx}");
        let mut reader = index.body(k).unwrap();
        let mut batched = Vec::new();
        for _ in 0..=full.chunks.len() {
            if reader.is_done() {
                break;
            }
            batched.extend(reader.next_batch(100).unwrap());
        }
        // Done as soon as the last chunk is read (its `end` line checked with it).
        assert!(reader.is_done(), "{ctx}");
        assert_eq!(batched, full.chunks, "{ctx}");
        assert!(reader.next_batch(100).unwrap().is_empty(), "{ctx}");
    }
}

#[test]
fn every_bundled_cassette_indexes_to_what_load_reads() {
    let paths = bundled();
    assert!(paths.len() > 20, "the corpus is there: {paths:?}");
    let mut b64 = 0;
    for p in &paths {
        assert_same_as_load(p);
        b64 += std::fs::read_to_string(p)
            .unwrap()
            .matches(r#""b64":"#)
            .count();
    }
    assert!(b64 > 0, "some bundled chunk is base64");
}

const HEADER: &str =
    r#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"openai-chat"}"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Interleaved interactions (a proxy recording), CRLF line ends, blank lines, `b64` chunks and
/// an interaction without chunks, in a footer-less file.
fn awkward() -> String {
    [
        HEADER,
        r#"{"kind":"request","id":1,"step":1,"attempt":1,"method":"POST","url":"u","body":{"a":1}}"#,
        r#"{"kind":"request","id":2,"step":1,"attempt":1,"method":"POST","url":"u","body":"x","body_b64":"AAE="}"#,
        r#"{"kind":"response","id":1,"status":200,"ms":3}"#,
        r#"{"kind":"response","id":2,"status":500,"ms":4}"#,
        r#"{"kind":"chunk","id":1,"ms":5,"data":"data: one\n\n"}"#,
        "",
        r#"{"kind":"chunk","id":2,"ms":6,"b64":"/wA="}"#,
        r#"{"kind":"chunk","id":1,"ms":7,"b64":"ZGF0YTogW0RPTkVdCgo="}"#,
        r#"{"kind":"end","id":1,"ms":8,"outcome":"complete"}"#,
        r#"{"kind":"request","id":3,"step":2,"attempt":1,"method":"POST","url":"u"}"#,
        r#"{"kind":"end","id":3,"ms":9,"outcome":"reset"}"#,
        r#"{"kind":"chunk","id":2,"ms":10,"data":"  {\"error\":1}"}"#,
        r#"{"kind":"end","id":2,"ms":11,"outcome":"complete"}"#,
    ]
    .join("\r\n")
        + "\r\n"
}

#[test]
fn interleaved_crlf_and_base64_bodies_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let text = awkward();
    let p = write(dir.path(), "awkward.jsonl", &text);
    assert_same_as_load(&p);
    let index = CassetteIndex::open(&p).unwrap();
    // Exact offsets: from the first chunk line of each interaction to past its end line.
    let at = |needle: &str| text.find(needle).unwrap() as u64;
    let past = |needle: &str| at(needle) + needle.len() as u64 + 2;
    let by_id = |id: u64| index.interactions.iter().find(|i| i.id == id).unwrap();
    assert_eq!(
        by_id(1).body_range(),
        at(r#"{"kind":"chunk","id":1,"ms":5"#)
            ..past(r#"{"kind":"end","id":1,"ms":8,"outcome":"complete"}"#)
    );
    assert_eq!(
        by_id(3).body_range(),
        at(r#"{"kind":"end","id":3"#)..past(r#"{"kind":"end","id":3,"ms":9,"outcome":"reset"}"#)
    );
    assert_eq!(by_id(2).body_first_byte(), Some(0xff));
    assert_eq!(by_id(2).request.body_b64.as_deref(), Some("AAE="));
    let two = index.interaction(1).unwrap();
    assert_eq!(two.body(), b"\xff\x00  {\"error\":1}");
}

/// Bad files: the index refuses exactly what a load refuses, with the same message (file and
/// line), and accepts a cut-short file exactly as a load does.
#[test]
fn bad_and_truncated_files_give_the_errors_load_gives() {
    let dir = tempfile::tempdir().unwrap();
    let good = awkward();
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("not-json", format!("{HEADER}\nnot json\n")),
        (
            "bad-header",
            "{\"kind\":\"header\",\"format\":\"x\",\"version\":1}\n".into(),
        ),
        (
            "bad-b64",
            format!(
                "{HEADER}\n{}\n{}\n{}\n",
                r#"{"kind":"request","id":1,"step":1,"attempt":1,"method":"POST","url":"u"}"#,
                r#"{"kind":"response","id":1,"status":200}"#,
                r#"{"kind":"chunk","id":1,"ms":1,"b64":"!!"}"#
            ),
        ),
        (
            "orphan-chunk",
            format!(
                "{HEADER}\n{}\n",
                r#"{"kind":"chunk","id":9,"ms":1,"data":"x"}"#
            ),
        ),
        (
            "footer-mismatch",
            format!(
                "{good}{}\n",
                r#"{"kind":"footer","interactions":3,"lines":14,"blake3":"00"}"#
            ),
        ),
        ("cut-mid-line", good[..good.len() - 20].to_string()),
        (
            "cut-before-end",
            good[..good.rfind("{\"kind\":\"end\"").unwrap()].to_string(),
        ),
    ];
    for (name, text) in cases {
        let p = write(dir.path(), &format!("{name}.jsonl"), &text);
        match (Cassette::load(&p), CassetteIndex::open(&p)) {
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
            (Ok(c), Ok(i)) => {
                assert!(c.is_truncated() && i.is_truncated(), "{name}");
                assert_same_as_load(&p);
            }
            (a, b) => panic!("{name}: load {:?}, index {:?}", a.err(), b.err()),
        }
    }
}

/// Asserts that reading interaction `k` fails with `Changed`, naming the file.
fn assert_changed(index: &CassetteIndex, k: usize, why: &str) {
    let err = match index.body(k) {
        Err(e) => e,
        Ok(mut r) => match r.find_map(Result::err) {
            Some(e) => e,
            None => panic!("{why}: the changed file was read without an error"),
        },
    };
    assert!(matches!(err.kind, ErrorKind::Changed(_)), "{why}: {err}");
    let msg = err.to_string();
    assert!(msg.contains("changed since it was indexed"), "{why}: {msg}");
    assert!(
        msg.contains(&index.path.display().to_string()),
        "{why}: {msg}"
    );
}

#[test]
fn a_file_changed_after_indexing_is_an_error_not_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let text = awkward();
    let p = write(dir.path(), "c.jsonl", &text);
    let index = CassetteIndex::open(&p).unwrap();
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    let restore = || {
        std::fs::write(&p, &text).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(mtime).unwrap();
        assert_eq!(index.interaction(0).unwrap().chunks.len(), 2, "restored");
    };
    // Appended to.
    std::fs::write(&p, format!("{text}\n")).unwrap();
    assert_changed(&index, 0, "appended");
    restore();
    // Cut short.
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    assert_changed(&index, 0, "cut");
    restore();
    // Rewritten in place with the same length (the modification time tells).
    let same_len = text.replace("data: one", "data: two");
    std::fs::write(&p, &same_len).unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(mtime + std::time::Duration::from_secs(5))
        .unwrap();
    assert_changed(&index, 0, "rewritten");
    restore();
    // Replaced by another file (renamed over it), byte for byte the same.
    let other = write(dir.path(), "other.jsonl", &text);
    std::fs::rename(&other, &p).unwrap();
    assert_changed(&index, 0, "replaced");
    // Same size and time but other lines in the range: the re-check while reading tells.
    std::fs::write(&p, &text).unwrap();
    let index = CassetteIndex::open(&p).unwrap();
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    let moved = text.replace(r#""id":1,"ms":5"#, r#""id":7,"ms":5"#);
    std::fs::write(&p, &moved).unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(mtime).unwrap();
    assert_changed(&index, 0, "a chunk line no longer this interaction's");
}
