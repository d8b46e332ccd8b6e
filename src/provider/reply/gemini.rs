//! Gemini non-stream replies: the `GenerateContentResponse` of `generateContent`.
//!
//! Every stream chunk of `streamGenerateContent` is itself a `GenerateContentResponse`, so the
//! stream form of a reply is the reply as its one (final) chunk.

use serde_json::{json, Map, Value};

use super::{Payload, Reply, ReplyPart};
use crate::event::{ErrorClass, FinishReason, ProviderError, Usage};

pub(super) fn payloads(body: &Value) -> Result<Vec<Payload>, String> {
    match body.get("candidates") {
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => return Err("`candidates` is not an array".into()),
    }
    Ok(vec![Payload::Json(None, body.clone())])
}

/// Drop the `finishReason` and usage (what a cut stream lacks): Gemini has no terminal event.
pub(super) fn strip_terminal(payloads: &mut [Payload]) {
    for p in payloads {
        if let Payload::Json(_, v) = p {
            if let Some(c) = v["candidates"][0].as_object_mut() {
                c.remove("finishReason");
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("usageMetadata");
            }
        }
    }
}

/// Call ids the decoder invents when the server sends none (`call_0`, `call_1`, ...): left
/// out of the body so the decoder invents them again, as Gemini itself sends no id.
fn invented_call_id(id: &str) -> bool {
    id.strip_prefix("call_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn assemble(reply: &Reply, model: &str) -> Value {
    let mut parts = Vec::new();
    let sig_of = |m: &Option<Value>| {
        m.as_ref()
            .and_then(|m| m.get("thoughtSignature"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    for part in &reply.parts {
        match part {
            ReplyPart::Text { text, .. } | ReplyPart::Refusal { text, .. } => {
                parts.push(json!({"text": text}))
            }
            ReplyPart::Reasoning { text, end, .. } => {
                let mut p = Map::new();
                p.insert("text".into(), text.clone().into());
                // A signature-only block came from a signature on a non-thought part.
                if !text.is_empty() {
                    p.insert("thought".into(), true.into());
                }
                if let Some(sig) = sig_of(end) {
                    p.insert("thoughtSignature".into(), sig.into());
                }
                parts.push(Value::Object(p));
            }
            ReplyPart::Call {
                id,
                tool,
                input,
                provider_executed: false,
                metadata,
                ..
            } => {
                let mut call = Map::new();
                if !invented_call_id(id) {
                    call.insert("id".into(), id.clone().into());
                }
                call.insert("name".into(), tool.clone().into());
                call.insert(
                    "args".into(),
                    match input {
                        v @ Value::Object(_) => v.clone(),
                        _ => json!({}),
                    },
                );
                let mut p = Map::new();
                p.insert("functionCall".into(), Value::Object(call));
                if let Some(sig) = sig_of(metadata) {
                    p.insert("thoughtSignature".into(), sig.into());
                }
                parts.push(Value::Object(p));
            }
            ReplyPart::Call { .. } | ReplyPart::Result { .. } => {}
        }
    }
    let finish = reply.raw_finish(
        |raw, _| !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
        |reason| {
            Some(match reason {
                FinishReason::Stop | FinishReason::ToolCalls => "STOP",
                FinishReason::Length => "MAX_TOKENS",
                FinishReason::ContentFilter => "SAFETY",
                FinishReason::Error => "MALFORMED_FUNCTION_CALL",
                FinishReason::Other | FinishReason::Unknown => "OTHER",
            })
        },
    );
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": finish,
            "index": 0,
        }],
        "usageMetadata": usage(&reply.finish_or_default().usage),
        "modelVersion": model,
        "responseId": "tapeloop",
    })
}

/// Gemini usage: `promptTokenCount` includes cached tokens, `candidatesTokenCount` excludes
/// thoughts.
fn usage(u: &Usage) -> Value {
    let mut v = json!({
        "promptTokenCount": u.input + u.cache_read + u.cache_write,
        "candidatesTokenCount": u.output,
        "totalTokenCount": u.total(),
    });
    if u.reasoning > 0 {
        v["thoughtsTokenCount"] = u.reasoning.into();
    }
    if u.cache_read > 0 {
        v["cachedContentTokenCount"] = u.cache_read.into();
    }
    v
}

/// Gemini's `google.rpc.Status` error body: `code`, `message`, `status`.
pub(super) fn error_body(err: &ProviderError) -> Value {
    let (code, status) = match err.class {
        ErrorClass::RateLimited => (429, "RESOURCE_EXHAUSTED"),
        ErrorClass::Overloaded => (503, "UNAVAILABLE"),
        ErrorClass::Auth => (401, "UNAUTHENTICATED"),
        ErrorClass::InvalidRequest | ErrorClass::ContextOverflow | ErrorClass::ContentFilter => {
            (400, "INVALID_ARGUMENT")
        }
        ErrorClass::Server | ErrorClass::Network | ErrorClass::Protocol => (500, "INTERNAL"),
    };
    json!({"error": {
        "code": err.status.unwrap_or(code),
        "message": err.message,
        "status": status,
    }})
}
