//! The Responses API stream decoder: typed `response.*` events to normalized events.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::*;
use crate::event::{EndOutcome, FinishReason, ProviderError, StreamEvent, ToolCall, Usage};
use crate::provider::error::{cut_off_error, protocol_error};
use crate::provider::openai_chat::{classify, end_function_call, ErrorFields};

#[derive(PartialEq, Eq, Clone, Copy)]
enum BlockKind {
    Text,
    Reasoning,
}

/// An open text or reasoning block.
struct Block {
    kind: BlockKind,
    /// The output item the block belongs to.
    item_id: String,
    /// The event id (`item_id`, or `item_id:summary_index` for later summary parts).
    id: String,
}

/// A function call item in progress.
struct Call {
    item_id: String,
    call_id: String,
    name: String,
    args: String,
    /// Argument text has been emitted as `tool-input-delta` (LM Studio sends only `.done`).
    streamed: bool,
}

/// The terminal event's outcome, reported by `end()`.
struct Terminal {
    reason: FinishReason,
    raw: Option<String>,
    usage: Usage,
}

/// Decoder state for one Responses-API stream.
pub struct Decoder {
    blocks: Vec<Block>,
    calls: Vec<Call>,
    /// Server-tool items started (`item id`, tool name).
    server_calls: Vec<(String, String)>,
    has_function_call: bool,
    terminal: Option<Terminal>,
    /// An `Error` was emitted, or the response was finished: everything after is ignored.
    failed: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            blocks: Vec::new(),
            calls: Vec::new(),
            server_calls: Vec::new(),
            has_function_call: false,
            terminal: None,
            failed: false,
        }
    }

    fn block_id(&self, kind: BlockKind, item_id: &str) -> Option<&str> {
        self.blocks
            .iter()
            .find(|b| b.kind == kind && b.item_id == item_id)
            .map(|b| b.id.as_str())
    }

    /// The id of the open `kind` block of `item_id`, opening it if needed.
    fn ensure_block(
        &mut self,
        kind: BlockKind,
        item_id: &str,
        metadata: Option<Value>,
        out: &mut Vec<StreamEvent>,
    ) -> String {
        if let Some(id) = self.block_id(kind, item_id) {
            return id.to_owned();
        }
        let id = item_id.to_owned();
        out.push(match kind {
            BlockKind::Text => StreamEvent::TextStart { id: id.clone() },
            BlockKind::Reasoning => StreamEvent::ReasoningStart {
                id: id.clone(),
                metadata: Some(metadata.unwrap_or_else(|| json!({ "item_id": item_id }))),
            },
        });
        self.blocks.push(Block {
            kind,
            item_id: item_id.to_owned(),
            id: id.clone(),
        });
        id
    }

    /// Close the `kind` block of `item_id`, if open.
    fn close_block(
        &mut self,
        kind: BlockKind,
        item_id: &str,
        metadata: Option<Value>,
        out: &mut Vec<StreamEvent>,
    ) {
        if let Some(pos) = self
            .blocks
            .iter()
            .position(|b| b.kind == kind && b.item_id == item_id)
        {
            let b = self.blocks.remove(pos);
            out.push(match kind {
                BlockKind::Text => StreamEvent::TextEnd { id: b.id },
                BlockKind::Reasoning => StreamEvent::ReasoningEnd {
                    id: b.id,
                    metadata: Some(metadata.unwrap_or_else(|| json!({ "item_id": b.item_id }))),
                },
            });
        }
    }

    fn close_all_blocks(&mut self, out: &mut Vec<StreamEvent>) {
        for b in self.blocks.drain(..) {
            out.push(match b.kind {
                BlockKind::Text => StreamEvent::TextEnd { id: b.id },
                BlockKind::Reasoning => StreamEvent::ReasoningEnd {
                    id: b.id,
                    metadata: Some(json!({ "item_id": b.item_id })),
                },
            });
        }
    }

    fn emit_call(&mut self, call: Call, out: &mut Vec<StreamEvent>) {
        if !call.streamed && !call.args.is_empty() {
            out.push(StreamEvent::ToolInputDelta {
                id: call.call_id.clone(),
                delta: call.args.clone(),
            });
        }
        let metadata = Some(json!({ "item_id": call.item_id }));
        end_function_call(call.call_id, call.name, &call.args, metadata, out);
        self.has_function_call = true;
    }

    fn fail(&mut self, err: ProviderError, out: &mut Vec<StreamEvent>) {
        self.close_all_blocks(out);
        self.calls.clear();
        self.server_calls.clear();
        self.failed = true;
        out.push(StreamEvent::Error(err));
    }

    fn item_added(&mut self, item: Item<'_>, out: &mut Vec<StreamEvent>) {
        let item_id = item.id.as_deref().unwrap_or("");
        match item.kind.as_ref() {
            "reasoning" => {
                let meta = reasoning_metadata(item_id, item.encrypted_content.as_deref());
                self.ensure_block(BlockKind::Reasoning, item_id, Some(meta), out);
            }
            "function_call" => {
                let args = item.arguments.as_deref().unwrap_or("").to_owned();
                let call = start_call(&item, item_id, args, out);
                self.calls.push(call);
            }
            kind => {
                if let Some(tool) = server_tool_name(kind) {
                    out.push(StreamEvent::ToolInputStart {
                        id: item_id.to_owned(),
                        tool: tool.to_owned(),
                        provider_executed: true,
                    });
                    self.server_calls
                        .push((item_id.to_owned(), tool.to_owned()));
                }
            }
        }
    }

    fn item_done(&mut self, item: Item<'_>, data: &str, out: &mut Vec<StreamEvent>) {
        let item_id = item.id.as_deref().unwrap_or("");
        match item.kind.as_ref() {
            "message" => {
                self.close_block(BlockKind::Text, item_id, None, out);
            }
            "reasoning" => {
                let meta = reasoning_metadata(item_id, item.encrypted_content.as_deref());
                // A reasoning item with neither summary nor text still opens and closes a
                // block: its encrypted content must reach the next request.
                self.ensure_block(BlockKind::Reasoning, item_id, Some(meta.clone()), out);
                self.close_block(BlockKind::Reasoning, item_id, Some(meta), out);
            }
            "function_call" => {
                let mut call = match self.calls.iter().position(|c| c.item_id == item_id) {
                    Some(p) => self.calls.remove(p),
                    // Never announced (a resumed stream): start it now.
                    None => start_call(&item, item_id, String::new(), out),
                };
                if !call.streamed {
                    if let Some(args) = item.arguments.as_deref() {
                        call.args = args.to_owned();
                    }
                }
                self.emit_call(call, out);
            }
            kind => {
                let Some(tool) = server_tool_name(kind) else {
                    return;
                };
                let tool = tool.to_owned();
                if let Some(p) = self.server_calls.iter().position(|(id, _)| id == item_id) {
                    self.server_calls.remove(p);
                } else {
                    out.push(StreamEvent::ToolInputStart {
                        id: item_id.to_owned(),
                        tool: tool.clone(),
                        provider_executed: true,
                    });
                }
                let whole = serde_json::from_str::<WholeItem>(data)
                    .map(|w| w.item)
                    .unwrap_or(Value::Null);
                let (input, output) = split_server_item(whole);
                out.push(StreamEvent::ToolInputEnd {
                    id: item_id.to_owned(),
                });
                out.push(StreamEvent::ToolCall(ToolCall {
                    id: item_id.to_owned(),
                    tool: tool.clone(),
                    input,
                    provider_executed: true,
                    metadata: None,
                }));
                out.push(StreamEvent::ToolResult {
                    id: item_id.to_owned(),
                    tool,
                    output,
                    is_error: false,
                });
            }
        }
    }

    fn finish(&mut self, kind: &str, resp: Option<ResponseObj<'_>>, out: &mut Vec<StreamEvent>) {
        // Items that never got their `output_item.done`: close and emit what is assembled.
        self.close_all_blocks(out);
        for call in std::mem::take(&mut self.calls) {
            self.emit_call(call, out);
        }
        // A server tool that never reported its item: close its input; with no call or result
        // the processor treats it as unfinished.
        for (id, _) in self.server_calls.drain(..) {
            out.push(StreamEvent::ToolInputEnd { id });
        }
        let (usage, reason_raw, status, output_has_call) = match resp {
            Some(r) => (
                r.usage.map(|u| u.normalize()).unwrap_or_default(),
                r.incomplete_details
                    .and_then(|d| d.reason)
                    .map(Cow::into_owned),
                r.status.map(Cow::into_owned),
                r.output
                    .is_some_and(|o| o.iter().any(|i| i.kind == "function_call")),
            ),
            None => (Usage::default(), None, None, false),
        };
        let has_call = self.has_function_call || output_has_call;
        let reason = match reason_raw.as_deref() {
            Some("max_output_tokens") => FinishReason::Length,
            Some("content_filter") => FinishReason::ContentFilter,
            Some(_) if has_call => FinishReason::ToolCalls,
            Some(_) => FinishReason::Other,
            None if kind == "response.incomplete" => FinishReason::Other,
            None if has_call => FinishReason::ToolCalls,
            None => FinishReason::Stop,
        };
        self.terminal = Some(Terminal {
            reason,
            raw: reason_raw.or(status),
            usage,
        });
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let ev: Event<'_> = match serde_json::from_str(data) {
            Ok(e) => e,
            Err(e) => return self.fail(protocol_error(&e, data, "…"), out),
        };
        // A delta event's item and text; an empty delta changes nothing.
        let item_delta = (ev.item_id.as_deref())
            .zip(ev.delta.as_deref())
            .filter(|(_, d)| !d.is_empty());
        match ev.kind.as_ref() {
            "response.output_text.delta" => {
                if let Some((item, delta)) = item_delta {
                    let id = self.ensure_block(BlockKind::Text, item, None, out);
                    let text = delta.to_owned();
                    out.push(StreamEvent::TextDelta { id, text });
                }
            }
            "response.output_text.done" => {
                if let Some(item) = ev.item_id.as_deref() {
                    self.close_block(BlockKind::Text, item, None, out);
                }
            }
            "response.refusal.delta" => {
                if let Some((item, delta)) = item_delta {
                    let (id, text) = (item.to_owned(), delta.to_owned());
                    out.push(StreamEvent::RefusalDelta { id, text });
                }
            }
            "response.reasoning_summary_part.added" => {
                let Some(item) = ev.item_id.as_deref() else {
                    return;
                };
                let idx = ev.summary_index.unwrap_or(0);
                // Each summary part after the first is its own reasoning block.
                let want = summary_block_id(item, idx);
                if self.block_id(BlockKind::Reasoning, item) != Some(want.as_ref()) {
                    self.close_block(BlockKind::Reasoning, item, None, out);
                    let id = want.into_owned();
                    out.push(StreamEvent::ReasoningStart {
                        id: id.clone(),
                        metadata: Some(json!({ "item_id": item })),
                    });
                    self.blocks.push(Block {
                        kind: BlockKind::Reasoning,
                        item_id: item.to_owned(),
                        id,
                    });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some((item, delta)) = item_delta {
                    let id = self.ensure_block(BlockKind::Reasoning, item, None, out);
                    let text = delta.to_owned();
                    out.push(StreamEvent::ReasoningDelta { id, text });
                }
            }
            "response.function_call_arguments.delta" => {
                let Some((item, delta)) = item_delta else {
                    return;
                };
                if let Some(call) = self.calls.iter_mut().find(|c| c.item_id == item) {
                    call.args.push_str(delta);
                    call.streamed = true;
                    out.push(StreamEvent::ToolInputDelta {
                        id: call.call_id.clone(),
                        delta: delta.to_owned(),
                    });
                }
            }
            "response.function_call_arguments.done" => {
                let (Some(item), Some(args)) = (ev.item_id.as_deref(), ev.arguments.as_deref())
                else {
                    return;
                };
                if let Some(call) = self.calls.iter_mut().find(|c| c.item_id == item) {
                    if !call.streamed {
                        // LM Studio: the arguments arrive only here.
                        call.args = args.to_owned();
                    }
                }
            }
            "response.output_item.added" => {
                if let Some(item) = ev.item {
                    self.item_added(*item, out);
                }
            }
            "response.output_item.done" => {
                if let Some(item) = ev.item {
                    self.item_done(*item, data, out);
                }
            }
            kind @ ("response.completed" | "response.incomplete") => {
                let kind = kind.to_owned();
                self.finish(&kind, ev.response.map(|r| *r), out);
            }
            "response.failed" => {
                let err = ev
                    .response
                    .and_then(|r| r.error)
                    .filter(|e| !e.is_null())
                    .map(|e| ErrorFields::from_value(&e))
                    .unwrap_or_else(|| ErrorFields {
                        message: Some("response failed".to_owned()),
                        ..Default::default()
                    });
                self.fail(classify(None, None, err, false), out);
            }
            "error" => {
                let fields = match ev.error.as_ref().filter(|e| !e.is_null()) {
                    Some(e) => ErrorFields::from_value(e),
                    None => {
                        let mut obj = Map::new();
                        if let Some(c) = ev.code {
                            obj.insert("code".into(), *c);
                        }
                        if let Some(m) = ev.message {
                            obj.insert("message".into(), Value::String(m.into_owned()));
                        }
                        ErrorFields::from_value(&Value::Object(obj))
                    }
                };
                self.fail(classify(None, None, fields, false), out);
            }
            // Lifecycle (`created`, `in_progress`, `queued`), part boundaries, annotations and
            // server-tool progress carry nothing the loop needs.
            _ => {}
        }
    }
}

/// Block id of summary part `idx` of a reasoning item: the item id for the first part, so a
/// reasoning item without summary parts and its first part share one block.
fn summary_block_id(item_id: &str, idx: u64) -> Cow<'_, str> {
    if idx == 0 {
        Cow::Borrowed(item_id)
    } else {
        Cow::Owned(format!("{item_id}:{idx}"))
    }
}

/// Announce a function call item (`ToolInputStart`) and return it to hold until it is done;
/// `args` are the arguments the item already carries.
fn start_call(item: &Item<'_>, item_id: &str, args: String, out: &mut Vec<StreamEvent>) -> Call {
    let call_id = (item.call_id.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or(item_id)
        .to_owned();
    let name = item.name.as_deref().unwrap_or("").to_owned();
    out.push(StreamEvent::ToolInputStart {
        id: call_id.clone(),
        tool: name.clone(),
        provider_executed: false,
    });
    Call {
        item_id: item_id.to_owned(),
        call_id,
        name,
        args,
        streamed: false,
    }
}

fn reasoning_metadata(item_id: &str, encrypted: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("item_id".into(), item_id.into());
    if let Some(enc) = encrypted {
        m.insert("encrypted_content".into(), enc.into());
    }
    Value::Object(m)
}

/// Split a server-tool item into what was asked (`action`, `queries`, `code`, ...) and what
/// came back (`status`, `results`, `outputs`, ...).
fn split_server_item(item: Value) -> (Value, Value) {
    let Value::Object(obj) = item else {
        return (json!({}), Value::Null);
    };
    let mut input = Map::new();
    let mut output = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "id" | "type" => {}
            "status" | "results" | "outputs" | "output" | "result" | "error" => {
                output.insert(k, v);
            }
            _ => {
                input.insert(k, v);
            }
        }
    }
    (Value::Object(input), Value::Object(output))
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::provider::PayloadDecoder for Decoder {
    fn payload(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.failed || self.terminal.is_some() {
            return;
        }
        let trimmed = data.trim();
        // OpenRouter ends its Responses stream with `[DONE]`; OpenAI's ends with the terminal
        // event alone.
        if trimmed.is_empty() || trimmed == "[DONE]" {
            return;
        }
        self.event(data, out);
    }

    /// `finish-step` is emitted once the body has ended cleanly after the terminal event (the
    /// AI SDK's `flush`); a dropped connection fails the request instead.
    fn end(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>) {
        if self.failed {
            return;
        }
        match self.terminal.take() {
            Some(t) if outcome == EndOutcome::Complete => {
                out.push(StreamEvent::FinishStep {
                    finish_reason: t.reason,
                    raw_finish_reason: t.raw,
                    usage: t.usage,
                });
                self.failed = true;
            }
            _ => self.fail(cut_off_error(outcome, "response.completed"), out),
        }
    }
}
