//! Anthropic non-stream replies: the `message` object.
//!
//! Its stream form: `message_start` (with the usage), then per content block
//! `content_block_start` (the block emptied) → one delta carrying its text, thinking,
//! signature or tool input → `content_block_stop`, then `message_delta` (stop reason, usage)
//! and `message_stop`. Blocks that stream no deltas (redacted thinking, server tool results)
//! start whole, as the API sends them.

use serde_json::{json, Map, Value};

use super::{Payload, Reply, ReplyPart};
use crate::event::{ErrorClass, FinishReason, ProviderError, Usage};

fn ev(name: &'static str, data: Value) -> Payload {
    Payload::Json(Some(name), data)
}

pub(super) fn payloads(body: &Value) -> Result<Vec<Payload>, String> {
    if body["type"] == "error" || body.get("error").is_some_and(|e| !e.is_null()) {
        let mut err = body.clone();
        err["type"] = "error".into();
        return Ok(vec![ev("error", err)]);
    }
    let blocks = match body.get("content") {
        Some(Value::Array(b)) => b,
        Some(_) => return Err("`content` is not an array".into()),
        None => return Err("a message needs a `content` array".into()),
    };
    let usage = body.get("usage").cloned().unwrap_or(Value::Null);
    let mut head = body.as_object().cloned().unwrap_or_default();
    head.insert("content".into(), json!([]));
    head.insert("stop_reason".into(), Value::Null);
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": head}),
    )];
    for (index, block) in blocks.iter().enumerate() {
        let Value::Object(block) = block else {
            return Err(format!("`content[{index}]` is not an object"));
        };
        let ty = block.get("type").and_then(Value::as_str).unwrap_or("");
        let mut start = block.clone();
        let delta = match ty {
            "text" => {
                take_str(&mut start, "text", "").map(|t| json!({"type": "text_delta", "text": t}))
            }
            "thinking" => {
                let sig = take_str(&mut start, "signature", "");
                let thinking = take_str(&mut start, "thinking", "");
                let mut d: Vec<Value> = thinking
                    .map(|t| json!({"type": "thinking_delta", "thinking": t}))
                    .into_iter()
                    .collect();
                d.extend(sig.map(|s| json!({"type": "signature_delta", "signature": s})));
                out.push(block_start(index, start));
                for delta in d {
                    out.push(block_delta(index, delta));
                }
                out.push(block_stop(index));
                continue;
            }
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                let input = start.insert("input".into(), json!({}));
                match input {
                    Some(Value::Object(m)) if m.is_empty() => None,
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    Some(v) => Some(v.to_string()),
                }
                .map(|j| json!({"type": "input_json_delta", "partial_json": j}))
            }
            _ => None,
        };
        out.push(block_start(index, start));
        out.extend(delta.map(|d| block_delta(index, d)));
        out.push(block_stop(index));
    }
    out.push(ev(
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": body.get("stop_reason").cloned().unwrap_or(Value::Null),
                "stop_sequence": body.get("stop_sequence").cloned().unwrap_or(Value::Null),
            },
            "usage": usage,
        }),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    Ok(out)
}

/// Replace the string at `key` with `empty`, returning it when it was a non-empty string.
fn take_str(block: &mut Map<String, Value>, key: &str, empty: &str) -> Option<String> {
    match block.insert(key.into(), empty.into()) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn block_start(index: usize, block: Map<String, Value>) -> Payload {
    ev(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn block_delta(index: usize, delta: Value) -> Payload {
    ev(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn block_stop(index: usize) -> Payload {
    ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

/// Drop `message_delta` and `message_stop` (what a cut stream lacks).
pub(super) fn strip_terminal(payloads: &mut Vec<Payload>) {
    if let Some(at) = payloads
        .iter()
        .position(|p| matches!(p, Payload::Json(Some("message_delta"), _)))
    {
        payloads.truncate(at);
    }
}

pub(super) fn assemble(reply: &Reply, model: &str) -> Value {
    let mut content = Vec::new();
    for part in &reply.parts {
        let meta = |m: &Option<Value>, k: &str| {
            m.as_ref()
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        content.push(match part {
            ReplyPart::Text { text, .. } | ReplyPart::Refusal { text, .. } => {
                json!({"type": "text", "text": text})
            }
            ReplyPart::Reasoning {
                text, start, end, ..
            } => {
                if let Some(data) =
                    meta(start, "redactedData").or_else(|| meta(end, "redactedData"))
                {
                    json!({"type": "redacted_thinking", "data": data})
                } else if meta(start, "type").as_deref() == Some("compaction") {
                    json!({"type": "compaction", "content": text})
                } else {
                    json!({
                        "type": "thinking",
                        "thinking": text,
                        "signature": meta(end, "signature").unwrap_or_default(),
                    })
                }
            }
            ReplyPart::Call {
                id,
                tool,
                input,
                provider_executed,
                ..
            } => json!({
                "type": if *provider_executed { "server_tool_use" } else { "tool_use" },
                "id": id,
                "name": tool,
                "input": input,
            }),
            ReplyPart::Result {
                id, tool, output, ..
            } => json!({
                "type": format!("{tool}_tool_result"),
                "tool_use_id": id,
                "content": output,
            }),
        });
    }
    let stop = reply.raw_finish(
        |raw, _| {
            matches!(
                raw,
                "end_turn"
                    | "stop_sequence"
                    | "tool_use"
                    | "max_tokens"
                    | "model_context_window_exceeded"
                    | "refusal"
                    | "pause_turn"
            )
        },
        |reason| match reason {
            FinishReason::Stop | FinishReason::Error | FinishReason::Other => Some("end_turn"),
            FinishReason::Length => Some("max_tokens"),
            FinishReason::ContentFilter => Some("refusal"),
            FinishReason::ToolCalls => Some("tool_use"),
            FinishReason::Unknown => None,
        },
    );
    json!({
        "id": "msg_tapeloop",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(&reply.finish_or_default().usage),
    })
}

/// Anthropic usage: `input_tokens` already excludes cache reads and writes; `output_tokens`
/// includes thinking, which is split off only when `thinking_tokens` says how much.
fn usage(u: &Usage) -> Value {
    let mut v = json!({
        "input_tokens": u.input,
        "output_tokens": u.output + u.reasoning,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cache_read,
    });
    if u.reasoning > 0 {
        v["output_tokens_details"] = json!({"thinking_tokens": u.reasoning});
    }
    v
}

/// Anthropic's error body, with an `error.type` of the same class.
pub(super) fn error_body(err: &ProviderError) -> Value {
    let ty = match err.class {
        ErrorClass::RateLimited => "rate_limit_error",
        ErrorClass::Overloaded => "overloaded_error",
        ErrorClass::Auth => "authentication_error",
        ErrorClass::InvalidRequest | ErrorClass::ContentFilter => "invalid_request_error",
        ErrorClass::ContextOverflow => "request_too_large",
        ErrorClass::Server | ErrorClass::Network | ErrorClass::Protocol => "api_error",
    };
    json!({"type": "error", "error": {"type": ty, "message": err.message}})
}
