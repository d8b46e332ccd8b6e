//! The Responses API request body for a conversation.

use serde_json::{json, Map, Value};

use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::ToolCall;
use crate::provider::openai_chat::tool_input_to_arguments;

/// The `/v1/responses` body for a conversation.
///
/// Reasoning parts that carry an `item_id` in their metadata go back as reasoning items (with
/// `encrypted_content` when present; consecutive parts of one item become its summary list).
/// Function calls go back without their item id: sending `fc_…` ids without the matching
/// reasoning item is rejected by OpenAI. Provider-executed calls go back as item references.
pub fn request_body(conv: &Conversation, opts: &RequestOptions) -> Value {
    let mut input: Vec<Value> = Vec::with_capacity(conv.messages.len());
    for msg in &conv.messages {
        match msg {
            Message::User { content } => input.push(json!({"role": "user", "content": content})),
            Message::Assistant { parts } => {
                let mut text = String::new();
                let flush_text = |text: &mut String, input: &mut Vec<Value>| {
                    if !text.is_empty() {
                        input.push(json!({"role": "assistant", "content": std::mem::take(text)}));
                    }
                };
                for part in parts {
                    match part {
                        AssistantPart::Text { text: t } => text.push_str(t),
                        AssistantPart::Reasoning { text: t, metadata } => {
                            flush_text(&mut text, &mut input);
                            push_reasoning(&mut input, t, metadata.as_ref());
                        }
                        AssistantPart::ToolCall(ToolCall {
                            id,
                            tool,
                            input: args,
                            provider_executed,
                            ..
                        }) => {
                            flush_text(&mut text, &mut input);
                            if *provider_executed {
                                input.push(json!({"type": "item_reference", "id": id}));
                            } else {
                                input.push(json!({
                                    "type": "function_call",
                                    "call_id": id,
                                    "name": tool,
                                    "arguments": tool_input_to_arguments(args),
                                }));
                            }
                        }
                        // Carried by the item reference above.
                        AssistantPart::ToolResult { .. } => {}
                    }
                }
                flush_text(&mut text, &mut input);
            }
            Message::Tool { results } => input.extend(results.iter().map(|r| {
                json!({"type": "function_call_output", "call_id": r.call_id, "output": r.output})
            })),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), opts.model.clone().into());
    if let Some(system) = conv.system.as_deref() {
        body.insert("instructions".into(), system.into());
    }
    body.insert("input".into(), Value::Array(input));
    let tools = crate::provider::tool_list(
        conv,
        |t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.schema}),
    );
    if let Some(tools) = tools {
        body.insert("tools".into(), tools);
    }
    body.insert("stream".into(), opts.stream.into());
    if let Some(max) = opts.max_output_tokens {
        body.insert("max_output_tokens".into(), max.into());
    }
    Value::Object(body)
}

/// Append a reasoning part as a reasoning item, merging it into the previous item when both
/// come from the same output item (several summary parts).
fn push_reasoning(input: &mut Vec<Value>, text: &str, metadata: Option<&Value>) {
    let Some(item_id) = metadata
        .and_then(|m| m.get("item_id"))
        .and_then(Value::as_str)
    else {
        // Reasoning from another provider has nothing OpenAI can verify.
        return;
    };
    let encrypted = metadata
        .and_then(|m| m.get("encrypted_content"))
        .and_then(Value::as_str);
    if let Some(prev) = input.last_mut().and_then(Value::as_object_mut) {
        if prev.get("type").and_then(Value::as_str) == Some("reasoning")
            && prev.get("id").and_then(Value::as_str) == Some(item_id)
        {
            if !text.is_empty() {
                if let Some(Value::Array(summary)) = prev.get_mut("summary") {
                    summary.push(json!({"type": "summary_text", "text": text}));
                }
            }
            if let Some(enc) = encrypted {
                prev.insert("encrypted_content".into(), enc.into());
            }
            return;
        }
    }
    let mut item = Map::new();
    item.insert("type".into(), "reasoning".into());
    item.insert("id".into(), item_id.into());
    let summary = if text.is_empty() {
        vec![]
    } else {
        vec![json!({"type": "summary_text", "text": text})]
    };
    item.insert("summary".into(), Value::Array(summary));
    if let Some(enc) = encrypted {
        item.insert("encrypted_content".into(), enc.into());
    }
    input.push(Value::Object(item));
}
