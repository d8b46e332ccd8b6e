//! The Gemini `generateContent` request body for a conversation.

use serde_json::{json, Map, Value};

use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::ToolCall;

/// The `generateContent` body for a conversation (the model goes in the URL).
///
/// Assistant turns become `model` contents; tool results become `functionResponse` parts of a
/// `user` content (`response: {"output": …}`, or `{"error": …}` for failed tools).
/// Consecutive contents of the same role are merged. A reasoning part that only carries a
/// signature (text empty) puts that `thoughtSignature` back on the next text part, where it
/// came from; other reasoning parts go back as `thought: true` parts. Tool schemas drop the
/// keys Gemini's OpenAPI-subset `parameters` rejects (`$schema`, `additionalProperties`).
pub fn request_body(conv: &Conversation, opts: &RequestOptions) -> Value {
    let mut contents: Vec<Value> = Vec::new();
    let mut push = |role: &str, parts: Vec<Value>| {
        crate::provider::push_turn(&mut contents, role, "parts", parts)
    };
    for msg in &conv.messages {
        match msg {
            Message::User { content } => push("user", vec![json!({ "text": content })]),
            Message::Assistant { parts } => push("model", model_parts(parts)),
            Message::Tool { results } => {
                let parts = results
                    .iter()
                    .map(|r| {
                        let key = if r.is_error { "error" } else { "output" };
                        json!({ "functionResponse": {
                            "name": r.tool,
                            "response": { key: r.output },
                        }})
                    })
                    .collect();
                push("user", parts);
            }
        }
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if let Some(system) = conv.system.as_deref().filter(|s| !s.is_empty()) {
        body.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system }] }),
        );
    }
    let decls = crate::provider::tool_list(
        conv,
        |t| json!({"name": t.name, "description": t.description, "parameters": clean_schema(&t.schema)}),
    );
    if let Some(decls) = decls {
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    }
    if let Some(max) = opts.max_output_tokens {
        body.insert("generationConfig".into(), json!({ "maxOutputTokens": max }));
    }
    Value::Object(body)
}

fn signature_of(metadata: &Option<Value>) -> Option<&str> {
    metadata.as_ref()?.get("thoughtSignature")?.as_str()
}

fn model_parts(parts: &[AssistantPart]) -> Vec<Value> {
    let mut out = Vec::with_capacity(parts.len());
    let mut carried: Option<&str> = None;
    for part in parts {
        match part {
            AssistantPart::Reasoning { text, metadata } if text.is_empty() => {
                if let Some(sig) = signature_of(metadata) {
                    if let Some(prev) = carried.replace(sig) {
                        out.push(json!({ "text": "", "thoughtSignature": prev }));
                    }
                }
            }
            AssistantPart::Reasoning { text, metadata } => {
                let mut p = json!({ "text": text, "thought": true });
                if let Some(sig) = signature_of(metadata) {
                    p["thoughtSignature"] = json!(sig);
                }
                out.push(p);
            }
            AssistantPart::Text { text } => {
                let mut p = json!({ "text": text });
                if let Some(sig) = carried.take() {
                    p["thoughtSignature"] = json!(sig);
                }
                out.push(p);
            }
            AssistantPart::ToolCall(ToolCall {
                tool,
                input,
                metadata,
                ..
            }) => {
                let args = crate::provider::input_object(input);
                let mut p = json!({ "functionCall": { "name": tool, "args": args } });
                if let Some(sig) = signature_of(metadata).or(carried.take()) {
                    p["thoughtSignature"] = json!(sig);
                }
                out.push(p);
            }
            // Gemini has no provider-executed tool results to send back.
            AssistantPart::ToolResult { .. } => {}
        }
    }
    if let Some(sig) = carried {
        out.push(json!({ "text": "", "thoughtSignature": sig }));
    }
    out
}

/// A copy of a JSON schema without the keywords Gemini's `parameters` rejects. Keys of a
/// `properties` map are property names, not keywords, and are kept.
fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "$schema" | "additionalProperties"))
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("properties", Value::Object(props)) => Value::Object(
                            props
                                .iter()
                                .map(|(name, s)| (name.clone(), clean_schema(s)))
                                .collect(),
                        ),
                        _ => clean_schema(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}
