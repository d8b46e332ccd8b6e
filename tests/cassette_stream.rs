//! `CassetteStream` (what `tapeloop run` replays from) serves exactly what `Cassette::load`
//! builds, in the same order, while reading only as far as the replay needs; damage anywhere in
//! the file still ends as an error.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tapeloop::cassette::{Cassette, CassetteStream, ErrorKind};
use tapeloop::replay::{CassetteReplay, MatchMode};

const HEADER: &str =
    r#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"anthropic"}"#;
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/read-loop.openai.jsonl"
);

fn lines(ls: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for l in ls {
        s.push_str(l);
        s.push('\n');
    }
    s.into_bytes()
}

/// Append a valid footer for `bytes`.
fn with_footer(mut bytes: Vec<u8>, interactions: u64) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let sha = hex::encode(Sha256::digest(&bytes));
    bytes.extend_from_slice(
        format!(
            r#"{{"kind":"footer","interactions":{interactions},"lines":{lines},"sha256":"{sha}"}}"#
        )
        .as_bytes(),
    );
    bytes.push(b'\n');
    bytes
}

fn request(id: u64, step: u32) -> String {
    format!(
        r#"{{"kind":"request","id":{id},"step":{step},"attempt":1,"method":"POST","url":"u","body":{{}}}}"#
    )
}
fn response(id: u64) -> String {
    format!(r#"{{"kind":"response","id":{id},"status":200,"ms":1}}"#)
}
fn chunk(id: u64, data: &str) -> String {
    format!(r#"{{"kind":"chunk","id":{id},"ms":2,"data":"{data}"}}"#)
}
fn end(id: u64) -> String {
    format!(r#"{{"kind":"end","id":{id},"ms":3,"outcome":"complete"}}"#)
}
fn tool(call_id: &str, name: &str, output: &str) -> String {
    format!(
        r#"{{"kind":"tool","step":1,"call_id":"{call_id}","tool":"{name}","input":{{}},"output":"{output}"}}"#
    )
}

/// Every interaction a stream serves, then how it ended.
fn drain(mut s: CassetteStream) -> (Vec<tapeloop::cassette::Interaction>, usize, bool) {
    let mut out = Vec::new();
    while let Some(i) = s.next_interaction() {
        out.push(i);
    }
    let end = s.finish().unwrap();
    (out, end.interactions, end.truncation.is_some())
}

fn corpus_cassettes() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    v.sort();
    v.push(FIXTURE.into());
    v
}

#[test]
fn every_bundled_cassette_streams_as_it_loads() {
    let paths = corpus_cassettes();
    assert!(paths.len() > 20, "corpus not found: {paths:?}");
    for path in paths {
        let loaded = Cassette::load(&path).unwrap();
        let (served, total, truncated) = drain(CassetteStream::open(&path).unwrap());
        assert_eq!(served, loaded.interactions, "{}", path.display());
        assert_eq!(total, loaded.interactions.len());
        assert_eq!(truncated, loaded.is_truncated());
        let mut stream = CassetteStream::open(&path).unwrap();
        assert_eq!(stream.header(), &loaded.header);
        assert_eq!(stream.all_tool_lines(), loaded.tools.as_slice());
    }
}

#[test]
fn interleaved_interactions_are_served_in_request_order() {
    let bytes = lines(&[
        HEADER,
        &request(1, 1),
        &request(2, 1),
        &response(2),
        &response(1),
        &chunk(1, "a1"),
        &chunk(2, "b1"),
        &end(2),
        &chunk(1, "a2"),
        &end(1),
        &request(3, 2),
        &response(3),
        &end(3),
    ]);
    let bytes = with_footer(bytes, 3);
    let loaded = Cassette::from_bytes(&bytes, "t.jsonl").unwrap();
    let (served, total, truncated) = drain(CassetteStream::from_bytes(bytes, "t.jsonl").unwrap());
    let ids: Vec<u64> = served.iter().map(|i| i.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(served, loaded.interactions);
    assert_eq!(served[0].body(), b"a1a2");
    assert_eq!((total, truncated), (3, false));
}

/// The stream hands out an interaction without reading past it: damage later in the file does
/// not stop the first interactions from being served, and `finish` reports it.
#[test]
fn reads_only_as_far_as_needed_and_reports_later_damage_at_finish() {
    let mut bytes = lines(&[
        HEADER,
        &request(1, 1),
        &response(1),
        &chunk(1, "x"),
        &end(1),
    ]);
    bytes.extend_from_slice(b"this line is not JSON\n");
    let mut s = CassetteStream::from_bytes(bytes, "t.jsonl").unwrap();
    assert_eq!(s.next_interaction().unwrap().id, 1);
    let e = s.finish().unwrap_err();
    assert_eq!(e.line, Some(6));
    assert!(e.to_string().starts_with("t.jsonl:6: not JSON"), "{e}");
}

#[test]
fn a_modified_cassette_fails_at_finish_even_when_the_replay_stopped_early() {
    let bytes = std::fs::read(FIXTURE).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let tampered = text.replace("fn main() {}", "fn main() {;}");
    assert_ne!(tampered, text);
    let mut s = CassetteStream::from_bytes(tampered.into_bytes(), "t.jsonl").unwrap();
    assert_eq!(s.next_interaction().unwrap().id, 1);
    let e = s.finish().unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::FooterMismatch {
                field: "sha256",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn an_error_ends_the_stream() {
    let bytes = lines(&[
        HEADER,
        &request(1, 1),
        &response(1),
        &end(1),
        r#"{"kind":"chunk","id":9,"ms":1,"data":"orphan"}"#,
        &request(2, 1),
        &response(2),
        &end(2),
    ]);
    let mut s = CassetteStream::from_bytes(bytes, "t.jsonl").unwrap();
    assert_eq!(s.next_interaction().unwrap().id, 1);
    assert!(
        s.next_interaction().is_none(),
        "nothing after the first error"
    );
    let e = s.finish().unwrap_err();
    assert_eq!(e.line, Some(5));
    assert!(matches!(e.kind, ErrorKind::Orphan { .. }), "{e}");
}

#[test]
fn truncated_cassette_serves_complete_interactions_and_says_so() {
    let mut bytes = lines(&[
        HEADER,
        &request(1, 1),
        &response(1),
        &end(1),
        &request(2, 2),
        &response(2),
        &chunk(2, "cut"),
    ]);
    bytes.extend_from_slice(br#"{"kind":"chunk","id":2,"ms":4,"da"#);
    let mut s = CassetteStream::from_bytes(bytes, "t.jsonl").unwrap();
    assert_eq!(s.next_interaction().unwrap().id, 1);
    assert!(s.next_interaction().is_none(), "interaction 2 never ended");
    let end = s.finish().unwrap();
    assert_eq!(end.interactions, 1);
    let t = end.truncation.expect("no footer");
    assert_eq!(t.dropped, [2]);
    assert!(t.partial_last_line);
}

/// A recorder writes each tool's line right after the interaction that called it: lookup then
/// reads on only to that line, not through the file, and still answers as a whole load does.
#[test]
fn tool_lookup_reads_ahead_to_the_next_interaction_before_scanning_the_file() {
    let bytes = lines(&[
        HEADER,
        &request(1, 1),
        &response(1),
        &end(1),
        &tool("a", "read", "a out"),
        &request(2, 2),
        &response(2),
        &end(2),
        &tool("b", "read", "b out"),
        &request(3, 3),
        &response(3),
        &end(3),
        &tool("c", "grep", "c out"),
    ]);
    let bytes = with_footer(bytes, 3);
    let loaded = Cassette::from_bytes(&bytes, "t.jsonl").unwrap();
    let mut a = CassetteReplay::new(&loaded, MatchMode::Sequence);
    let mut stream = CassetteStream::from_bytes(bytes.clone(), "t.jsonl").unwrap();
    assert_eq!(stream.next_interaction().unwrap().id, 1);
    assert!(
        stream.tool_lines().is_empty(),
        "the line after `end` is not read yet"
    );
    assert!(stream.read_tools_ahead(|t| t.call_id == "a"));
    assert_eq!(
        stream.tool_lines().len(),
        1,
        "stopped at the line it wanted"
    );
    // Not past the next interaction: stops once interaction 2 is complete, before b and c.
    assert!(!stream.read_tools_ahead(|t| t.call_id == "c"));
    assert_eq!(stream.tool_lines().len(), 1);
    assert_eq!(stream.next_interaction().unwrap().id, 2);

    let mut b = CassetteReplay::streamed(
        CassetteStream::from_bytes(bytes, "t.jsonl").unwrap(),
        MatchMode::Sequence,
    );
    a.next_response(|| serde_json::Value::Null).unwrap();
    b.next_response(|| serde_json::Value::Null).unwrap();
    for (call, name) in [("a", "read"), ("c", "grep"), ("b", "read"), ("b", "read")] {
        let x = a.tool_result(call, name).map(|t| t.output.clone());
        let y = b.tool_result(call, name).map(|t| t.output.clone());
        assert_eq!(x, y, "{call}/{name}");
    }
    for _ in 0..2 {
        let x = a
            .next_response(|| serde_json::Value::Null)
            .map(|i| i.id)
            .ok();
        let y = b
            .next_response(|| serde_json::Value::Null)
            .map(|i| i.id)
            .ok();
        assert_eq!(x, y);
    }
    assert_eq!(a.finish().unwrap(), b.finish().unwrap());
}

/// Tool lines can come after later interactions; lookup by `call_id` must see them, as a
/// whole load does, and fall back to the first unused line for the tool in file order.
#[test]
fn tool_lookup_matches_a_whole_load_wherever_the_lines_are() {
    let bytes = lines(&[
        HEADER,
        &tool("early", "read", "first read"),
        &request(1, 1),
        &response(1),
        &end(1),
        &request(2, 2),
        &response(2),
        &end(2),
        &tool("late", "read", "late read"),
        &tool("other", "grep", "grep out"),
    ]);
    let bytes = with_footer(bytes, 2);
    let loaded = Cassette::from_bytes(&bytes, "t.jsonl").unwrap();
    let queries = [
        ("late", "read"),
        ("nope", "read"),
        ("nope", "read"),
        ("other", "grep"),
        ("x", "write"),
    ];
    let mut a = CassetteReplay::new(&loaded, MatchMode::Sequence);
    let mut b = CassetteReplay::streamed(
        CassetteStream::from_bytes(bytes, "t.jsonl").unwrap(),
        MatchMode::Sequence,
    );
    // Consume the first interaction so the stream has read only a prefix.
    a.next_response(|| serde_json::Value::Null).unwrap();
    b.next_response(|| serde_json::Value::Null).unwrap();
    let mut outputs = Vec::new();
    for (call, name) in queries {
        let x = a.tool_result(call, name).map(|t| t.output.clone());
        let y = b.tool_result(call, name).map(|t| t.output.clone());
        assert_eq!(x, y, "{call}/{name}");
        outputs.push(x);
    }
    assert_eq!(
        outputs,
        [
            Some("late read".into()),
            Some("first read".into()),
            None,
            Some("grep out".into()),
            None
        ]
    );
    let (ea, eb) = (a.finish().unwrap(), b.finish().unwrap());
    assert_eq!(ea, eb);
    assert_eq!(eb.unused, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Truncated and corrupted bytes: the stream never panics or hangs, and whatever it serves
    /// before finishing cleanly equals what a whole load gives.
    #[test]
    fn damaged_cassettes_stream_as_they_load(
        cut in 0usize..4000,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
    ) {
        let mut bytes = std::fs::read(FIXTURE).unwrap();
        bytes.truncate(cut.min(bytes.len()));
        let n = bytes.len();
        if n > 0 {
            for (pos, val) in flips {
                bytes[pos % n] = val;
            }
        }
        let loaded = Cassette::from_bytes(&bytes, "f.jsonl");
        match CassetteStream::from_bytes(bytes.clone(), "f.jsonl") {
            Err(e) => prop_assert!(loaded.is_err(), "stream failed, load did not: {e}"),
            Ok(mut s) => {
                let mut served = Vec::new();
                while let Some(i) = s.next_interaction() {
                    served.push(i);
                    prop_assert!(served.len() < 100);
                }
                let _ = s.all_tool_lines();
                match (s.finish(), loaded) {
                    (Ok(end), Ok(c)) => {
                        prop_assert_eq!(&served, &c.interactions);
                        prop_assert_eq!(end.interactions, c.interactions.len());
                        prop_assert_eq!(end.truncation, c.truncation);
                    }
                    (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => prop_assert!(false, "stream {:?} vs load {:?}", a.map(|_| ()), b.map(|_| ())),
                }
            }
        }
    }
}
