//! OpenAI Chat Completions adapter: every recorded chat stream (OpenAI and compatible servers)
//! against a hand-computed table, chunking invariance, truncation/corruption fuzzing and HTTP
//! error classification. Request bodies are in `adapter_openai_chat_request.rs`.

mod support_openai;

use serde_json::json;
use support_openai::*;
use tapeloop::event::{EndOutcome, ErrorClass, FinishReason, StreamEvent, ToolCall};
use tapeloop::http::Headers;
use tapeloop::provider::{decode_response, openai_chat, Api};

/// Values computed by `tests/support_openai/expected_values.py` from the raw payloads alone:
/// usage from the last non-null `usage` (else `x_groq.usage`), first `finish_reason`, tool
/// calls grouped by `index`, chars of `content` strings / Mistral text parts, chars of
/// `reasoning_content` / `reasoning` / `reasoning_details` / Mistral thinking parts.
const CASES: &[Case] = &[
    Case {
        file: "openai-chat/mirascope__finish_length.sse",
        usage: [14, 50, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Length, "length"),
        tools: &[],
        text_chars: 149,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/mirascope__finish_length_all_reasoning.sse",
        usage: [13, 0, 50, 0, 0],
        outcome: Outcome::Finish(FinishReason::Length, "length"),
        tools: &[],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/mirascope__parallel_tool_calls.turn1.sse",
        usage: [75, 53, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[
            ("secret_retrieval_tool", r#"{"password":"mellon"}"#),
            ("secret_retrieval_tool", r#"{"password":"radiance"}"#),
        ],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/mirascope__parallel_tool_calls.turn2.sse",
        usage: [149, 28, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 109,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/mirascope__refusal.sse",
        usage: [64, 13, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/pydantic-ai__moderation_chunk.sse",
        usage: [13, 11, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 6,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/pydantic-ai__parallel_tool_calls_empty_args.sse",
        usage: [364, 40, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[("get_country", r#"{}"#), ("get_product_name", r#"{}"#)],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/pydantic-ai__tool_args_many_chunks.sse",
        usage: [448, 62, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[(
            "final_result",
            r#"{"answers":[{"label":"Capital","answer":"The capital of Mexico is Mexico City."},{"label":"Weather","answer":"The weather in Mexico City is currently sunny."},{"label":"Product Name","answer":"The product name is Pydantic AI."}]}"#,
        )],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/vercel__azure_content_filter.chunks.txt",
        usage: [15, 14, 64, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 19,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-chat/vercel__text_usage.chunks.txt",
        usage: [16, 300, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 1724,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/deepseek__reasoning_content.sse",
        usage: [6, 14, 198, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 40,
        reasoning_chars: 882,
    },
    Case {
        file: "openai-compatible/groq__error_event_midstream.sse",
        usage: [0, 0, 0, 0, 0],
        outcome: Outcome::Error(ErrorClass::InvalidRequest, false),
        tools: &[],
        text_chars: 0,
        reasoning_chars: 412,
    },
    Case {
        file: "openai-compatible/groq__reasoning_tool_call.sse",
        usage: [304, 26, 23, 0, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[("get_something_by_name", r#"{"name":"example"}"#)],
        text_chars: 0,
        reasoning_chars: 92,
    },
    Case {
        file: "openai-compatible/hf-novita__text.sse",
        usage: [40, 2, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 5,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/mistral__thinking_chunks.sse",
        usage: [10, 232, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 607,
        reasoning_chars: 421,
    },
    Case {
        file: "openai-compatible/openrouter__duplicate_finish_cache_fields.sse",
        usage: [254, 5, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 6,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/openrouter__error_chunk_midstream.sse",
        usage: [0, 0, 0, 0, 0],
        outcome: Outcome::Error(ErrorClass::InvalidRequest, false),
        tools: &[],
        text_chars: 0,
        reasoning_chars: 42,
    },
    Case {
        file: "openai-compatible/openrouter__reasoning_details.sse",
        usage: [43, 23, 13, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 9,
        reasoning_chars: 51,
    },
    Case {
        file: "openai-compatible/openrouter_anthropic__text.sse",
        usage: [12, 5, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 6,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/vercel__deepseek_tool_call.chunks.txt",
        usage: [19, 44, 39, 320, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[("weather", r#"{"location":"San Francisco"}"#)],
        text_chars: 0,
        reasoning_chars: 191,
    },
    Case {
        file: "openai-compatible/vercel__groq_tool_call.chunks.txt",
        usage: [210, 15, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[("weather", r#"{}"#)],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/vercel__qwen_tool_call.chunks.txt",
        usage: [295, 22, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[("weather", r#"{"location":"San Francisco"}"#)],
        text_chars: 0,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/vercel__xai_tool_call.chunks.txt",
        usage: [1, 26, 227, 306, 0],
        outcome: Outcome::Finish(FinishReason::ToolCalls, "tool_calls"),
        tools: &[("weather", r#"{"location":"San Francisco"}"#)],
        text_chars: 0,
        reasoning_chars: 1069,
    },
    Case {
        file: "openai-compatible/vllm-crusoe__text.sse",
        usage: [46, 14, 0, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 13,
        reasoning_chars: 0,
    },
    Case {
        file: "openai-compatible/zai__reasoning_content.sse",
        usage: [13, 3, 561, 0, 0],
        outcome: Outcome::Finish(FinishReason::Stop, "stop"),
        tools: &[],
        text_chars: 1,
        reasoning_chars: 2173,
    },
];

#[test]
fn every_chat_fixture_matches_the_table() {
    run_table(Api::OpenAiChat, CASES);
}

#[test]
fn chunking_never_changes_the_events() {
    run_split_invariance(Api::OpenAiChat);
}

#[test]
fn truncated_streams_fail_or_stop_early_without_panicking() {
    run_truncation_fuzz(Api::OpenAiChat, 150);
}

#[test]
fn corrupted_streams_stay_well_formed() {
    run_corruption_fuzz(Api::OpenAiChat, 150);
}

fn decode_sse(body: &str, outcome: EndOutcome) -> Vec<StreamEvent> {
    decode_sse_text(Api::OpenAiChat, body, outcome)
}

const TEXT_CHUNK: &str =
    r#"data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
const FINISH_CHUNK: &str = r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
const USAGE_CHUNK: &str =
    r#"data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

#[test]
fn usage_chunk_after_finish_is_the_final_usage() {
    let body = format!("{TEXT_CHUNK}\n\n{FINISH_CHUNK}\n\n{USAGE_CHUNK}\n\ndata: [DONE]\n\n");
    let s = summarize(&decode_sse(&body, EndOutcome::Complete));
    assert_eq!(s.finish, Some((FinishReason::Stop, Some("stop".into()))));
    let u = s.usage.unwrap();
    assert_eq!((u.input, u.output), (5, 2));
}

#[test]
fn stream_cut_before_finish_is_a_network_error() {
    let events = decode_sse(&format!("{TEXT_CHUNK}\n\n"), EndOutcome::Complete);
    check_well_formed(&events).unwrap();
    let errs = errors(&events);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].class, ErrorClass::Network);
    assert!(errs[0].retryable);
}

#[test]
fn reset_after_done_still_fails_the_request() {
    let body = format!("{TEXT_CHUNK}\n\n{FINISH_CHUNK}\n\n{USAGE_CHUNK}\n\ndata: [DONE]\n\n");
    for outcome in [EndOutcome::Reset, EndOutcome::Timeout, EndOutcome::Aborted] {
        let events = decode_sse(&body, outcome);
        check_well_formed(&events).unwrap();
        assert!(summarize(&events).finish.is_none(), "{outcome:?}");
        assert_eq!(errors(&events)[0].class, ErrorClass::Network, "{outcome:?}");
    }
}

#[test]
fn openai_error_chunk_is_one_server_error_and_no_finish() {
    let body = format!(
        "{TEXT_CHUNK}\n\ndata: {}\n\ndata: [DONE]\n\n",
        r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#
    );
    let events = decode_sse(&body, EndOutcome::Complete);
    check_well_formed(&events).unwrap();
    let errs = errors(&events);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].class, ErrorClass::Server);
    assert!(errs[0].retryable);
    assert_eq!(errs[0].code.as_deref(), Some("server_error"));
    assert_eq!(errs[0].status, None);
}

#[test]
fn in_stream_rate_limit_carries_the_wait_from_its_text() {
    let body = r#"data: {"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.5s.","type":"requests","code":"rate_limit_exceeded"}}"#;
    let events = decode_sse(body, EndOutcome::Complete);
    let e = errors(&events)[0];
    assert_eq!(
        (e.class, e.retryable, e.retry_after_ms),
        (ErrorClass::RateLimited, true, Some(1500))
    );
}

#[test]
fn groq_error_event_keeps_code_and_message() {
    let events = decode_fixture("openai-compatible/groq__error_event_midstream.sse");
    let e = errors(&events)[0];
    assert_eq!(e.code.as_deref(), Some("tool_use_failed"));
    assert!(e.message.starts_with("Tool call validation failed"));
    // The reasoning streamed before the error is closed, not left dangling.
    assert!(matches!(
        events[events.len() - 2],
        StreamEvent::ReasoningEnd { .. }
    ));
}

#[test]
fn openrouter_error_chunk_wins_over_its_earlier_finish_chunks() {
    let events = decode_fixture("openai-compatible/openrouter__error_chunk_midstream.sse");
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::FinishStep { .. })));
    let e = errors(&events)[0];
    assert_eq!(e.message, "Token limit reached");
    assert_eq!(e.code.as_deref(), Some("400"));
}

#[test]
fn undecodable_payload_is_one_protocol_error_and_the_rest_is_ignored() {
    let body = format!("{TEXT_CHUNK}\n\ndata: {{not json\n\n{TEXT_CHUNK}\n\ndata: also bad\n\n{FINISH_CHUNK}\n\ndata: [DONE]\n\n");
    let events = decode_sse(&body, EndOutcome::Complete);
    check_well_formed(&events).unwrap();
    let errs = errors(&events);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].class, ErrorClass::Protocol);
    assert_eq!(summarize(&events).text_chars, 2);
}

#[test]
fn only_choice_zero_is_decoded() {
    let body = [
        r#"data: {"choices":[{"index":1,"delta":{"content":"other"}}]}"#,
        r#"data: {"choices":[{"index":0,"delta":{"content":"mine"}}]}"#,
        r#"data: {"choices":[{"index":1,"delta":{},"finish_reason":"length"},{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "data: [DONE]",
    ]
    .join("\n\n");
    let s = summarize(&decode_sse(&body, EndOutcome::Complete));
    assert_eq!(s.text_chars, 4);
    assert_eq!(s.finish, Some((FinishReason::Stop, Some("stop".into()))));
}

#[test]
fn unparseable_arguments_become_a_raw_string_input() {
    let body = [
        r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"read","arguments":"{\"path\": \"a"}}]}}]}"#,
        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "data: [DONE]",
    ]
    .join("\n\n");
    let s = summarize(&decode_sse(&body, EndOutcome::Complete));
    assert_eq!(s.tools, vec![("read".to_string(), json!("{\"path\": \"a"))]);
}

#[test]
fn a_new_tool_index_without_a_name_is_a_protocol_error() {
    let body = r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"arguments":"{}"}}]}}]}"#;
    let events = decode_sse(body, EndOutcome::Complete);
    check_well_formed(&events).unwrap();
    assert_eq!(errors(&events)[0].class, ErrorClass::Protocol);
}

#[test]
fn parallel_calls_stream_in_order_with_provider_ids() {
    let events = decode_fixture("openai-chat/mirascope__parallel_tool_calls.turn1.sse");
    let tool_events: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolInputStart { id, .. } => Some(format!("start {id}")),
            StreamEvent::ToolInputEnd { id } => Some(format!("end {id}")),
            StreamEvent::ToolCall(ToolCall { id, .. }) => Some(format!("call {id}")),
            _ => None,
        })
        .collect();
    let a = "call_M26z19sncd7b4LBgzKRRbaUE";
    let b = "call_KPXe5NX7IcKkaBUhc6dto2QV";
    let raw =
        String::from_utf8(read("openai-chat/mirascope__parallel_tool_calls.turn1.sse")).unwrap();
    assert!(
        raw.contains(a) && raw.contains(b),
        "ids taken from the fixture"
    );
    assert_eq!(
        tool_events,
        [
            format!("start {a}"),
            format!("start {b}"),
            format!("end {a}"),
            format!("call {a}"),
            format!("end {b}"),
            format!("call {b}")
        ]
    );
    // Argument deltas concatenate to exactly the arguments the call reports.
    let deltas: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolInputDelta { id, delta } if id == a => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, r#"{"password": "mellon"}"#);
}

#[test]
fn refusal_streams_as_refusal_deltas() {
    let s = summarize(&decode_fixture("openai-chat/mirascope__refusal.sse"));
    assert_eq!(
        s.refusal,
        "I'm very sorry, but I can't assist with that request."
    );
    assert_eq!(s.text_chars, 0);
}

#[test]
fn openrouter_reasoning_signature_rides_on_reasoning_end() {
    let events = decode_fixture("openai-compatible/openrouter__reasoning_details.sse");
    let meta = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ReasoningEnd { metadata, .. } => metadata.clone(),
            _ => None,
        })
        .expect("reasoning-end with metadata");
    let detail = &meta["reasoning_details"][0];
    assert_eq!(detail["format"], "anthropic-claude-v1");
    assert!(detail["signature"]
        .as_str()
        .unwrap()
        .starts_with("Et0BCkgIChACGAIqQA2s7h7tA7IG35fbwVkou9PM2hANVJNUwcEM4q12fTRDK6y3v6Y"));
}

// ---- HTTP errors ---------------------------------------------------------------------------

type HeaderPairs = &'static [(&'static str, &'static str)];

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

#[test]
fn recorded_http_errors_classify() {
    let auth = cassette("mirascope/python/tests/e2e/input/cassettes/test_authentication_error_stream/openai_gpt_4o_completions.yaml");
    let missing = cassette("mirascope/python/tests/e2e/input/cassettes/test_model_not_found_stream/openai_gpt_4o_completions.yaml");
    let openrouter = cassette(
        "pydantic-ai/tests/models/cassettes/test_openrouter/test_openrouter_errors_raised.yaml",
    );
    // (file, status from SOURCES.md, cassette headers, class, retryable, wait, code)
    let cases = [
        (
            "http-errors/openai_chat__401_stream_request.json",
            401,
            &auth[0].headers,
            ErrorClass::Auth,
            false,
            None,
            "invalid_api_key",
        ),
        (
            "http-errors/openai_chat__404_model_not_found_stream_request.json",
            404,
            &missing[0].headers,
            ErrorClass::InvalidRequest,
            false,
            None,
            "model_not_found",
        ),
        (
            "http-errors/openrouter__429_upstream_rate_limited.json",
            429,
            &openrouter[0].headers,
            ErrorClass::RateLimited,
            true,
            None,
            "429",
        ),
    ];
    for (file, status, headers, class, retryable, wait, code) in cases {
        let ev = decode_response(
            Api::OpenAiChat,
            status,
            headers,
            [read(file).as_slice()],
            EndOutcome::Complete,
        );
        let [StreamEvent::Error(e)] = ev.as_slice() else {
            panic!("{file}: {ev:?}")
        };
        assert_eq!(
            (
                e.class,
                e.retryable,
                e.retry_after_ms,
                e.code.as_deref(),
                e.status
            ),
            (class, retryable, wait, Some(code), Some(status)),
            "{file}"
        );
    }
    assert_eq!(auth[0].status, 401);
    let e = openai_chat::classify_error(
        429,
        &openrouter[0].headers,
        &read("http-errors/openrouter__429_upstream_rate_limited.json"),
    );
    assert!(
        e.message.contains("temporarily rate-limited upstream"),
        "{}",
        e.message
    );
}

#[test]
fn retry_after_header_forms() {
    let body = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
    let cases: [(HeaderPairs, Option<u64>); 6] = [
        (&[("retry-after-ms", "1500")], Some(1500)),
        (&[("Retry-After", "20")], Some(20_000)),
        (&[("retry-after", "0.25")], Some(250)),
        (
            &[
                ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
                ("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT"),
            ],
            Some(30_000),
        ),
        (&[("retry-after-ms", "10"), ("retry-after", "9")], Some(10)),
        (&[], None),
    ];
    for (headers, want) in cases {
        let e = openai_chat::classify_error(429, &h(headers), body);
        assert_eq!(
            (e.class, e.retryable, e.retry_after_ms),
            (ErrorClass::RateLimited, true, want),
            "{headers:?}"
        );
    }
}

#[test]
fn try_again_in_text_gives_the_wait() {
    let cases = [
        ("Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits", Some(20_000)),
        ("Please try again in 1.5s.", Some(1_500)),
        ("Please try again in 300ms.", Some(300)),
        ("Please try again in 6m0s.", Some(360_000)),
        ("Slow down.", None),
    ];
    for (msg, want) in cases {
        let body =
            json!({"error": {"message": msg, "type": "tokens", "code": "rate_limit_exceeded"}})
                .to_string();
        let e = openai_chat::classify_error(429, &Headers::new(), body.as_bytes());
        assert_eq!(e.retry_after_ms, want, "{msg}");
        // A header wins over the text.
        let e = openai_chat::classify_error(429, &h(&[("retry-after", "2")]), body.as_bytes());
        assert_eq!(e.retry_after_ms, Some(2_000));
    }
}

#[test]
fn status_and_body_classes() {
    let ctx = br#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let quota = br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let server = br#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#;
    let overloaded = br#"{"error":{"message":"That model is currently overloaded with other requests.","type":"server_error"}}"#;
    let or_overflow = br#"{"error":{"code":400,"message":"Provider returned error","metadata":{"raw":"This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens"}}}"#;
    let policy = br#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}"#;
    let none: HeaderPairs = &[];
    let cases: [(u16, &[u8], HeaderPairs, ErrorClass, bool); 15] = [
        (400, ctx, none, ErrorClass::ContextOverflow, false),
        (400, b"", none, ErrorClass::ContextOverflow, false),
        (
            413,
            b"Request Entity Too Large",
            none,
            ErrorClass::ContextOverflow,
            false,
        ),
        (400, or_overflow, none, ErrorClass::ContextOverflow, false),
        (429, quota, none, ErrorClass::RateLimited, false),
        (
            429,
            quota,
            &[("x-should-retry", "true")],
            ErrorClass::RateLimited,
            false,
        ),
        (500, server, none, ErrorClass::Server, true),
        (
            500,
            server,
            &[("x-should-retry", "false")],
            ErrorClass::Server,
            false,
        ),
        (
            409,
            b"",
            &[("x-should-retry", "false")],
            ErrorClass::InvalidRequest,
            false,
        ),
        (
            400,
            br#"{"error":{"message":"bad"}}"#,
            &[("x-should-retry", "true")],
            ErrorClass::InvalidRequest,
            true,
        ),
        (
            503,
            b"Service Unavailable",
            none,
            ErrorClass::Overloaded,
            true,
        ),
        (529, b"", none, ErrorClass::Overloaded, true),
        (502, overloaded, none, ErrorClass::Overloaded, true),
        (
            502,
            b"<html>Bad Gateway</html>",
            none,
            ErrorClass::Server,
            true,
        ),
        (400, policy, none, ErrorClass::ContentFilter, false),
    ];
    for (status, body, headers, class, retryable) in cases {
        let e = openai_chat::classify_error(status, &h(headers), body);
        assert_eq!(
            (e.class, e.retryable),
            (class, retryable),
            "{status} {}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.status, Some(status));
        assert!(!e.message.is_empty());
    }
    // The message is the error's own text, else the body text.
    assert_eq!(
        openai_chat::classify_error(502, &Headers::new(), b"<html>Bad Gateway</html>").message,
        "<html>Bad Gateway</html>"
    );
    assert_eq!(
        openai_chat::classify_error(400, &Headers::new(), ctx)
            .code
            .as_deref(),
        Some("context_length_exceeded")
    );
}
