//! Reader rules: ordering, ids, footer, truncation, bounded lines, interleaving.

use std::io::Write;

use tapeloop::cassette::{Cassette, CassetteReader, ErrorKind, Record};
use tapeloop::event::EndOutcome;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/read-loop.openai.jsonl"
);

const HEADER: &str =
    r#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"anthropic"}"#;

fn lines(ls: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for l in ls {
        s.push_str(l);
        s.push('\n');
    }
    s.into_bytes()
}

fn first_error(bytes: &[u8]) -> tapeloop::cassette::CassetteError {
    match Cassette::from_bytes(bytes, "t.jsonl") {
        Ok(c) => panic!(
            "expected an error, got {} interactions",
            c.interactions.len()
        ),
        Err(e) => e,
    }
}

#[test]
fn fixture_loads_with_footer_verified() {
    let c = Cassette::load(FIXTURE).unwrap();
    assert_eq!(c.header.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(c.interactions.len(), 2);
    assert!(!c.is_truncated());
    let footer = c.footer.as_ref().unwrap();
    assert_eq!((footer.interactions, footer.lines), (2, 13));
    let retry = &c.interactions[1];
    assert_eq!((retry.id, retry.step, retry.attempt), (2, 1, 2));
    assert_eq!(retry.response.as_ref().unwrap().status, 200);
    assert_eq!(retry.chunks.len(), 4);
    assert_eq!(retry.chunks[3].bytes, b"data: [DONE]\n\n"); // b64 decoded
    assert_eq!(retry.end.unwrap().outcome, EndOutcome::Complete);
    assert_eq!(c.tools.len(), 1);
    assert_eq!(c.tools[0].output, "fn main() {}");
}

#[test]
fn streaming_yields_interactions_and_tools_in_file_order() {
    let reader = CassetteReader::open(FIXTURE).unwrap();
    let kinds: Vec<String> = reader
        .map(|r| match r.unwrap() {
            Record::Interaction(i) => format!("i{}", i.id),
            Record::Tool(t) => format!("t{}", t.call_id),
        })
        .collect();
    assert_eq!(kinds, ["i1", "i2", "tcall_1"]);
}

#[test]
fn interleaved_ids_are_assembled_per_id() {
    let bytes = lines(&[
        HEADER,
        r#"{"kind":"request","id":1,"step":1,"attempt":1,"method":"POST","url":"u","body":{}}"#,
        r#"{"kind":"request","id":2,"step":1,"attempt":1,"method":"POST","url":"u","body":{}}"#,
        r#"{"kind":"response","id":2,"status":200,"ms":1}"#,
        r#"{"kind":"response","id":1,"status":200,"ms":2}"#,
        r#"{"kind":"chunk","id":1,"ms":3,"data":"a1"}"#,
        r#"{"kind":"chunk","id":2,"ms":3,"data":"b1"}"#,
        r#"{"kind":"chunk","id":1,"ms":4,"data":"a2"}"#,
        r#"{"kind":"end","id":2,"ms":5,"outcome":"complete"}"#,
        r#"{"kind":"end","id":1,"ms":6,"outcome":"reset"}"#,
    ]);
    let c = Cassette::from_bytes(&bytes, "t.jsonl").unwrap();
    assert_eq!(c.interactions[0].id, 1, "load orders by request line");
    assert_eq!(c.interactions[0].body(), b"a1a2");
    assert_eq!(c.interactions[0].end.unwrap().outcome, EndOutcome::Reset);
    assert_eq!(c.interactions[1].body(), b"b1");
    // The streaming reader yields each as it completes.
    let ids: Vec<u64> = CassetteReader::new(bytes.as_slice(), "t")
        .unwrap()
        .map(|r| match r.unwrap() {
            Record::Interaction(i) => i.id,
            Record::Tool(_) => 0,
        })
        .collect();
    assert_eq!(ids, [2, 1]);
}

#[test]
fn errors_name_file_line_and_expectation() {
    let e = first_error(&lines(&[HEADER, "not json"]));
    assert_eq!(e.line, Some(2));
    let msg = e.to_string();
    assert!(msg.starts_with("t.jsonl:2: not JSON"), "{msg}");
    assert!(
        msg.contains("expected a JSON object with a `kind` field"),
        "{msg}"
    );

    let e = first_error(&lines(&[
        r#"{"kind":"header","format":"tapeloop-cassette","version":2,"api":"x"}"#,
    ]));
    assert_eq!(
        e.to_string(),
        "t.jsonl:1: unknown version 2: this tapeloop reads version 1"
    );
    assert!(e.is_fatal());

    let e = first_error(&lines(&[
        HEADER,
        r#"{"kind":"chunk","id":4,"ms":0,"data":"x"}"#,
    ]));
    assert_eq!(
        e.to_string(),
        "t.jsonl:2: chunk for id 4 has no request: the `request` line must come first"
    );

    let e = first_error(&lines(&[r#"{"kind":"request","id":1}"#]));
    assert!(matches!(e.kind, ErrorKind::HeaderNotFirst { .. }), "{e}");

    let e = first_error(&lines(&[
        r#"{"kind":"header","format":"other","version":1}"#,
    ]));
    assert!(matches!(e.kind, ErrorKind::NotACassette { .. }), "{e}");

    let e = first_error(&lines(&[HEADER, r#"{"kind":"bogus"}"#]));
    assert!(matches!(e.kind, ErrorKind::UnknownKind(_)), "{e}");

    let e = first_error(&lines(&[HEADER, r#"{"kind":"request","id":1}"#]));
    assert!(
        e.to_string()
            .contains("invalid `request` line: missing field"),
        "{e}"
    );

    let e = first_error(&lines(&[HEADER, "[1,2]"]));
    assert!(e.to_string().contains("found an array"), "{e}");

    let e = first_error(b"");
    assert!(matches!(e.kind, ErrorKind::Empty));

    let e = first_error(b"\x00\xff\xfe\x01junk\n");
    assert!(matches!(e.kind, ErrorKind::NotUtf8), "{e}");
}

#[test]
fn ordering_rules() {
    let req = r#"{"kind":"request","id":1,"step":1,"attempt":1,"method":"POST","url":"u"}"#;
    let e = first_error(&lines(&[HEADER, req, req]));
    assert!(matches!(e.kind, ErrorKind::DuplicateRequest(1)), "{e}");
    let e = first_error(&lines(&[
        HEADER,
        req,
        r#"{"kind":"chunk","id":1,"ms":0,"data":"x"}"#,
    ]));
    assert!(e.to_string().contains("before its response"), "{e}");
    let e = first_error(&lines(&[
        HEADER,
        req,
        r#"{"kind":"end","id":1,"ms":0,"outcome":"reset"}"#,
        r#"{"kind":"end","id":1,"ms":0,"outcome":"reset"}"#,
    ]));
    assert!(e.to_string().contains("after its `end` line"), "{e}");
    let e = first_error(&lines(&[HEADER, HEADER]));
    assert!(matches!(e.kind, ErrorKind::DuplicateHeader), "{e}");
    let e = first_error(&lines(&[
        HEADER,
        req,
        r#"{"kind":"response","id":1,"status":200}"#,
        r#"{"kind":"chunk","id":1,"ms":0,"data":"x","b64":"eA=="}"#,
    ]));
    assert!(matches!(e.kind, ErrorKind::BadChunk { .. }), "{e}");
}

#[test]
fn end_without_response_is_a_network_failure() {
    let c = Cassette::from_bytes(
        &lines(&[
            HEADER,
            r#"{"kind":"request","id":1,"step":1,"attempt":1,"method":"POST","url":"u"}"#,
            r#"{"kind":"end","id":1,"ms":30000,"outcome":"timeout"}"#,
        ]),
        "t",
    )
    .unwrap();
    let events = c.interactions[0].decode(c.header.api);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_name(), "error");
}

fn fixture_bytes() -> Vec<u8> {
    std::fs::read(FIXTURE).unwrap()
}

#[test]
fn footer_hash_mismatch_names_the_file() {
    let mut bytes = fixture_bytes();
    // Change one character of a chunk without touching the structure.
    let pos = memchr::memmem::find(&bytes, b"Rate limit").unwrap();
    bytes[pos] = b'r';
    let e = first_error(&bytes);
    let msg = e.to_string();
    assert!(msg.starts_with("t.jsonl:14: footer says sha256"), "{msg}");
    assert!(matches!(
        e.kind,
        ErrorKind::FooterMismatch {
            field: "sha256",
            ..
        }
    ));
}

#[test]
fn lines_after_footer_are_rejected() {
    let mut bytes = fixture_bytes();
    bytes.extend_from_slice(b"{\"kind\":\"tool\",\"step\":1,\"call_id\":\"c\",\"tool\":\"t\"}\n");
    let e = first_error(&bytes);
    assert!(matches!(e.kind, ErrorKind::AfterFooter(_)), "{e}");
}

#[test]
fn truncated_cassette_keeps_complete_interactions() {
    let bytes = fixture_bytes();
    // Cut in the middle of interaction 2's chunks, mid-line.
    let cut = memchr::memmem::find(&bytes, b"\"ms\":440").unwrap() + 12;
    let c = Cassette::from_bytes(&bytes[..cut], "t").unwrap();
    assert_eq!(c.interactions.len(), 1);
    let t = c.truncation.unwrap();
    assert_eq!(t.dropped, [2]);
    assert!(t.partial_last_line);
    assert!(t.to_string().contains("interaction 2 dropped"), "{t}");
    // Cut at a line boundary: no partial line.
    let footer_at = memchr::memmem::rfind(&bytes, b"{\"kind\":\"footer\"").unwrap();
    let c = Cassette::from_bytes(&bytes[..footer_at], "t").unwrap();
    assert_eq!(c.interactions.len(), 2);
    assert_eq!(c.tools.len(), 1);
    let t = c.truncation.unwrap();
    assert!(t.dropped.is_empty() && !t.partial_last_line);
}

#[test]
fn overlong_line_is_an_error_not_an_allocation() {
    let mut bytes = lines(&[HEADER]);
    bytes.extend_from_slice(b"{\"kind\":\"tool\",\"x\":\"");
    bytes.extend(std::iter::repeat_n(b'a', 10_000));
    bytes.extend_from_slice(b"\"}\n");
    bytes.extend_from_slice(&lines(&[
        r#"{"kind":"tool","step":1,"call_id":"c","tool":"t"}"#,
    ]));
    let reader = CassetteReader::with_limit(bytes.as_slice(), "t", 1024).unwrap();
    let items: Vec<_> = reader.collect();
    assert_eq!(items.len(), 2);
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(
        matches!(e.kind, ErrorKind::LineTooLong { limit: 1024, .. }),
        "{e}"
    );
    // Reading resumes on the next line.
    assert!(matches!(items[1], Ok(Record::Tool(_))));
}

#[test]
fn crlf_and_blank_lines_are_tolerated() {
    let text = format!(
        "{HEADER}\r\n\r\n{}\r\n",
        r#"{"kind":"tool","step":1,"call_id":"c","tool":"t","output":"ok"}"#
    );
    let c = Cassette::from_bytes(text.as_bytes(), "t").unwrap();
    assert_eq!(c.tools.len(), 1);
}

#[test]
fn reads_from_a_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.jsonl");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(&fixture_bytes()).unwrap();
    drop(f);
    assert_eq!(Cassette::load(&p).unwrap().interactions.len(), 2);
    let e = Cassette::load(dir.path().join("missing.jsonl")).unwrap_err();
    assert!(e.to_string().contains("missing.jsonl: cannot read"), "{e}");
}

/// Everything a reader yields, and how the file ended, as text.
fn read_through(input: impl std::io::BufRead) -> Vec<String> {
    let mut reader = match CassetteReader::new(input, "t.jsonl") {
        Ok(r) => r,
        Err(e) => return vec![e.to_string()],
    };
    let mut out: Vec<String> = reader.by_ref().map(|r| format!("{r:?}")).collect();
    out.push(format!("{:?} {:?}", reader.footer(), reader.truncation()));
    out
}

#[test]
fn lines_across_buffer_refills_read_the_same() {
    // The reader reads lines inside its input's buffer and hashes them when it refills: every
    // buffer size must give the same records, errors (with their line numbers) and footer
    // verdict as reading from memory.
    let good = fixture_bytes();
    let text = String::from_utf8(good.clone()).unwrap();
    let mut damaged = String::new();
    for (i, line) in text.lines().enumerate() {
        damaged.push_str(line);
        damaged.push_str(if i % 2 == 0 { "\r\n" } else { "\n" });
        if i == 3 {
            damaged.push_str("   \n{not json\n");
        }
    }
    let mut flipped = good.clone();
    let at = memchr::memmem::find(&flipped, b"fn main").unwrap();
    flipped[at] = b'F';
    let truncated = good[..good.len() - 40].to_vec();
    for input in [good, damaged.into_bytes(), flipped, truncated] {
        let want = read_through(&input[..]);
        for capacity in [1, 2, 5, 64, 333, 4096] {
            assert_eq!(
                read_through(std::io::BufReader::with_capacity(capacity, &input[..])),
                want,
                "buffer of {capacity} bytes"
            );
        }
    }
}
