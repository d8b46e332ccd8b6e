//! OpenAI Responses API (`/v1/responses`) and its compatible implementations (OpenRouter,
//! DeepSeek, LM Studio).
//!
//! The stream is a sequence of typed events (`response.created` → output items →
//! one terminal `response.completed` / `response.incomplete` / `response.failed`). The event
//! type is read from `data.type`, never from the SSE `event:` name, because OpenRouter sends
//! none. Output items become blocks keyed by their item id: messages → text, reasoning items →
//! reasoning (summary or raw `reasoning_text`, with the item id and `encrypted_content` in
//! metadata so they round-trip), `function_call` → tool input/call, server tools
//! (`web_search_call`, ...) → provider-executed tool call + result.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{cut_off_error, protocol_error};
use super::openai_chat::{
    classify, lenient_u64, parse_tool_input, tool_input_to_arguments, ErrorFields,
};
use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::{EndOutcome, FinishReason, ProviderError, StreamEvent, Usage};
use crate::http::Headers;

// ---------------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------------

/// Every event, flattened: each type uses a few of these fields.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default)]
    summary_index: Option<u64>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
    /// Boxed, like `response`, `error` and `code`: these come once per item or per stream,
    /// and keeping them out of line makes `Event` (moved several times per parse, for every
    /// delta) a fraction of its size.
    #[serde(default, borrow)]
    item: Option<Box<Item<'a>>>,
    #[serde(default, borrow)]
    response: Option<Box<ResponseObj<'a>>>,
    /// `type:"error"` events: `{"error":{...}}`, or (older) the fields at top level.
    #[serde(default)]
    error: Option<Box<Value>>,
    #[serde(default)]
    code: Option<Box<Value>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    call_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    encrypted_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponseObj<'a> {
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<ResponsesUsage>,
    #[serde(default, borrow)]
    incomplete_details: Option<IncompleteDetails<'a>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, borrow)]
    output: Option<Vec<OutputKind<'a>>>,
}

#[derive(Deserialize)]
struct IncompleteDetails<'a> {
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

/// Only the type of a terminal event's output item matters (function call or not); serde skips
/// the rest of the item without building it.
#[derive(Deserialize)]
struct OutputKind<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct ResponsesUsage {
    #[serde(default, deserialize_with = "lenient_u64")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct InputDetails {
    #[serde(default, deserialize_with = "lenient_u64")]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct OutputDetails {
    #[serde(default, deserialize_with = "lenient_u64")]
    reasoning_tokens: Option<u64>,
}

impl ResponsesUsage {
    /// `input_tokens` includes cached tokens and `output_tokens` includes reasoning.
    fn normalize(&self) -> Usage {
        let cache_read = self
            .input_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        let reasoning = self
            .output_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        Usage {
            input: self.input_tokens.unwrap_or(0).saturating_sub(cache_read),
            output: self.output_tokens.unwrap_or(0).saturating_sub(reasoning),
            reasoning,
            cache_read,
            cache_write: 0,
        }
    }
}

/// For server-tool items only: the whole item, to report its input and result verbatim.
#[derive(Deserialize)]
struct WholeItem {
    item: Value,
}

/// Item types the provider executes itself; they become provider-executed tool calls.
fn server_tool_name(kind: &str) -> Option<&str> {
    match kind {
        "web_search_call"
        | "file_search_call"
        | "code_interpreter_call"
        | "image_generation_call"
        | "mcp_call" => kind.strip_suffix("_call"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Stream decoder
// ---------------------------------------------------------------------------------------------

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
        out.push(StreamEvent::ToolInputEnd {
            id: call.call_id.clone(),
        });
        out.push(StreamEvent::ToolCall {
            input: parse_tool_input(&call.args),
            id: call.call_id,
            tool: call.name,
            provider_executed: false,
            metadata: Some(json!({ "item_id": call.item_id })),
        });
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
                let call_id = item
                    .call_id
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(item_id)
                    .to_owned();
                let name = item.name.as_deref().unwrap_or("").to_owned();
                out.push(StreamEvent::ToolInputStart {
                    id: call_id.clone(),
                    tool: name.clone(),
                    provider_executed: false,
                });
                self.calls.push(Call {
                    item_id: item_id.to_owned(),
                    call_id,
                    name,
                    args: item.arguments.as_deref().unwrap_or("").to_owned(),
                    streamed: false,
                });
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
                    None => {
                        // Never announced (a resumed stream): start it now.
                        let call_id = item
                            .call_id
                            .as_deref()
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
                            args: String::new(),
                            streamed: false,
                        }
                    }
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
                out.push(StreamEvent::ToolCall {
                    id: item_id.to_owned(),
                    tool: tool.clone(),
                    input,
                    provider_executed: true,
                    metadata: None,
                });
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
        match ev.kind.as_ref() {
            "response.output_text.delta" => {
                let (Some(item), Some(delta)) = (ev.item_id.as_deref(), ev.delta.as_deref()) else {
                    return;
                };
                if delta.is_empty() {
                    return;
                }
                let id = self.ensure_block(BlockKind::Text, item, None, out);
                out.push(StreamEvent::TextDelta {
                    id,
                    text: delta.to_owned(),
                });
            }
            "response.output_text.done" => {
                if let Some(item) = ev.item_id.as_deref() {
                    self.close_block(BlockKind::Text, item, None, out);
                }
            }
            "response.refusal.delta" => {
                let (Some(item), Some(delta)) = (ev.item_id.as_deref(), ev.delta.as_deref()) else {
                    return;
                };
                if !delta.is_empty() {
                    out.push(StreamEvent::RefusalDelta {
                        id: item.to_owned(),
                        text: delta.to_owned(),
                    });
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
                let (Some(item), Some(delta)) = (ev.item_id.as_deref(), ev.delta.as_deref()) else {
                    return;
                };
                if delta.is_empty() {
                    return;
                }
                let id = self.ensure_block(BlockKind::Reasoning, item, None, out);
                out.push(StreamEvent::ReasoningDelta {
                    id,
                    text: delta.to_owned(),
                });
            }
            "response.function_call_arguments.delta" => {
                let (Some(item), Some(delta)) = (ev.item_id.as_deref(), ev.delta.as_deref()) else {
                    return;
                };
                if let Some(call) = self.calls.iter_mut().find(|c| c.item_id == item) {
                    if !delta.is_empty() {
                        call.args.push_str(delta);
                        call.streamed = true;
                        out.push(StreamEvent::ToolInputDelta {
                            id: call.call_id.clone(),
                            delta: delta.to_owned(),
                        });
                    }
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

impl super::PayloadDecoder for Decoder {
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

/// Classify a non-2xx Responses-API response (same error body as chat completions).
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    super::openai_chat::classify_error(status, headers, body)
}

// ---------------------------------------------------------------------------------------------
// Request body
// ---------------------------------------------------------------------------------------------

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
                        AssistantPart::ToolCall {
                            id,
                            tool,
                            input: args,
                            provider_executed,
                            ..
                        } => {
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
            Message::Tool { results } => {
                for r in results {
                    input.push(json!({
                        "type": "function_call_output",
                        "call_id": r.call_id,
                        "output": r.output,
                    }));
                }
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), opts.model.clone().into());
    if let Some(system) = conv.system.as_deref() {
        body.insert("instructions".into(), system.into());
    }
    body.insert("input".into(), Value::Array(input));
    if !conv.tools.is_empty() {
        let tools = conv
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.schema,
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
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
