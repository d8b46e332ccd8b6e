//! Anthropic adapter against every recorded fixture: decoding table, split invariance, fuzzed
//! truncation/corruption and HTTP error classification. Request bodies are in
//! `adapter_anthropic_request.rs`.

mod support_ag;

use serde_json::{json, Value};
use support_ag::*;
use tapeloop::conversation::AssistantPart;
use tapeloop::event::{EndOutcome, ErrorClass, FinishReason, StreamEvent, ToolCall};
use tapeloop::http::Headers;
use tapeloop::provider::{anthropic, decode_ndjson, decode_response, Api};

const API: Api = Api::Anthropic;

use FinishReason::{Length, Other, Stop, ToolCalls};

/// Expected values read from the raw payloads with a separate Python script (message_start
/// usage overwritten field by field by message_delta usage; thinking_tokens split off
/// output; text = chars of text_delta; tool inputs = concatenated input_json_delta).
fn table() -> Vec<Row> {
    vec![
        Row {
            file: "llm-anthropic__prefill_stop_sequence.sse",
            usage: u((16, 28, 0, 0, 0)),
            finish: Stop,
            raw: "stop_sequence",
            tools: &[],
            text_chars: 102,
        },
        Row {
            file: "llm-anthropic__stream_events_text.sse",
            usage: u((10, 4, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[],
            text_chars: 5,
        },
        Row {
            file: "llm-anthropic__stream_events_thinking.sse",
            usage: u((46, 133, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[],
            text_chars: 89,
        },
        Row {
            file: "llm-anthropic__stream_events_tool_calls.sse",
            usage: u((543, 40, 0, 0, 0)),
            finish: ToolCalls,
            raw: "tool_use",
            tools: &[("pelican_name_generator", r#"{}"#, false)],
            text_chars: 0,
        },
        Row {
            file: "llm-anthropic__tool_chain_thinking.turn1.sse",
            usage: u((598, 39, 53, 0, 0)),
            finish: ToolCalls,
            raw: "tool_use",
            tools: &[("fixed_version", r#"{}"#, false)],
            text_chars: 0,
        },
        Row {
            file: "llm-anthropic__tool_chain_thinking.turn2.sse",
            usage: u((707, 89, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[],
            text_chars: 277,
        },
        Row {
            file: "llm-anthropic__web_search.sse",
            usage: u((10423, 341, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[(
                "web_search",
                r#"{"query":"San Francisco weather today"}"#,
                true,
            )],
            text_chars: 650,
        },
        Row {
            file: "mirascope__max_tokens.sse",
            usage: u((15, 50, 0, 0, 0)),
            finish: Length,
            raw: "max_tokens",
            tools: &[],
            text_chars: 150,
        },
        Row {
            file: "mirascope__parallel_tool_use.turn1.sse",
            usage: u((416, 109, 0, 0, 0)),
            finish: ToolCalls,
            raw: "tool_use",
            tools: &[
                ("secret_retrieval_tool", r#"{"password":"mellon"}"#, false),
                ("secret_retrieval_tool", r#"{"password":"radiance"}"#, false),
            ],
            text_chars: 58,
        },
        Row {
            file: "mirascope__parallel_tool_use.turn2.sse",
            usage: u((602, 52, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[],
            text_chars: 192,
        },
        Row {
            file: "pydantic-ai__cache_read_compaction.sse",
            usage: u((181, 8, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[],
            text_chars: 8,
        },
        Row {
            file: "pydantic-ai__code_execution_tool.sse",
            usage: u((4714, 304, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[(
                "bash_code_execution",
                r#"{"command":"echo \"65465-6544 * 65464-6+1.02255\" | bc -l"}"#,
                true,
            )],
            text_chars: 501,
        },
        Row {
            file: "pydantic-ai__pause_turn.turn1.sse",
            usage: u((404500, 682, 261, 0, 0)),
            finish: Other,
            raw: "pause_turn",
            tools: &[
                (
                    "web_search",
                    r#"{"query":"San Francisco weather today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"San Francisco sunrise time today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"Golden Gate Bridge traffic today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"San Francisco air quality today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"San Francisco events this week"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"San Francisco ferry schedule today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"prevailing information on quantum computing today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on the stock market today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on the weather in San Francisco today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on the traffic in San Francisco today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on the air quality in San Francisco today"}"#,
                    true,
                ),
            ],
            text_chars: 166,
        },
        Row {
            file: "pydantic-ai__pause_turn.turn2.sse",
            usage: u((482529, 1310, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[
                (
                    "web_search",
                    r#"{"query":"latest news on the events in San Francisco this week"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on the ferry schedule in San Francisco today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on quantum computing in San Francisco today"}"#,
                    true,
                ),
                (
                    "web_search",
                    r#"{"query":"latest news on the stock market in San Francisco today"}"#,
                    true,
                ),
            ],
            text_chars: 3064,
        },
        Row {
            file: "pydantic-ai__thinking_redacted.sse",
            usage: u((92, 189, 0, 0, 0)),
            finish: Stop,
            raw: "end_turn",
            tools: &[],
            text_chars: 359,
        },
        Row {
            file: "vercel__code_execution_prompt_cache.chunks.txt",
            usage: u((6, 198, 0, 6289, 3337)),
            finish: Stop,
            raw: "end_turn",
            tools: &[
                (
                    "bash_code_execution",
                    r#"{"command":"for n in $(seq 1 12); do echo \"$n: $((n*n))\"; done"}"#,
                    true,
                ),
                (
                    "bash_code_execution",
                    r#"{"command":"sum=0; for n in $(seq 1 12); do sum=$((sum + n*n)); done; echo \"Sum: $sum\""}"#,
                    true,
                ),
            ],
            text_chars: 62,
        },
    ]
}

fn rel(file: &str) -> String {
    format!("anthropic/{file}")
}

#[test]
fn every_anthropic_fixture_decodes_to_its_table_row() {
    assert_table(API, "anthropic", &table());
}

#[test]
fn thinking_signature_rides_in_reasoning_end() {
    let events = decode_file(API, &rel("llm-anthropic__stream_events_thinking.sse"));
    let end = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ReasoningEnd { metadata, .. } => Some(metadata.clone()),
            _ => None,
        })
        .expect("reasoning-end");
    let sig = end.as_ref().and_then(|m| m["signature"].as_str()).unwrap();
    assert!(sig.starts_with("EuYDCmMIDBgCKkC05Zda4P+Cdk"), "{sig}");
    let reasoning: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ReasoningDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(reasoning.starts_with("The user wants two names"));
}

#[test]
fn redacted_thinking_carries_opaque_data_and_compaction_is_kept() {
    let events = decode_file(API, &rel("pydantic-ai__thinking_redacted.sse"));
    let starts: Vec<&Value> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ReasoningStart {
                metadata: Some(m), ..
            } => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 2);
    assert!(starts[0]["redactedData"]
        .as_str()
        .unwrap()
        .starts_with("EqkECkYIBxgCKkA8"));
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::ReasoningDelta { .. })));

    let events = decode_file(API, &rel("pydantic-ai__cache_read_compaction.sse"));
    let parts = assistant_parts(&events);
    match &parts[0] {
        AssistantPart::Reasoning { text, metadata } => {
            assert!(text.starts_with("The user provided a very long context"));
            assert_eq!(metadata.as_ref().unwrap()["type"], "compaction");
        }
        other => panic!("expected the compaction block first, got {other:?}"),
    }
}

#[test]
fn server_tool_results_are_provider_executed_and_named() {
    let events = decode_file(API, &rel("llm-anthropic__web_search.sse"));
    let result = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolResult {
                id,
                tool,
                output,
                is_error,
            } => Some((id.clone(), tool.clone(), output.clone(), *is_error)),
            _ => None,
        })
        .expect("web search result");
    let call_id = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolCall(ToolCall {
                id,
                provider_executed: true,
                ..
            }) => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(result.0, call_id);
    assert_eq!(result.1, "web_search");
    assert!(result.2.is_array() && !result.3);

    let events = decode_file(API, &rel("pydantic-ai__code_execution_tool.sse"));
    let out = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolResult { tool, output, .. } => Some((tool.clone(), output.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(out.0, "bash_code_execution");
    assert_eq!(out.1["stdout"], "-428330955.97745\n");
}

#[test]
fn tool_arguments_stream_as_deltas_between_start_and_end() {
    let events = decode_file(API, &rel("mirascope__parallel_tool_use.turn1.sse"));
    let id = "toolu_015cUijgET79LXjgeYQerN2h";
    let start = events
        .iter()
        .position(|e| matches!(e, StreamEvent::ToolInputStart { id: i, .. } if i == id))
        .unwrap();
    let end = events
        .iter()
        .position(|e| matches!(e, StreamEvent::ToolInputEnd { id: i } if i == id))
        .unwrap();
    let joined: String = events[start..end]
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolInputDelta { id: i, delta } if i == id => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&joined).unwrap(),
        json!({"password": "mellon"})
    );
    assert!(matches!(&events[end + 1], StreamEvent::ToolCall(ToolCall { id: i, .. }) if i == id));
}

#[test]
fn ndjson_and_sse_framing_decode_identically() {
    let text =
        String::from_utf8(read(&rel("vercel__code_execution_prompt_cache.chunks.txt"))).unwrap();
    let a = decode_ndjson(API, &text);
    let b = ndjson_as_sse_events(API, &text, EndOutcome::Complete);
    assert_eq!(a, b);
}

#[test]
fn random_chunkings_give_the_same_events() {
    assert_chunking_invariance(API, "anthropic");
}

#[test]
fn truncated_and_corrupted_streams_error_or_shrink_never_panic() {
    assert_truncation_and_corruption_are_safe(API, "anthropic", br#""message_delta""#);
}

#[test]
fn cut_off_and_reset_streams_end_in_network_error() {
    let bytes = read(&rel("llm-anthropic__stream_events_text.sse"));
    let text = String::from_utf8(bytes.clone()).unwrap();
    // Cut right after message_delta: the body ended normally, so the response finishes.
    let delta_end = text.find("event: message_stop").unwrap();
    let ev = decode_chunks(API, &[&bytes[..delta_end]], EndOutcome::Complete);
    assert!(matches!(
        ev.last(),
        Some(StreamEvent::FinishStep {
            finish_reason: FinishReason::Stop,
            ..
        })
    ));
    // The same cut with a reset is an error, never a silent success.
    let ev = decode_chunks(API, &[&bytes[..delta_end]], EndOutcome::Reset);
    match ev.last() {
        Some(StreamEvent::Error(e)) => assert!(e.class == ErrorClass::Network && e.retryable),
        other => panic!("{other:?}"),
    }
    // Cut mid-content: error, no finish-step.
    let mid = text.find("event: content_block_stop").unwrap();
    for outcome in [
        EndOutcome::Complete,
        EndOutcome::Timeout,
        EndOutcome::Aborted,
    ] {
        let ev = decode_chunks(API, &[&bytes[..mid]], outcome);
        assert_well_formed(&ev, "mid cut");
        assert!(matches!(ev.last(), Some(StreamEvent::Error(e)) if e.class == ErrorClass::Network));
    }
}

#[test]
fn invalid_json_payload_is_one_protocol_error() {
    let body = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n\
event: content_block_start\ndata: {not json\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let ev = decode_chunks(API, &[body], EndOutcome::Complete);
    assert_well_formed(&ev, "protocol");
    let errs: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, StreamEvent::Error(_)))
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(
        matches!(errs[0], StreamEvent::Error(e) if e.class == ErrorClass::Protocol && !e.retryable)
    );
}

#[test]
fn unparseable_tool_input_becomes_a_json_string() {
    let body = concat!(
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_x\",\"name\":\"t\",\"input\":{}}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\": 1,\"}}\n\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let ev = decode_chunks(API, &[body.as_bytes()], EndOutcome::Complete);
    let s = summarize(&ev);
    assert_eq!(s.tools, vec![("t".to_string(), json!("{\"a\": 1,"), false)]);
    assert_eq!(s.usage, Some(usage(1, 9, 0, 0, 0)));
}

// ---------------------------------------------------------------------------------------------
// HTTP and in-stream errors

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

#[test]
fn recorded_http_errors_classify() {
    // Status from SOURCES.md, headers from the kept mirascope cassettes (x-should-retry: false).
    let cases = [
        (
            "anthropic__401_stream_request.json",
            401,
            ErrorClass::Auth,
            "authentication_error",
        ),
        (
            "anthropic__404_model_not_found_stream_request.json",
            404,
            ErrorClass::InvalidRequest,
            "not_found_error",
        ),
    ];
    let files: Vec<String> = list_dir("http-errors")
        .into_iter()
        .filter(|f| f.starts_with("anthropic__"))
        .collect();
    assert_eq!(
        files.len(),
        cases.len(),
        "unlisted anthropic error fixtures: {files:?}"
    );
    for (file, status, class, code) in cases {
        let body = read(&format!("http-errors/{file}"));
        let h = headers(&[
            ("request-id", "req_x"),
            ("x-should-retry", "false"),
            ("content-type", "application/json"),
        ]);
        let ev = decode_response(API, status, &h, [body.as_slice()], EndOutcome::Complete);
        assert_eq!(ev.len(), 1);
        let StreamEvent::Error(e) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (e.class, e.retryable, e.retry_after_ms, e.status),
            (class, false, None, Some(status)),
            "{file}"
        );
        assert_eq!(e.code.as_deref(), Some(code));
        assert!(
            !e.message.is_empty() && !e.message.contains('{'),
            "{file}: message {}",
            e.message
        );
    }
}

#[test]
fn status_type_and_header_table() {
    let body = |ty: &str, msg: &str| {
        format!(
            r#"{{"type":"error","error":{{"type":"{ty}","message":"{msg}"}},"request_id":"req_1"}}"#
        )
    };
    struct Case {
        status: u16,
        body: String,
        headers: Vec<(&'static str, &'static str)>,
        class: ErrorClass,
        retryable: bool,
        wait: Option<u64>,
    }
    let cases = vec![
        Case {
            status: 529,
            body: body("overloaded_error", "Overloaded"),
            headers: vec![],
            class: ErrorClass::Overloaded,
            retryable: true,
            wait: None,
        },
        Case {
            status: 529,
            body: body("overloaded_error", "Overloaded"),
            headers: vec![("retry-after", "7")],
            class: ErrorClass::Overloaded,
            retryable: true,
            wait: Some(7000),
        },
        Case {
            status: 429,
            body: body(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
            headers: vec![("retry-after", "11")],
            class: ErrorClass::RateLimited,
            retryable: true,
            wait: Some(11_000),
        },
        Case {
            status: 500,
            body: body("api_error", "Internal server error"),
            headers: vec![],
            class: ErrorClass::Server,
            retryable: true,
            wait: None,
        },
        Case {
            status: 500,
            body: body("api_error", "Internal server error"),
            headers: vec![("x-should-retry", "false")],
            class: ErrorClass::Server,
            retryable: false,
            wait: None,
        },
        Case {
            status: 409,
            body: body("invalid_request_error", "conflict"),
            headers: vec![("x-should-retry", "false")],
            class: ErrorClass::InvalidRequest,
            retryable: false,
            wait: None,
        },
        Case {
            status: 400,
            body: body("invalid_request_error", "bad"),
            headers: vec![("x-should-retry", "true")],
            class: ErrorClass::InvalidRequest,
            retryable: true,
            wait: None,
        },
        Case {
            status: 400,
            body: body(
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
            headers: vec![("x-should-retry", "true")],
            class: ErrorClass::ContextOverflow,
            retryable: false,
            wait: None,
        },
        // retry-after outside 429/5xx is ignored (Anthropic sends it on 200s too).
        Case {
            status: 400,
            body: body("invalid_request_error", "bad"),
            headers: vec![("retry-after", "39")],
            class: ErrorClass::InvalidRequest,
            retryable: false,
            wait: None,
        },
        Case {
            status: 403,
            body: body("permission_error", "no"),
            headers: vec![],
            class: ErrorClass::Auth,
            retryable: false,
            wait: None,
        },
        // A non-JSON body (a proxy's HTML page) falls back on the status.
        Case {
            status: 502,
            body: "<html>Bad Gateway</html>".into(),
            headers: vec![],
            class: ErrorClass::Server,
            retryable: true,
            wait: None,
        },
        Case {
            status: 529,
            body: String::new(),
            headers: vec![],
            class: ErrorClass::Overloaded,
            retryable: true,
            wait: None,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let e = anthropic::classify_error(c.status, &headers(&c.headers), c.body.as_bytes());
        assert_eq!(
            (e.class, e.retryable, e.retry_after_ms),
            (c.class, c.retryable, c.wait),
            "case {i}: {}",
            c.body
        );
        assert_eq!(e.status, Some(c.status));
    }
}

#[test]
fn retry_after_on_a_200_stream_is_ignored() {
    // pydantic-ai's web-fetch cassette: a successful response with `retry-after: 39`.
    let h = headers(&[("retry-after", "39"), ("content-type", "text/event-stream")]);
    let body = read(&rel("llm-anthropic__stream_events_text.sse"));
    let ev = decode_response(API, 200, &h, [body.as_slice()], EndOutcome::Complete);
    assert!(matches!(ev.last(), Some(StreamEvent::FinishStep { .. })));
    assert!(!ev.iter().any(|e| matches!(e, StreamEvent::Error(_))));
}

#[test]
fn synthetic_in_stream_overloaded_error() {
    // SYNTHETIC: no real recording exists (provider-stream-notes §2); the payload follows the
    // shape reported in karthink/gptel PR #1512 and gotgenes/pi-anthropic-auth #73.
    let body = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: error\n",
        "data: {\"type\":\"error\",\"error\":{\"details\":null,\"type\":\"overloaded_error\",\"message\":\"Overloaded\"},\"request_id\":\"req_011SYNTHETIC\"}\n\n",
    );
    for outcome in [EndOutcome::Complete, EndOutcome::Reset] {
        let ev = decode_chunks(API, &[body.as_bytes()], outcome);
        assert_well_formed(&ev, "synthetic overloaded");
        let StreamEvent::Error(e) = ev.last().unwrap() else {
            panic!()
        };
        assert_eq!(
            (e.class, e.retryable, e.status),
            (ErrorClass::Overloaded, true, None)
        );
        assert_eq!(e.code.as_deref(), Some("overloaded_error"));
        assert_eq!(e.message, "Overloaded");
    }
}
