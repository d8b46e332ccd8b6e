//! OpenAI Chat Completions request bodies checked against real recorded requests, and text
//! and unparsed tool arguments carried into the next request.

mod support_openai;

use serde_json::{json, Value};
use support_openai::*;
use tapeloop::conversation::{
    AssistantPart, Conversation, Message, RequestOptions, ToolResult, ToolSpec,
};
use tapeloop::event::ToolCall;
use tapeloop::provider::openai_chat;

// ---- request bodies ------------------------------------------------------------------------

fn secret_tool() -> ToolSpec {
    ToolSpec {
        name: "secret_retrieval_tool".into(),
        description: "A tool that requires a password to retrieve a secret.".into(),
        schema: json!({"properties": {"password": {"title": "Password", "type": "string"}}, "required": ["password"], "additionalProperties": false, "type": "object"}),
    }
}

fn tool_turn_conversation() -> Conversation {
    Conversation {
        system: Some("Use parallel tool calling.".into()),
        messages: vec![
            Message::User { content: "Please retrieve the secrets associated with each of these passwords: mellon,radiance".into() },
            Message::Assistant {
                parts: vec![
                    AssistantPart::ToolCall(ToolCall { id: "call_a".into(), tool: "secret_retrieval_tool".into(), input: json!({"password": "mellon"}), provider_executed: false, metadata: None }),
                    AssistantPart::ToolCall(ToolCall { id: "call_b".into(), tool: "secret_retrieval_tool".into(), input: json!({"password": "radiance"}), provider_executed: false, metadata: None }),
                ],
            },
            Message::Tool {
                results: vec![
                    ToolResult { call_id: "call_a".into(), tool: "secret_retrieval_tool".into(), output: "Welcome to Moria!".into(), is_error: false },
                    ToolResult { call_id: "call_b".into(), tool: "secret_retrieval_tool".into(), output: "Life before Death".into(), is_error: false },
                ],
            },
        ],
        tools: vec![secret_tool()],
    }
}

/// Compare two JSON trees by keys and value types; `extra` lists keys the recorded client
/// sends and we deliberately do not (optional knobs such as `strict`).
fn same_shape(ours: &Value, theirs: &Value, at: &str, extra: &[&str]) {
    assert_eq!(kind(ours), kind(theirs), "{at}: type");
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let ak: Vec<_> = a.keys().collect();
            let bk: Vec<_> = b.keys().filter(|k| !extra.contains(&k.as_str())).collect();
            let mut ak_sorted = ak.clone();
            ak_sorted.sort();
            let mut bk_sorted = bk.clone();
            bk_sorted.sort();
            assert_eq!(ak_sorted, bk_sorted, "{at}: keys");
            for k in ak {
                same_shape(&a[k], &b[k], &format!("{at}.{k}"), extra);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}: length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_shape(x, y, &format!("{at}[{i}]"), extra);
            }
        }
        _ => {}
    }
}

#[test]
fn request_body_matches_recorded_chat_requests() {
    let recorded = cassette("mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_completions/stream.yaml");
    let opts = RequestOptions::new("gpt-4o");
    // Turn 2: system, user, assistant with two tool calls, two tool results.
    let ours = openai_chat::request_body(&tool_turn_conversation(), &opts);
    same_shape(&ours, &recorded[1].body, "body", &["strict"]);
    // Turn 1: the first two messages only.
    let mut first = tool_turn_conversation();
    first.messages.truncate(1);
    same_shape(
        &openai_chat::request_body(&first, &opts),
        &recorded[0].body,
        "body",
        &["strict"],
    );
    // Arguments are a JSON string holding the call's input.
    let args = ours["messages"][2]["tool_calls"][1]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"password": "radiance"})
    );

    // pydantic-ai: a plain user turn (its request adds a `moderation` option we do not send).
    let pyd = cassette(
        "pydantic-ai/tests/models/cassettes/test_openai/test_openai_moderation_stream.yaml",
    );
    let conv = Conversation {
        system: None,
        messages: vec![Message::User {
            content: "What is the capital of France?".into(),
        }],
        tools: vec![],
    };
    same_shape(
        &openai_chat::request_body(&conv, &RequestOptions::new("gpt-5")),
        &pyd[0].body,
        "body",
        &["moderation"],
    );

    let mut capped = RequestOptions::new("gpt-4o");
    capped.max_output_tokens = Some(50);
    assert_eq!(
        openai_chat::request_body(&conv, &capped)["max_completion_tokens"],
        50
    );
}

#[test]
fn text_and_unparsed_arguments_round_trip_into_the_request() {
    let conv = Conversation {
        system: None,
        messages: vec![
            Message::User {
                content: "hi".into(),
            },
            Message::Assistant {
                parts: vec![
                    AssistantPart::Text {
                        text: "Let me look.".into(),
                    },
                    AssistantPart::ToolCall(ToolCall {
                        id: "c1".into(),
                        tool: "read".into(),
                        input: json!("{\"path\": \"a"),
                        provider_executed: false,
                        metadata: None,
                    }),
                ],
            },
        ],
        tools: vec![],
    };
    let body = openai_chat::request_body(&conv, &RequestOptions::new("m"));
    let msg = &body["messages"][1];
    assert_eq!(msg["content"], "Let me look.");
    assert_eq!(
        msg["tool_calls"][0]["function"]["arguments"],
        "{\"path\": \"a"
    );
    assert!(body.get("tools").is_none());
}
