//! Anthropic Messages API: stream decoding, HTTP error classification, request bodies.
//!
//! Stream shape (see `reference/provider-stream-notes.md` §2): `message_start` →
//! (`content_block_start` → `content_block_delta`* → `content_block_stop`)* → `message_delta` →
//! `message_stop`, with `ping` anywhere. Payloads are routed on `data.type`, never on the SSE
//! event name, so vercel's NDJSON fixtures (no `event:` lines) decode the same way.
//!
//! Mapping choices:
//! - Block ids are the content-block `index`; tool calls use the provider's `toolu_…` id.
//! - `thinking` → reasoning; its `signature_delta` rides in `reasoning-end` metadata
//!   `{"signature":…}`. `redacted_thinking` → an empty reasoning block whose start and end
//!   metadata carry `{"redactedData":…}`. `compaction` → a reasoning block with metadata
//!   `{"type":"compaction"}` (its summary must be sent back, and it is not user-visible text).
//! - `server_tool_use` (and `mcp_tool_use`) → `tool-call` with `provider_executed`; the
//!   `*_tool_result` blocks → `tool-result` named after the server tool that produced them.
//! - Usage: `message_start` usage, then every `message_delta.usage` field overwrites (the
//!   numbers are cumulative, not increments). `input_tokens` already excludes cache reads and
//!   writes. With `output_tokens_details.thinking_tokens`, reasoning is split off `output`.
//!   Top-level usage is what the AI SDK (and so opencode) reports; compaction `iterations[]`
//!   are not summed.
//! - `pause_turn` maps to `other`: the server-tool loop paused and the client must re-send the
//!   conversation to continue; it is neither a normal stop nor a client tool round.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::{
    EndOutcome, ErrorClass, FinishReason, ProviderError, StreamEvent, ToolCall, Usage,
};
use crate::http::{self, Headers};

use super::error::{body_text_message, error_json, network_error, protocol_error};

/// `max_tokens` is required by the Messages API; used when the request options set none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

// ---------------------------------------------------------------------------------------------
// Wire types (only the fields the adapter reads; everything else is skipped by serde).

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum EventType {
    MessageStart,
    ContentBlockStart,
    ContentBlockDelta,
    ContentBlockStop,
    MessageDelta,
    MessageStop,
    Ping,
    Error,
    #[serde(other)]
    Other,
}

/// `message`, `content_block`, `usage` and `error` are boxed: they come once per message or
/// block, and keeping them out of line makes `Payload` (moved several times per parse, for
/// every delta) a fraction of its size.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    ty: Option<EventType>,
    index: Option<u64>,
    message: Option<Box<MessageHead>>,
    #[serde(borrow)]
    content_block: Option<Box<ContentBlock<'a>>>,
    delta: Option<Delta>,
    usage: Option<Box<RawUsage>>,
    error: Option<Box<ErrorBody>>,
}

#[derive(Deserialize)]
struct MessageHead {
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct ContentBlock<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    id: Option<String>,
    name: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    data: Option<String>,
    tool_use_id: Option<String>,
    content: Option<Value>,
    input: Option<Value>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum DeltaType {
    TextDelta,
    ThinkingDelta,
    SignatureDelta,
    InputJsonDelta,
    CitationsDelta,
    CompactionDelta,
    #[serde(other)]
    Other,
}

/// Both `content_block_delta.delta` (typed) and `message_delta.delta` (untyped).
#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type")]
    ty: Option<DeltaType>,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    partial_json: Option<String>,
    content: Option<String>,
    stop_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct OutputDetails {
    thinking_tokens: Option<u64>,
}

/// `{"type":…,"message":…}` inside an error body or in-stream error event.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "type")]
    ty: Option<String>,
    message: Option<String>,
}

/// A whole HTTP error body: `{"type":"error","error":{…},"request_id":…}`.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorBody>,
}

// ---------------------------------------------------------------------------------------------
// Decoder

/// Per-field "last value wins" accumulation of Anthropic usage.
#[derive(Debug, Default, Clone, Copy)]
struct UsageAcc {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    thinking: Option<u64>,
}

impl UsageAcc {
    /// A count present in `u` replaces the one held; an absent one keeps it.
    fn merge(&mut self, u: &RawUsage) {
        self.input = u.input_tokens.or(self.input);
        self.output = u.output_tokens.or(self.output);
        self.cache_read = u.cache_read_input_tokens.or(self.cache_read);
        self.cache_write = u.cache_creation_input_tokens.or(self.cache_write);
        self.thinking = u
            .output_tokens_details
            .as_ref()
            .and_then(|d| d.thinking_tokens)
            .or(self.thinking);
    }

    fn usage(&self) -> Usage {
        let reasoning = self.thinking.unwrap_or(0);
        Usage {
            input: self.input.unwrap_or(0),
            output: self.output.unwrap_or(0).saturating_sub(reasoning),
            reasoning,
            cache_read: self.cache_read.unwrap_or(0),
            cache_write: self.cache_write.unwrap_or(0),
        }
    }
}

/// What an open content block is.
#[derive(Debug)]
enum BlockKind {
    Text,
    Thinking {
        signature: Option<String>,
    },
    Redacted {
        data: String,
    },
    Compaction,
    Tool {
        call_id: String,
        name: String,
        json: String,
        /// `input` of `content_block_start`, used when no delta follows.
        start_input: Option<Value>,
        provider_executed: bool,
    },
}

#[derive(Debug)]
struct Block {
    index: u64,
    id: String,
    kind: BlockKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before `message_delta`.
    Streaming,
    /// `message_delta` seen, waiting for `message_stop`.
    Delta,
    /// `finish-step` or `error` emitted: everything after is ignored.
    Done,
}

/// Decodes one Anthropic Messages stream.
pub struct Decoder {
    blocks: Vec<Block>,
    /// `(id, name)` of server tools called in this response, to name their results.
    server_tools: Vec<(String, String)>,
    usage: UsageAcc,
    stop_reason: Option<String>,
    phase: Phase,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            blocks: Vec::new(),
            server_tools: Vec::new(),
            usage: UsageAcc::default(),
            stop_reason: None,
            phase: Phase::Streaming,
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut Vec<StreamEvent>) {
        self.phase = Phase::Done;
        self.blocks.clear();
        out.push(StreamEvent::Error(err));
    }

    fn block_start(&mut self, index: u64, cb: ContentBlock<'_>, out: &mut Vec<StreamEvent>) {
        let id = index.to_string();
        let kind = match cb.ty.as_ref() {
            "text" => {
                out.push(StreamEvent::TextStart { id: id.clone() });
                if let Some(text) = cb.text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta {
                        id: id.clone(),
                        text,
                    });
                }
                BlockKind::Text
            }
            "thinking" => {
                out.push(StreamEvent::ReasoningStart {
                    id: id.clone(),
                    metadata: None,
                });
                if let Some(text) = cb.thinking.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ReasoningDelta {
                        id: id.clone(),
                        text,
                    });
                }
                BlockKind::Thinking {
                    signature: cb.signature.filter(|s| !s.is_empty()),
                }
            }
            "redacted_thinking" => {
                let data = cb.data.unwrap_or_default();
                out.push(StreamEvent::ReasoningStart {
                    id: id.clone(),
                    metadata: Some(json!({ "redactedData": data })),
                });
                BlockKind::Redacted { data }
            }
            "compaction" => {
                out.push(StreamEvent::ReasoningStart {
                    id: id.clone(),
                    metadata: Some(json!({ "type": "compaction" })),
                });
                if let Some(Value::String(text)) = cb.content {
                    if !text.is_empty() {
                        out.push(StreamEvent::ReasoningDelta {
                            id: id.clone(),
                            text,
                        });
                    }
                }
                BlockKind::Compaction
            }
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                let provider_executed = cb.ty != "tool_use";
                let call_id = cb.id.unwrap_or_else(|| format!("toolu_index_{index}"));
                let name = cb.name.unwrap_or_default();
                if provider_executed {
                    self.server_tools.push((call_id.clone(), name.clone()));
                }
                out.push(StreamEvent::ToolInputStart {
                    id: call_id.clone(),
                    tool: name.clone(),
                    provider_executed,
                });
                BlockKind::Tool {
                    call_id,
                    name,
                    json: String::new(),
                    start_input: cb.input,
                    provider_executed,
                }
            }
            other => {
                // Server tool results arrive whole in the start event (no deltas).
                if let Some(tool_use_id) = cb.tool_use_id {
                    if other.ends_with("_tool_result") {
                        let output = cb.content.unwrap_or(Value::Null);
                        let is_error = output
                            .get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.ends_with("_error"));
                        let tool = self
                            .server_tools
                            .iter()
                            .find(|(cid, _)| *cid == tool_use_id)
                            .map(|(_, name)| name.clone())
                            .unwrap_or_else(|| other.trim_end_matches("_tool_result").to_string());
                        out.push(StreamEvent::ToolResult {
                            id: tool_use_id,
                            tool,
                            output,
                            is_error,
                        });
                    }
                }
                // Unknown block types are skipped (forward compatibility).
                return;
            }
        };
        // A repeated index replaces the older block (never happens in well-formed streams).
        self.blocks.retain(|b| b.index != index);
        self.blocks.push(Block { index, id, kind });
    }

    fn block_delta(&mut self, index: u64, delta: Delta, out: &mut Vec<StreamEvent>) {
        let Some(block) = self.blocks.iter_mut().find(|b| b.index == index) else {
            return; // delta for a block never started (or skipped): nothing to attach it to
        };
        match (delta.ty, &mut block.kind) {
            (Some(DeltaType::TextDelta), BlockKind::Text) => {
                if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta {
                        id: block.id.clone(),
                        text,
                    });
                }
            }
            (Some(DeltaType::ThinkingDelta), BlockKind::Thinking { .. }) => {
                if let Some(text) = delta.thinking.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ReasoningDelta {
                        id: block.id.clone(),
                        text,
                    });
                }
            }
            (Some(DeltaType::SignatureDelta), BlockKind::Thinking { signature }) => {
                if let Some(sig) = delta.signature {
                    match signature {
                        Some(s) => s.push_str(&sig),
                        None => *signature = Some(sig),
                    }
                }
            }
            (Some(DeltaType::CompactionDelta), BlockKind::Compaction) => {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ReasoningDelta {
                        id: block.id.clone(),
                        text,
                    });
                }
            }
            (Some(DeltaType::InputJsonDelta), BlockKind::Tool { call_id, json, .. }) => {
                if let Some(frag) = delta.partial_json.filter(|f| !f.is_empty()) {
                    json.push_str(&frag);
                    out.push(StreamEvent::ToolInputDelta {
                        id: call_id.clone(),
                        delta: frag,
                    });
                }
            }
            // citations_delta and anything unknown carry nothing the processor consumes.
            _ => {}
        }
    }

    fn block_stop(&mut self, index: u64, out: &mut Vec<StreamEvent>) {
        let Some(pos) = self.blocks.iter().position(|b| b.index == index) else {
            return;
        };
        let block = self.blocks.remove(pos);
        close_block(block, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        // Blocks left open at the end: text and reasoning are closed; a tool call whose
        // arguments never closed is dropped.
        for block in std::mem::take(&mut self.blocks) {
            if !matches!(block.kind, BlockKind::Tool { .. }) {
                close_block(block, out);
            }
        }
        let raw = self.stop_reason.take();
        out.push(StreamEvent::FinishStep {
            finish_reason: map_stop_reason(raw.as_deref()),
            raw_finish_reason: raw,
            usage: self.usage.usage(),
        });
        self.phase = Phase::Done;
    }
}

/// Emit the end events of a block that stopped.
fn close_block(block: Block, out: &mut Vec<StreamEvent>) {
    match block.kind {
        BlockKind::Text => out.push(StreamEvent::TextEnd { id: block.id }),
        BlockKind::Thinking { signature } => out.push(StreamEvent::ReasoningEnd {
            id: block.id,
            metadata: signature.map(|s| json!({ "signature": s })),
        }),
        BlockKind::Redacted { data } => out.push(StreamEvent::ReasoningEnd {
            id: block.id,
            metadata: Some(json!({ "redactedData": data })),
        }),
        BlockKind::Compaction => out.push(StreamEvent::ReasoningEnd {
            id: block.id,
            metadata: Some(json!({ "type": "compaction" })),
        }),
        BlockKind::Tool {
            call_id,
            name,
            json,
            start_input,
            provider_executed,
        } => {
            out.push(StreamEvent::ToolInputEnd {
                id: call_id.clone(),
            });
            let input = if json.trim().is_empty() {
                match start_input {
                    Some(v @ Value::Object(_)) => v,
                    _ => Value::Object(Map::new()),
                }
            } else {
                serde_json::from_str(&json).unwrap_or(Value::String(json))
            };
            out.push(StreamEvent::ToolCall(ToolCall {
                id: call_id,
                tool: name,
                input,
                provider_executed,
                metadata: None,
            }));
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl super::PayloadDecoder for Decoder {
    fn payload(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.phase == Phase::Done {
            return;
        }
        let p: Payload<'_> = match serde_json::from_str(data) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(protocol_error(&e, data, ""), out);
            }
        };
        let ty = match p.ty {
            Some(t) => t,
            // A bare `{"error":{…}}` (no `type`), e.g. from a proxy.
            None if p.error.is_some() || event == Some("error") => EventType::Error,
            None => EventType::Other,
        };
        match ty {
            EventType::MessageStart => {
                if let Some(u) = p.message.as_ref().and_then(|m| m.usage.as_ref()) {
                    self.usage.merge(u);
                }
            }
            EventType::ContentBlockStart => {
                if let (Some(index), Some(cb)) = (p.index, p.content_block) {
                    self.block_start(index, *cb, out);
                }
            }
            EventType::ContentBlockDelta => {
                if let (Some(index), Some(delta)) = (p.index, p.delta) {
                    self.block_delta(index, delta, out);
                }
            }
            EventType::ContentBlockStop => {
                if let Some(index) = p.index {
                    self.block_stop(index, out);
                }
            }
            EventType::MessageDelta => {
                if let Some(reason) = p.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(u) = &p.usage {
                    self.usage.merge(u);
                }
                self.phase = Phase::Delta;
            }
            EventType::MessageStop => self.finish(out),
            EventType::Error => {
                let body = p.error.map(|e| *e).unwrap_or_default();
                self.fail(stream_error(body), out);
            }
            EventType::Ping | EventType::Other => {}
        }
    }

    fn end(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>) {
        match self.phase {
            // After `message_stop` the response is complete: a reset after the terminal
            // event loses nothing, so it is not reported.
            Phase::Done => {}
            Phase::Delta if outcome == EndOutcome::Complete => self.finish(out),
            Phase::Delta | Phase::Streaming => {
                let message = if outcome == EndOutcome::Complete {
                    "stream ended before message_stop".to_string()
                } else {
                    format!("stream ended ({}) before message_stop", outcome.as_str())
                };
                self.fail(network_error(message), out);
            }
        }
    }
}

/// The AI SDK's mapping of Anthropic `stop_reason`, except `pause_turn` → `other` (see the
/// module doc) and unknown values → `other`.
fn map_stop_reason(raw: Option<&str>) -> FinishReason {
    match raw {
        Some("end_turn") | Some("stop_sequence") => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") | Some("model_context_window_exceeded") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
        None => FinishReason::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Class and default retryability of an Anthropic `error.type`.
fn class_for_type(ty: &str) -> Option<(ErrorClass, bool)> {
    Some(match ty {
        "overloaded_error" => (ErrorClass::Overloaded, true),
        "rate_limit_error" => (ErrorClass::RateLimited, true),
        "api_error" | "timeout_error" => (ErrorClass::Server, true),
        "authentication_error" | "permission_error" => (ErrorClass::Auth, false),
        "not_found_error" | "invalid_request_error" | "billing_error" => {
            (ErrorClass::InvalidRequest, false)
        }
        "request_too_large" => (ErrorClass::ContextOverflow, false),
        _ => return None,
    })
}

/// An in-stream `event: error` (arrives after HTTP 200, no status).
fn stream_error(body: ErrorBody) -> ProviderError {
    let ty = body.ty.unwrap_or_default();
    let message = body.message.unwrap_or_else(|| ty.clone());
    let (mut class, mut retryable) = class_for_type(&ty).unwrap_or((ErrorClass::Server, true));
    if http::is_context_overflow_message(&message) {
        class = ErrorClass::ContextOverflow;
        retryable = false;
    }
    ProviderError {
        code: (!ty.is_empty()).then_some(ty),
        ..super::error::stream_error(class, message, retryable)
    }
}

/// Classify a non-2xx Messages response.
///
/// The body's `error.type` decides the class, except that 429 is always rate-limited and 529
/// always overloaded; an overflow message ("prompt is too long") makes it context-overflow.
/// `x-should-retry: true|false` overrides the status-based retryability (the Anthropic SDKs
/// obey it). `retry-after` is honoured only on 429/5xx/529, because Anthropic also sends it on
/// successful responses.
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    let parsed: Option<ErrorBody> = error_json(body)
        .and_then(|v| serde_json::from_value::<ErrorEnvelope>(v).ok())
        .and_then(|e| e.error);
    let (ty, message) = match parsed {
        Some(b) => (b.ty, b.message),
        None => (None, None),
    };
    let message = message.unwrap_or_else(|| body_text_message(status, body));
    let mut class = match status {
        429 => ErrorClass::RateLimited,
        529 => ErrorClass::Overloaded,
        _ => ty
            .as_deref()
            .and_then(class_for_type)
            .map(|(c, _)| c)
            .unwrap_or_else(|| http::class_for_status(status)),
    };
    let mut retryable = http::status_is_retryable(status);
    match headers.get("x-should-retry").map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("true") => retryable = true,
        Some(v) if v.eq_ignore_ascii_case("false") => retryable = false,
        _ => {}
    }
    if class == ErrorClass::ContextOverflow || http::is_context_overflow_message(&message) {
        class = ErrorClass::ContextOverflow;
        retryable = false;
    }
    let retry_after_ms = if status == 429 || status >= 500 {
        http::retry_after_ms(headers, None)
    } else {
        None
    };
    ProviderError {
        class,
        status: Some(status),
        message,
        retryable,
        retry_after_ms,
        code: ty,
    }
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// The Messages request body for a conversation.
///
/// Reasoning parts are sent back only when their metadata lets Anthropic verify them
/// (`signature` → `thinking`, `redactedData` → `redacted_thinking`, `type: compaction` →
/// `compaction`); reasoning from other providers is dropped. Consecutive messages of the same
/// role are merged, so tool results and a following user message share one `user` turn.
pub fn request_body(conv: &Conversation, opts: &RequestOptions) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    let mut push =
        |role: &str, blocks: Vec<Value>| super::push_turn(&mut messages, role, "content", blocks);
    for msg in &conv.messages {
        match msg {
            Message::User { content } => {
                push("user", vec![json!({ "type": "text", "text": content })]);
            }
            Message::Assistant { parts } => {
                push(
                    "assistant",
                    parts.iter().filter_map(assistant_block).collect(),
                );
            }
            Message::Tool { results } => {
                let blocks = results
                    .iter()
                    .map(|r| {
                        let mut b = json!({
                            "type": "tool_result",
                            "tool_use_id": r.call_id,
                            "content": r.output,
                        });
                        if r.is_error {
                            b["is_error"] = Value::Bool(true);
                        }
                        b
                    })
                    .collect();
                push("user", blocks);
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(opts.model));
    body.insert(
        "max_tokens".into(),
        json!(opts.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    if let Some(system) = conv.system.as_deref().filter(|s| !s.is_empty()) {
        body.insert("system".into(), json!([{ "type": "text", "text": system }]));
    }
    body.insert("messages".into(), Value::Array(messages));
    let tools = super::tool_list(
        conv,
        |t| json!({"name": t.name, "description": t.description, "input_schema": t.schema}),
    );
    if let Some(tools) = tools {
        body.insert("tools".into(), tools);
    }
    body.insert("stream".into(), json!(opts.stream));
    Value::Object(body)
}

/// One assistant content block, or `None` for parts Anthropic cannot take back.
fn assistant_block(part: &AssistantPart) -> Option<Value> {
    match part {
        AssistantPart::Text { text } => {
            (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
        }
        AssistantPart::Reasoning { text, metadata } => {
            let meta = metadata.as_ref()?;
            if let Some(data) = meta.get("redactedData").and_then(Value::as_str) {
                Some(json!({ "type": "redacted_thinking", "data": data }))
            } else if meta.get("type").and_then(Value::as_str) == Some("compaction") {
                Some(json!({ "type": "compaction", "content": text }))
            } else {
                let sig = meta.get("signature").and_then(Value::as_str)?;
                Some(json!({ "type": "thinking", "thinking": text, "signature": sig }))
            }
        }
        AssistantPart::ToolCall(ToolCall {
            id,
            tool,
            input,
            provider_executed,
            ..
        }) => {
            let input = super::input_object(input);
            let ty = if *provider_executed {
                "server_tool_use"
            } else {
                "tool_use"
            };
            Some(json!({ "type": ty, "id": id, "name": tool, "input": input }))
        }
        AssistantPart::ToolResult { id, tool, output } => Some(json!({
            "type": format!("{tool}_tool_result"),
            "tool_use_id": id,
            "content": output,
        })),
    }
}
