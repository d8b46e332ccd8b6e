//! Anthropic request bodies against real recorded requests (mirascope, llm-anthropic) and
//! every part kind of a conversation.

mod support_ag;

use serde_json::{json, Value};
use support_ag::*;
use tapeloop::conversation::{
    AssistantPart, Conversation, Message, RequestOptions, ToolResult, ToolSpec,
};
use tapeloop::event::ToolCall;
use tapeloop::provider::{anthropic, Api};

const API: Api = Api::Anthropic;

fn rel(file: &str) -> String {
    format!("anthropic/{file}")
}

// ---------------------------------------------------------------------------------------------
// Request bodies

const MIRASCOPE_TOOLS: &str =
    "cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/anthropic_claude_sonnet_4_0/stream.yaml";
const LLM_TOOL_CHAIN: &str = "cassettes/llm-anthropic/tests/cassettes/test_anthropic/test_fixed_version_tool_chain_with_thinking_display_regression.yaml";

/// A user message's string content as the equivalent one-text-block array (both are valid).
fn normalize_user_content(body: &mut Value) {
    for m in body["messages"].as_array_mut().unwrap() {
        if let Some(s) = m["content"].as_str() {
            m["content"] = json!([{ "type": "text", "text": s }]);
        }
    }
}

#[test]
fn turn_two_body_matches_mirascope_parallel_tool_request() {
    let theirs_all = cassette_request_bodies(MIRASCOPE_TOOLS);
    let mut theirs = theirs_all[1].clone();
    // Decode the recorded turn 1 and build turn 2 from it, as the agent loop does.
    let turn1 = decode_file(API, &rel("mirascope__parallel_tool_use.turn1.sse"));
    let parts = assistant_parts(&turn1);
    let user = theirs["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let tool = &theirs["tools"][0];
    let conv = Conversation {
        system: Some(theirs["system"][0]["text"].as_str().unwrap().to_string()),
        messages: vec![
            Message::User { content: user },
            Message::Assistant { parts },
            Message::Tool {
                results: vec![
                    ToolResult {
                        call_id: "toolu_015cUijgET79LXjgeYQerN2h".into(),
                        tool: "secret_retrieval_tool".into(),
                        output: "Welcome to Moria!".into(),
                        is_error: false,
                    },
                    ToolResult {
                        call_id: "toolu_01XZTimPexA7h3EVKesnKt5T".into(),
                        tool: "secret_retrieval_tool".into(),
                        output: "Life before Death".into(),
                        is_error: false,
                    },
                ],
            },
        ],
        tools: vec![ToolSpec {
            name: tool["name"].as_str().unwrap().into(),
            description: tool["description"].as_str().unwrap().into(),
            schema: tool["input_schema"].clone(),
        }],
    };
    let mut opts = RequestOptions::new("claude-sonnet-4-0");
    opts.max_output_tokens = Some(16000);
    let ours = anthropic::request_body(&conv, &opts);
    // cache_control is a caching hint tapeloop does not send.
    strip_keys(&mut theirs, &["cache_control"]);
    normalize_user_content(&mut theirs);
    assert_same_shape(&ours, &theirs, "$");
    // Values that must round-trip exactly: tool ids and arguments from the decoded stream.
    assert_eq!(ours["messages"][1], theirs["messages"][1]);
    assert_eq!(ours["messages"][2], theirs["messages"][2]);
    assert_eq!(ours["tools"], theirs["tools"]);
}

#[test]
fn turn_two_body_matches_llm_anthropic_thinking_tool_chain() {
    let theirs_all = cassette_request_bodies(LLM_TOOL_CHAIN);
    let mut theirs = theirs_all[1].clone();
    let turn1 = decode_file(API, &rel("llm-anthropic__tool_chain_thinking.turn1.sse"));
    let conv = Conversation {
        system: None,
        messages: vec![
            Message::User {
                content: theirs["messages"][0]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .into(),
            },
            Message::Assistant {
                parts: assistant_parts(&turn1),
            },
            Message::Tool {
                results: vec![ToolResult {
                    call_id: "toolu_01825dXWLSoJwCst1qTsiWdb".into(),
                    tool: "fixed_version".into(),
                    output: "0.32a0".into(),
                    is_error: false,
                }],
            },
        ],
        tools: vec![ToolSpec {
            name: "fixed_version".into(),
            description: "Return a fixed test version string".into(),
            schema: json!({"properties": {}, "type": "object"}),
        }],
    };
    let mut opts = RequestOptions::new("claude-haiku-4-5-20251001");
    opts.max_output_tokens = Some(64000);
    let ours = anthropic::request_body(&conv, &opts);
    // Sampling and thinking settings are request options tapeloop does not model.
    strip_keys(&mut theirs, &["temperature", "thinking"]);
    // `thinking` also names the thinking block's text field: compare that block by value.
    let mut ours_cmp = ours.clone();
    strip_keys(&mut ours_cmp, &["temperature", "thinking"]);
    assert_same_shape(&ours_cmp, &theirs, "$");
    // The thinking block (text + signature) and the tool call round-trip verbatim.
    let theirs_full = &theirs_all[1];
    assert_eq!(ours["messages"][1], theirs_full["messages"][1]);
    assert_eq!(ours["messages"][2], theirs_full["messages"][2]);
}

#[test]
fn request_body_maps_every_part_kind() {
    let conv = Conversation {
        system: None,
        messages: vec![
            Message::User {
                content: "hi".into(),
            },
            Message::Assistant {
                parts: vec![
                    AssistantPart::Reasoning {
                        text: "".into(),
                        metadata: Some(json!({"redactedData": "opaque"})),
                    },
                    AssistantPart::Reasoning {
                        text: "t".into(),
                        metadata: Some(json!({"signature": "sig"})),
                    },
                    AssistantPart::Reasoning {
                        text: "foreign".into(),
                        metadata: None,
                    },
                    AssistantPart::Text { text: "".into() },
                    AssistantPart::ToolCall(ToolCall {
                        id: "srvtoolu_1".into(),
                        tool: "web_search".into(),
                        input: json!({"query": "q"}),
                        provider_executed: true,
                        metadata: None,
                    }),
                    AssistantPart::ToolResult {
                        id: "srvtoolu_1".into(),
                        tool: "web_search".into(),
                        output: json!([]),
                    },
                    AssistantPart::ToolCall(ToolCall {
                        id: "toolu_1".into(),
                        tool: "t".into(),
                        input: json!("not an object"),
                        provider_executed: false,
                        metadata: None,
                    }),
                ],
            },
            Message::Tool {
                results: vec![ToolResult {
                    call_id: "toolu_1".into(),
                    tool: "t".into(),
                    output: "boom".into(),
                    is_error: true,
                }],
            },
            Message::User {
                content: "again".into(),
            },
        ],
        tools: vec![],
    };
    let body = anthropic::request_body(&conv, &RequestOptions::new("m"));
    assert_eq!(body["max_tokens"], anthropic::DEFAULT_MAX_TOKENS);
    assert!(body.get("system").is_none() && body.get("tools").is_none());
    assert_eq!(body["stream"], true);
    let assistant = &body["messages"][1]["content"];
    assert_eq!(
        assistant,
        &json!([
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "thinking", "thinking": "t", "signature": "sig"},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
        ])
    );
    // Tool results and the next user message share one user turn.
    assert_eq!(body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["messages"][2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": true},
            {"type": "text", "text": "again"},
        ])
    );
}
