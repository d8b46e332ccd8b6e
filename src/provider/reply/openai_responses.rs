//! OpenAI Responses non-stream replies: the `response` object.
//!
//! Its stream form, as OpenAI sends it: `response.created` and `response.in_progress` (the
//! response without output), then per output item `response.output_item.added` → the item's
//! content as one delta per part (`output_text`, `refusal`, reasoning summary parts, function
//! arguments) with their `.done` events → `response.output_item.done` (the whole item), and
//! the terminal `response.completed` / `response.incomplete` / `response.failed` carrying the
//! whole response.

use serde_json::{json, Map, Value};

use super::{Payload, Reply, ReplyPart};
use crate::event::{FinishReason, Usage};

const SUMMARY_TEXT: [&str; 2] = [
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
];
const REASONING_TEXT: [&str; 2] = [
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
];
const ARGUMENTS: [&str; 2] = [
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
];

/// Builds the event list with OpenAI's `sequence_number`s.
struct Events(Vec<Payload>);

impl Events {
    fn push(&mut self, ty: &'static str, mut data: Map<String, Value>) {
        let mut ev = Map::new();
        ev.insert("type".into(), ty.into());
        ev.insert("sequence_number".into(), self.0.len().into());
        ev.append(&mut data);
        self.0.push(Payload::Json(Some(ty), Value::Object(ev)));
    }

    /// A text's delta event (all of it at once, under `delta`) then its done event (under
    /// `key`): each is `base` (item and part indexes), the text, then empty `logprobs` (output
    /// text only).
    fn text(
        &mut self,
        [delta_ty, done_ty]: [&'static str; 2],
        base: Map<String, Value>,
        key: &str,
        text: &Value,
        logprobs: bool,
    ) {
        for (ty, k) in [(delta_ty, "delta"), (done_ty, key)] {
            let mut m = base.clone();
            m.insert(k.into(), text.clone());
            if logprobs {
                m.insert("logprobs".into(), json!([]));
            }
            self.push(ty, m);
        }
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) fn payloads(body: &Value) -> Result<Vec<Payload>, String> {
    let output = match body.get("output") {
        Some(Value::Array(o)) => o,
        None | Some(Value::Null) if body.get("error").is_some_and(|e| !e.is_null()) => {
            return Ok(vec![Payload::Json(
                Some("error"),
                json!({"type": "error", "error": body["error"]}),
            )])
        }
        Some(_) => return Err("`output` is not an array".into()),
        None => return Err("a response needs an `output` array".into()),
    };
    let mut ev = Events(Vec::new());
    let mut skeleton = body.as_object().cloned().unwrap_or_default();
    skeleton.insert("status".into(), "in_progress".into());
    skeleton.insert("output".into(), json!([]));
    skeleton.remove("usage");
    ev.push(
        "response.created",
        obj(json!({"response": skeleton.clone()})),
    );
    ev.push("response.in_progress", obj(json!({"response": skeleton})));
    for (oi, item) in output.iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(format!("`output[{oi}]` is not an object"));
        };
        let id = item.get("id").cloned().unwrap_or(Value::Null);
        let ty = item.get("type").and_then(Value::as_str).unwrap_or("");
        let mut added = item.clone();
        added.insert("status".into(), "in_progress".into());
        match ty {
            "message" => {
                added.insert("content".into(), json!([]));
            }
            "reasoning" => {
                added.insert("summary".into(), json!([]));
            }
            "function_call" => {
                added.insert("arguments".into(), "".into());
            }
            _ => {}
        }
        ev.push(
            "response.output_item.added",
            obj(json!({"output_index": oi, "item": added})),
        );
        let at = |extra: Value| {
            let mut m = obj(json!({"item_id": id, "output_index": oi}));
            m.append(&mut obj(extra));
            m
        };
        match ty {
            "message" => {
                let parts = item.get("content").and_then(Value::as_array);
                for (ci, part) in parts.into_iter().flatten().enumerate() {
                    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                    let (delta_ty, done_ty, key, empty) = match kind {
                        "output_text" => (
                            "response.output_text.delta",
                            "response.output_text.done",
                            "text",
                            json!({"type": "output_text", "text": "", "annotations": []}),
                        ),
                        "refusal" => (
                            "response.refusal.delta",
                            "response.refusal.done",
                            "refusal",
                            json!({"type": "refusal", "refusal": ""}),
                        ),
                        _ => continue,
                    };
                    let text = part.get(key).cloned().unwrap_or_else(|| "".into());
                    ev.push(
                        "response.content_part.added",
                        at(json!({"content_index": ci, "part": empty})),
                    );
                    let base = at(json!({"content_index": ci}));
                    ev.text([delta_ty, done_ty], base, key, &text, kind == "output_text");
                    ev.push(
                        "response.content_part.done",
                        at(json!({"content_index": ci, "part": part})),
                    );
                }
            }
            "reasoning" => {
                let summary = item.get("summary").and_then(Value::as_array);
                for (si, part) in summary.into_iter().flatten().enumerate() {
                    let text = part.get("text").cloned().unwrap_or_else(|| "".into());
                    ev.push(
                        "response.reasoning_summary_part.added",
                        at(json!({"summary_index": si, "part": {"type": "summary_text", "text": ""}})),
                    );
                    let base = at(json!({"summary_index": si}));
                    ev.text(SUMMARY_TEXT, base, "text", &text, false);
                    ev.push(
                        "response.reasoning_summary_part.done",
                        at(json!({"summary_index": si, "part": part})),
                    );
                }
                let content = item.get("content").and_then(Value::as_array);
                for (ci, part) in content.into_iter().flatten().enumerate() {
                    if part["type"] == "reasoning_text" {
                        let text = part.get("text").cloned().unwrap_or_else(|| "".into());
                        let base = at(json!({"content_index": ci}));
                        ev.text(REASONING_TEXT, base, "text", &text, false);
                    }
                }
            }
            "function_call" => {
                let args = item.get("arguments").cloned().unwrap_or_else(|| "".into());
                ev.text(ARGUMENTS, at(json!({})), "arguments", &args, false);
            }
            _ => {}
        }
        ev.push(
            "response.output_item.done",
            obj(json!({"output_index": oi, "item": item})),
        );
    }
    let terminal = match body.get("status").and_then(Value::as_str) {
        Some("incomplete") => "response.incomplete",
        Some("failed") | Some("cancelled") => "response.failed",
        _ if body.get("error").is_some_and(|e| !e.is_null()) => "response.failed",
        _ => "response.completed",
    };
    ev.push(terminal, obj(json!({"response": body})));
    Ok(ev.0)
}

/// Drop the terminal event (what a cut stream lacks).
pub(super) fn strip_terminal(payloads: &mut Vec<Payload>) {
    if payloads.len() > 2 {
        payloads.pop();
    }
}

/// The output item a part belongs to: the reasoning item id kept in metadata, or the id.
fn item_id(id: &str, meta: &Option<Value>) -> String {
    meta.as_ref()
        .and_then(|m| m.get("item_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string())
}

pub(super) fn assemble(reply: &Reply, model: &str) -> Value {
    let mut output: Vec<Value> = Vec::new();
    // Parts of one item (message content, reasoning summaries) join the item already open.
    let open = |output: &mut Vec<Value>, id: &str, fresh: Value| -> usize {
        match output.iter().rposition(|i| i["id"] == id) {
            Some(p) if p + 1 == output.len() => p,
            _ => {
                output.push(fresh);
                output.len() - 1
            }
        }
    };
    for part in &reply.parts {
        match part {
            ReplyPart::Text { id, text } | ReplyPart::Refusal { id, text } => {
                let p = open(
                    &mut output,
                    id,
                    json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": []}),
                );
                let content = match part {
                    ReplyPart::Text { .. } => {
                        json!({"type": "output_text", "text": text, "annotations": []})
                    }
                    _ => json!({"type": "refusal", "refusal": text}),
                };
                if let Some(c) = output[p]["content"].as_array_mut() {
                    c.push(content);
                }
            }
            ReplyPart::Reasoning {
                id,
                text,
                start,
                end,
            } => {
                let item = item_id(id, start);
                let p = open(
                    &mut output,
                    &item,
                    json!({"type": "reasoning", "id": item, "summary": []}),
                );
                for meta in [start, end].into_iter().flatten() {
                    if let Some(enc) = meta.get("encrypted_content") {
                        output[p]["encrypted_content"] = enc.clone();
                    }
                }
                if !text.is_empty() {
                    if let Some(s) = output[p]["summary"].as_array_mut() {
                        s.push(json!({"type": "summary_text", "text": text}));
                    }
                }
            }
            ReplyPart::Call {
                id,
                tool,
                args,
                provider_executed: false,
                metadata,
                ..
            } => output.push(json!({
                "type": "function_call",
                "id": item_id(&format!("fc_{id}"), metadata),
                "call_id": id,
                "name": tool,
                "arguments": args,
                "status": "completed",
            })),
            ReplyPart::Call {
                id, tool, input, ..
            } => {
                let mut item = obj(json!({"type": format!("{tool}_call"), "id": id}));
                item.append(&mut obj(input.clone()));
                output.push(Value::Object(item));
            }
            ReplyPart::Result { id, output: o, .. } => {
                if let Some(item) = output
                    .iter_mut()
                    .rfind(|i| i["id"] == id.as_str())
                    .and_then(Value::as_object_mut)
                {
                    item.append(&mut obj(o.clone()));
                }
            }
        }
    }
    let f = reply.finish_or_default();
    let raw = f.raw.as_deref();
    let (status, incomplete) = match (f.reason, raw) {
        (_, Some(r @ ("max_output_tokens" | "content_filter"))) => {
            ("incomplete", json!({"reason": r}))
        }
        (FinishReason::Length, _) => ("incomplete", json!({"reason": "max_output_tokens"})),
        (FinishReason::ContentFilter, _) => ("incomplete", json!({"reason": "content_filter"})),
        (_, Some("incomplete")) => ("incomplete", Value::Null),
        _ => ("completed", Value::Null),
    };
    json!({
        "id": "resp_tapeloop",
        "object": "response",
        "created_at": 0,
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage(&f.usage),
    })
}

/// Responses usage: `input_tokens` includes cached tokens, `output_tokens` reasoning.
fn usage(u: &Usage) -> Value {
    let input = u.input + u.cache_read + u.cache_write;
    let output = u.output + u.reasoning;
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": u.cache_read, "cache_write_tokens": u.cache_write},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": input + output,
    })
}
