//! Chat Completions non-stream replies: the `chat.completion` object.
//!
//! Its stream form is the same object cut into `chat.completion.chunk`s: `choices[0].message`
//! becomes `delta` (content and reasoning in one chunk, then one chunk per tool call with its
//! `index`), the `finish_reason` gets its own chunk, usage a trailing `choices: []` chunk, and
//! `[DONE]` ends it. Every field of the message is carried over, so the server variants the
//! stream decoder knows (`reasoning_content`, `reasoning_details`, Mistral's typed content
//! arrays) decode the same from a JSON reply.

use serde_json::{json, Map, Value};

use super::{Payload, Reply, ReplyPart};
use crate::event::{ErrorClass, FinishReason, ProviderError, Usage};
use crate::provider::openai_chat::map_finish_reason;

pub(super) fn payloads(body: &Value) -> Result<Vec<Payload>, String> {
    if let Some(err) = body.get("error").filter(|e| !e.is_null()) {
        return Ok(vec![Payload::Json(None, json!({ "error": err }))]);
    }
    let choices = match body.get("choices") {
        Some(Value::Array(c)) => c,
        Some(_) => return Err("`choices` is not an array".into()),
        None => return Err("a chat completion needs a `choices` array".into()),
    };
    let mut head = Map::new();
    for key in ["id", "created", "model", "system_fingerprint"] {
        if let Some(v) = body.get(key) {
            head.insert(key.into(), v.clone());
        }
    }
    head.insert("object".into(), "chat.completion.chunk".into());
    let chunk = |choices: Value, extra: &[(&str, &Value)]| {
        let mut c = head.clone();
        c.insert("choices".into(), choices);
        for (k, v) in extra {
            c.insert((*k).into(), (*v).clone());
        }
        Payload::Json(None, Value::Object(c))
    };
    let mut out = Vec::new();
    let first = choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0);
    if let Some(choice) = first {
        let mut delta = match choice.get("message") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err("`choices[0].message` is not an object".into()),
        };
        let calls = match delta.remove("tool_calls") {
            Some(Value::Array(calls)) => calls,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err("`choices[0].message.tool_calls` is not an array".into()),
        };
        delta
            .entry("role")
            .or_insert_with(|| Value::String("assistant".into()));
        out.push(chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
            &[],
        ));
        for (i, call) in calls.into_iter().enumerate() {
            let Value::Object(mut call) = call else {
                return Err(format!(
                    "`choices[0].message.tool_calls[{i}]` is not an object"
                ));
            };
            call.entry("index").or_insert_with(|| i.into());
            out.push(chunk(
                json!([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]),
                &[],
            ));
        }
        let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
        out.push(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
            &[],
        ));
    }
    let mut extra = Vec::new();
    for key in ["usage", "x_groq"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            extra.push((key, v));
        }
    }
    if !extra.is_empty() {
        out.push(chunk(json!([]), &extra));
    }
    out.push(Payload::Done);
    Ok(out)
}

/// Drop everything from the finish chunk on (what a cut stream lacks).
pub(super) fn strip_terminal(payloads: &mut Vec<Payload>) {
    let at = payloads.iter().position(|p| match p {
        Payload::Done => true,
        Payload::Json(_, v) => {
            !v["choices"][0]["finish_reason"].is_null()
                || v["choices"].as_array().is_some_and(|c| c.is_empty())
        }
    });
    if let Some(at) = at {
        payloads.truncate(at);
    }
}

pub(super) fn assemble(reply: &Reply, model: &str) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut refusal = String::new();
    let mut calls = Vec::new();
    for part in &reply.parts {
        match part {
            ReplyPart::Text { text, .. } => content.push_str(text),
            ReplyPart::Reasoning { text, end, .. } => {
                reasoning.push_str(text);
                if let Some(Value::Array(d)) = end.as_ref().and_then(|m| m.get("reasoning_details"))
                {
                    details.extend(d.iter().cloned());
                }
            }
            ReplyPart::Refusal { text, .. } => refusal.push_str(text),
            ReplyPart::Call {
                id,
                tool,
                args,
                provider_executed: false,
                ..
            } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": tool, "arguments": args},
            })),
            // Provider-executed tools have no chat representation.
            ReplyPart::Call { .. } | ReplyPart::Result { .. } => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if content.is_empty() && (!calls.is_empty() || !refusal.is_empty()) {
            Value::Null
        } else {
            content.into()
        },
    );
    message.insert(
        "refusal".into(),
        if refusal.is_empty() {
            Value::Null
        } else {
            refusal.into()
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), reasoning.into());
    }
    if !details.is_empty() {
        message.insert("reasoning_details".into(), details.into());
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), calls.into());
    }
    let finish = reply.raw_finish(
        |raw, reason| map_finish_reason(Some(raw)) == reason,
        |reason| match reason {
            FinishReason::Stop | FinishReason::Error | FinishReason::Other => Some("stop"),
            FinishReason::Length => Some("length"),
            FinishReason::ContentFilter => Some("content_filter"),
            FinishReason::ToolCalls => Some("tool_calls"),
            FinishReason::Unknown => None,
        },
    );
    json!({
        "id": "chatcmpl-tapeloop",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage(&reply.finish_or_default().usage),
    })
}

/// Chat usage whose normalization (see the stream decoder) gives back `u`.
fn usage(u: &Usage) -> Value {
    let prompt = u.input + u.cache_read + u.cache_write;
    let completion = u.output + u.reasoning;
    let mut details = json!({"cached_tokens": u.cache_read});
    if u.cache_write > 0 {
        details["cache_write_tokens"] = u.cache_write.into();
    }
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

/// OpenAI's error body (also the Responses API's), with a `type` the classifier maps back to
/// the same class.
pub(super) fn error_body(err: &ProviderError) -> Value {
    let kind = match err.class {
        ErrorClass::RateLimited => "rate_limit_error",
        ErrorClass::Overloaded => "overloaded_error",
        ErrorClass::Auth => "authentication_error",
        ErrorClass::InvalidRequest => "invalid_request_error",
        ErrorClass::ContextOverflow => "context_length_exceeded",
        ErrorClass::ContentFilter => "content_filter",
        ErrorClass::Server | ErrorClass::Network | ErrorClass::Protocol => "server_error",
    };
    json!({"error": {
        "message": err.message,
        "type": kind,
        "code": err.code,
        "param": null,
    }})
}
