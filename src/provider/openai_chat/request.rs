//! The Chat Completions request body for a conversation.

use serde_json::{json, Map, Value};

use super::tool_input_to_arguments;
use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::ToolCall;

/// The `/v1/chat/completions` body for a conversation.
///
/// Reasoning parts are not sent back: OpenAI rejects unknown message fields and its reasoning
/// is not replayable in chat. Provider-executed tool parts have no chat representation.
pub fn request_body(conv: &Conversation, opts: &RequestOptions) -> Value {
    let mut messages = Vec::with_capacity(conv.messages.len() + 1);
    if let Some(system) = conv.system.as_deref() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for msg in &conv.messages {
        match msg {
            Message::User { content } => messages.push(json!({"role": "user", "content": content})),
            Message::Assistant { parts } => {
                let mut text = String::new();
                let mut tool_calls = Vec::new();
                for part in parts {
                    match part {
                        AssistantPart::Text { text: t } => text.push_str(t),
                        AssistantPart::ToolCall(ToolCall {
                            id,
                            tool,
                            input,
                            provider_executed: false,
                            ..
                        }) => tool_calls.push(json!({
                            "id": id,
                            "type": "function",
                            "function": {"name": tool, "arguments": tool_input_to_arguments(input)},
                        })),
                        _ => {}
                    }
                }
                let mut m = Map::new();
                m.insert("role".into(), "assistant".into());
                m.insert(
                    "content".into(),
                    if text.is_empty() && !tool_calls.is_empty() {
                        Value::Null
                    } else {
                        Value::String(text)
                    },
                );
                if !tool_calls.is_empty() {
                    m.insert("tool_calls".into(), Value::Array(tool_calls));
                }
                messages.push(Value::Object(m));
            }
            Message::Tool { results } => {
                messages.extend(results.iter().map(
                    |r| json!({"role": "tool", "tool_call_id": r.call_id, "content": r.output}),
                ))
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), opts.model.clone().into());
    body.insert("messages".into(), Value::Array(messages));
    let tools = crate::provider::tool_list(conv, |t| {
        json!({
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.schema},
        })
    });
    if let Some(tools) = tools {
        body.insert("tools".into(), tools);
    }
    body.insert("stream".into(), opts.stream.into());
    if opts.stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(max) = opts.max_output_tokens {
        body.insert("max_completion_tokens".into(), max.into());
    }
    Value::Object(body)
}
