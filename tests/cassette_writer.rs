//! Writer: round trip, byte-exact chunks, crash safety and redaction before disk.

use serde_json::json;
use tapeloop::cassette::{
    Cassette, CassetteWriter, Chunk, End, Header, Interaction, Redactor, Request, ResponseHead,
    ToolRecord,
};
use tapeloop::event::EndOutcome;
use tapeloop::http::Headers;
use tapeloop::provider::Api;

fn request(url: &str, headers: &[(&str, &str)], body: serde_json::Value) -> Request {
    Request {
        method: "POST".into(),
        url: url.into(),
        headers: headers.iter().map(|(k, v)| (*k, *v)).collect(),
        body: body.into(),
        body_b64: None,
    }
}

fn head(status: u16) -> ResponseHead {
    ResponseHead {
        status,
        headers: Headers::new(),
        ms: 10,
    }
}

#[test]
fn round_trip_is_byte_exact_and_footer_verifies() {
    // "é" split over two reads: neither half is UTF-8 on its own.
    let chunks: Vec<&[u8]> = vec![
        b"data: {\"t\":\"caf\xC3",
        b"\xA9\"}\n\n",
        b"data: [DONE]\n\n",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let mut w =
        CassetteWriter::create(&path, Header::new(Api::OpenAiChat), Redactor::new()).unwrap();
    w.write_request(
        1,
        1,
        1,
        &request("https://x/v1/chat/completions", &[], json!({"a":1})),
    )
    .unwrap();
    w.write_response(1, &head(200)).unwrap();
    for (i, c) in chunks.iter().enumerate() {
        w.write_chunk(1, 20 + i as u64, c).unwrap();
    }
    w.write_end(
        1,
        End {
            ms: 99,
            outcome: EndOutcome::Complete,
        },
    )
    .unwrap();
    w.write_tool(&ToolRecord {
        step: 1,
        call_id: "call_1".into(),
        tool: "read".into(),
        input: json!({"path":"a"}),
        output: json!("ok"),
        error: false,
    })
    .unwrap();
    w.finish().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(r#""b64":"#),
        "split UTF-8 must be stored as b64"
    );
    assert!(text.contains(r#""data":"data: [DONE]\n\n""#));
    for line in text.lines() {
        assert!(line.starts_with(r#"{"kind":""#), "kind first: {line}");
    }
    let c = Cassette::load(&path).unwrap();
    assert!(c.footer.is_some() && !c.is_truncated());
    let got: Vec<Vec<u8>> = c.interactions[0]
        .chunks
        .iter()
        .map(|c| c.bytes.clone())
        .collect();
    let want: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
    assert_eq!(got, want);
    assert_eq!(c.tools.len(), 1);
}

#[test]
fn dropping_without_finish_leaves_a_readable_truncated_cassette() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    {
        let mut w =
            CassetteWriter::create(&path, Header::new(Api::Anthropic), Redactor::new()).unwrap();
        let i = Interaction {
            id: 1,
            step: 1,
            attempt: 1,
            request: request("https://x/v1/messages", &[], json!({})),
            response: Some(head(200)),
            chunks: vec![Chunk {
                ms: 11,
                bytes: b"event: ping\ndata: {}\n\n".to_vec(),
            }],
            end: Some(End {
                ms: 12,
                outcome: EndOutcome::Complete,
            }),
        };
        w.write_interaction(&i).unwrap();
        w.write_request(2, 2, 1, &i.request).unwrap();
        w.write_response(2, &head(200)).unwrap();
        w.write_chunk(2, 13, b"event: ping\n").unwrap();
        // Crash: no end for 2, no footer.
    }
    let c = Cassette::load(&path).unwrap();
    assert_eq!(c.interactions.len(), 1);
    assert_eq!(c.truncation.unwrap().dropped, [2]);
}

#[test]
fn misuse_is_refused_before_anything_is_written() {
    let mut w = CassetteWriter::new(Vec::new(), Header::new(Api::Gemini), Redactor::new()).unwrap();
    assert!(w.write_chunk(7, 0, b"x").is_err());
    w.write_request(1, 1, 1, &request("u", &[], json!(null)))
        .unwrap();
    assert!(w
        .write_request(1, 1, 1, &request("u", &[], json!(null)))
        .is_err());
    assert!(w.write_chunk(1, 0, b"x").is_err(), "chunk before response");
    let lines = w.lines();
    let out = w.finish().unwrap();
    assert_eq!(lines, 2);
    assert!(
        Cassette::from_bytes(&out, "mem").is_err(),
        "interaction 1 has no end"
    );
}

#[test]
fn secrets_never_reach_disk() {
    let secrets = [
        "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        "sk-ant-api03-ZYXWVUTSRQPONMLKJIHGfedcba",
        "AIzaSyD-1234567890abcdefghijklmnopqrstu",
        "eyJhbGciOiJIUzI1NiJ9.tokenpart",
        "cookie-value-abc",
        "set-cookie-value-xyz",
        "my-private-key-in-use-42",
        "proxy-pass-99",
        "azure-key-value-77",
        "goog-header-key-55",
        "query-key-value-123",
        "query-api-key-value-456",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let redactor = Redactor::new().secret("my-private-key-in-use-42");
    let mut w = CassetteWriter::create(&path, Header::new(Api::OpenAiChat), redactor).unwrap();
    let req = request(
        "https://api.example.com/v1/models/x:streamGenerateContent?alt=sse&key=query-key-value-123&api_key=query-api-key-value-456",
        &[
            ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.tokenpart"),
            ("X-Api-Key", "sk-ant-api03-ZYXWVUTSRQPONMLKJIHGfedcba"),
            ("api-key", "azure-key-value-77"),
            ("x-goog-api-key", "goog-header-key-55"),
            ("Proxy-Authorization", "Basic proxy-pass-99"),
            ("Cookie", "cookie-value-abc"),
            ("content-type", "application/json"),
        ],
        json!({
            "messages": [{"role": "user", "content": "my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345, ok?"}],
            "nested": {"list": ["AIzaSyD-1234567890abcdefghijklmnopqrstu", "my-private-key-in-use-42"]}
        }),
    );
    w.write_request(1, 1, 1, &req).unwrap();
    let mut rh = head(200);
    rh.headers.insert("Set-Cookie", "set-cookie-value-xyz");
    w.write_response(1, &rh).unwrap();
    w.write_chunk(
        1,
        11,
        b"data: {\"echo\":\"sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345\"}\n\n",
    )
    .unwrap();
    w.write_chunk(1, 12, b"\xff not utf8 my-private-key-in-use-42\n")
        .unwrap();
    w.write_end(
        1,
        End {
            ms: 13,
            outcome: EndOutcome::Complete,
        },
    )
    .unwrap();
    w.write_tool(&ToolRecord {
        step: 1,
        call_id: "c".into(),
        tool: "read".into(),
        input: json!({"path": ".env"}),
        output: json!("OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
        error: false,
    })
    .unwrap();
    w.finish().unwrap();

    let bytes = std::fs::read(&path).unwrap();
    for s in secrets {
        assert!(
            memchr::memmem::find(&bytes, s.as_bytes()).is_none(),
            "{s} reached disk"
        );
    }
    // The b64 chunk is checked after decoding too.
    let c = Cassette::load(&path).unwrap();
    let body = c.interactions[0].body();
    for s in secrets {
        assert!(
            memchr::memmem::find(&body, s.as_bytes()).is_none(),
            "{s} in a chunk"
        );
    }
    assert!(c
        .header
        .redacted
        .iter()
        .any(|r| r == "header:authorization"));
    let removed = c.footer.unwrap().redacted.unwrap();
    for rule in [
        "header:authorization",
        "header:x-api-key",
        "header:api-key",
        "header:x-goog-api-key",
        "header:proxy-authorization",
        "header:cookie",
        // A response's set-cookie is not on the response-header allowlist: dropped whole.
        "header:allowlist",
        "query:key",
        "query:api_key",
        "body:sk-key",
        "body:google-key",
        "secret:explicit",
    ] {
        assert!(
            removed.iter().any(|r| r == rule),
            "{rule} missing from {removed:?}"
        );
    }
    // Non-secret content survives.
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("alt=sse") && text.contains("application/json") && text.contains(".env"));
}

/// Issue 16: a key split across two body reads (or three) used to survive as halves that
/// rebuild it. The sliding window redacts it whole; the body is otherwise unchanged.
#[test]
fn a_secret_split_across_reads_does_not_reach_disk() {
    let key = "sk-proj-SPLITabcdefghijklmnopqrstuvwxyz0123";
    let explicit = "hunter2-explicit-secret";
    let body = format!(
        "data: {{\"t\":\"{key}\"}}\n\ndata: {{\"t\":\"auth Bearer eyJhbGciOiJIUzI1NiJ9.x\"}}\n\ndata: {{\"t\":\"{explicit}\"}}\n\n"
    );
    for splits in [vec![17], vec![14, 30], vec![72, 80, 95, 120, 125]] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut w = CassetteWriter::create(
            &path,
            Header::new(Api::OpenAiChat),
            Redactor::new().secret(explicit),
        )
        .unwrap();
        w.write_request(
            1,
            1,
            1,
            &request("https://x/v1/chat/completions", &[], json!({})),
        )
        .unwrap();
        w.write_response(1, &head(200)).unwrap();
        let mut start = 0;
        for (i, &at) in splits.iter().chain([body.len()].iter()).enumerate() {
            w.write_chunk(1, 20 + i as u64, &body.as_bytes()[start..at])
                .unwrap();
            start = at;
        }
        w.write_end(
            1,
            End {
                ms: 99,
                outcome: EndOutcome::Complete,
            },
        )
        .unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in ["SPLIT", "eyJhbGci", "hunter2", "explicit-secret"] {
            assert!(
                !text.contains(piece),
                "{piece} on disk with splits {splits:?}:\n{text}"
            );
        }
        let c = Cassette::load(&path).unwrap();
        let got = String::from_utf8(c.interactions[0].body()).unwrap();
        assert_eq!(
            got,
            "data: {\"t\":\"[REDACTED]\"}\n\ndata: {\"t\":\"auth Bearer [REDACTED]\"}\n\ndata: {\"t\":\"[REDACTED]\"}\n\n",
            "splits {splits:?}"
        );
    }
}

/// A non-JSON request body (`body_b64`, as the recording proxy writes it) is read back and
/// written again: a cassette round-trips, and the body is still redacted on the way.
#[test]
fn a_non_json_request_body_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let raw: &[u8] = b"form=1&key=sk-proj-abcdefghijklmnopqrstuvwxyz0123";
    let mut w =
        CassetteWriter::create(&first, Header::new(Api::OpenAiChat), Redactor::new()).unwrap();
    let req = request(
        "https://x/v1/chat/completions",
        &[],
        serde_json::Value::Null,
    );
    w.write_raw_request(1, 1, 1, &req, raw).unwrap();
    w.write_response(1, &head(200)).unwrap();
    w.write_chunk(1, 11, b"{}").unwrap();
    let end = End {
        ms: 12,
        outcome: EndOutcome::Complete,
    };
    w.write_end(1, end).unwrap();
    w.finish().unwrap();

    let c = Cassette::load(&first).unwrap();
    let b64 = c.interactions[0]
        .request
        .body_b64
        .clone()
        .expect("body_b64 is kept");
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    assert!(stored.starts_with(b"form=1&key="), "{stored:?}");
    assert!(
        !stored.windows(7).any(|w| w == b"sk-proj"),
        "the key was redacted before disk: {stored:?}"
    );

    let second = dir.path().join("second.jsonl");
    let mut w = CassetteWriter::create(&second, c.header.clone(), Redactor::new()).unwrap();
    for i in &c.interactions {
        w.write_interaction(i).unwrap();
    }
    w.finish().unwrap();
    let again = Cassette::load(&second).unwrap();
    assert_eq!(again.interactions, c.interactions);
    let line = std::fs::read_to_string(&second).unwrap();
    assert!(line.contains(&format!(r#""body_b64":"{b64}""#)), "{line}");
}
