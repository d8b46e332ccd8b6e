//! Provider adapters: one module per wire API.
//!
//! Each adapter does three things, and replay runs exactly the same code as live recording:
//! - decodes its stream payloads into normalized [`StreamEvent`]s ([`PayloadDecoder`]);
//! - classifies HTTP error responses into [`ProviderError`]s (`classify_error`);
//! - builds its request body from a [`Conversation`] (`request_body`).
//!
//! Framing (SSE, Gemini's streamed JSON array, NDJSON fixture files, a non-stream JSON reply)
//! is handled once here by [`ResponseDecoder`], so adapters only ever see one payload at a
//! time; [`reply`] turns a JSON reply into the payloads of the same answer streamed.

pub mod anthropic;
mod error;
pub mod gemini;
pub mod json_array;
pub mod openai_chat;
pub mod openai_responses;
pub mod reply;
pub mod tool_results;
pub mod wire;

pub use reply::{assemble_json, stream_from_events};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conversation::{Conversation, RequestOptions, ToolSpec};
use crate::event::{EndOutcome, ProviderError, StreamEvent};
use crate::http::Headers;
use crate::limits::LimitError;
use crate::sse::{SseDecoder, SseEventRef};

crate::string_enum! {
    /// A wire API. OpenAI-compatible servers use `openai-chat` or `openai-responses`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum Api: "api" {
        #[serde(rename = "openai-chat")]
        OpenAiChat = "openai-chat",
        #[serde(rename = "openai-responses")]
        OpenAiResponses = "openai-responses",
        #[serde(rename = "anthropic")]
        Anthropic = "anthropic",
        #[serde(rename = "gemini")]
        Gemini = "gemini",
    }
}

impl Api {
    /// A fresh payload decoder for one response of this API.
    pub fn payload_decoder(&self) -> Box<dyn PayloadDecoder> {
        match self {
            Api::OpenAiChat => Box::new(openai_chat::Decoder::new()),
            Api::OpenAiResponses => Box::new(openai_responses::Decoder::new()),
            Api::Anthropic => Box::new(anthropic::Decoder::new()),
            Api::Gemini => Box::new(gemini::Decoder::new()),
        }
    }

    /// Classify a non-2xx response from its status, headers and body.
    pub fn classify_error(&self, status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
        match self {
            Api::OpenAiChat => openai_chat::classify_error(status, headers, body),
            Api::OpenAiResponses => openai_responses::classify_error(status, headers, body),
            Api::Anthropic => anthropic::classify_error(status, headers, body),
            Api::Gemini => gemini::classify_error(status, headers, body),
        }
    }

    /// The JSON request body for a conversation.
    pub fn request_body(&self, conv: &Conversation, opts: &RequestOptions) -> Value {
        match self {
            Api::OpenAiChat => openai_chat::request_body(conv, opts),
            Api::OpenAiResponses => openai_responses::request_body(conv, opts),
            Api::Anthropic => anthropic::request_body(conv, opts),
            Api::Gemini => gemini::request_body(conv, opts),
        }
    }

    /// The request path below the base URL (`/v1/chat/completions`, ...); see [`wire`].
    pub fn endpoint_path(&self, model: &str, stream: bool) -> String {
        wire::endpoint_path(*self, model, stream)
    }
}

/// The JSON-event layer of one adapter: one payload at a time, framing already removed.
pub trait PayloadDecoder: Send {
    /// One payload: an SSE event (`event` is its `event:` field, if any; `data` its data), or
    /// one element of a JSON array / one NDJSON line (`event` is `None`).
    fn payload(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>);

    /// The body ended with `outcome`. Emits what is still pending (a tool call whose arguments
    /// never closed is dropped) and, when the stream did not reach its terminal event, an
    /// `Error` event of class `network` — a cut-off stream is an error, never a silent
    /// success. A cut *after* the terminal event: the OpenAI adapters (whose `finish-step`
    /// waits for the clean end of the body, as the AI SDK's does) report it as an error;
    /// Anthropic finishes at `message_stop` and ignores it; Gemini has no terminal event, so
    /// any cut is an error.
    fn end(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>);

    /// The limit ([`crate::limits`]) that stopped this decoder, if one did: the stream then
    /// ended in a protocol error naming it, and a replay refuses the cassette.
    fn limit_exceeded(&self) -> Option<&LimitError> {
        None
    }
}

/// Append `items` to `turns` as `{"role": role, key: items}`, or into the previous turn when it
/// has the same role: Anthropic and Gemini reject consecutive turns of one role, so tool results
/// and a following user message share one turn. Empty `items` add nothing.
pub(crate) fn push_turn(turns: &mut Vec<Value>, role: &str, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut() {
        if last["role"] == role {
            if let Some(existing) = last[key].as_array_mut() {
                existing.extend(items);
                return;
            }
        }
    }
    let mut turn = serde_json::Map::new();
    turn.insert("role".into(), Value::String(role.to_string()));
    turn.insert(key.into(), Value::Array(items));
    turns.push(Value::Object(turn));
}

/// The conversation's tools, each as `shape` writes it for the wire; `None` when it declares
/// none (every API then leaves `tools` out of the request).
pub(crate) fn tool_list(conv: &Conversation, shape: impl Fn(&ToolSpec) -> Value) -> Option<Value> {
    (!conv.tools.is_empty()).then(|| conv.tools.iter().map(shape).collect())
}

/// A tool call's input as the object APIs that take structured arguments want back: input
/// that never parsed to an object is sent as `{}`.
pub(crate) fn input_object(input: &Value) -> Value {
    match input {
        Value::Object(_) => input.clone(),
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// How a body is framed.
#[derive(Debug)]
enum Framing {
    /// Not decided yet: waiting for the first non-whitespace byte.
    Undecided(Vec<u8>),
    Sse(SseDecoder),
    JsonArray(json_array::JsonArraySplitter),
    /// A non-stream JSON reply, buffered whole (up to [`reply::MAX_JSON_REPLY_BYTES`]) and
    /// decoded when the body ends.
    Json(Vec<u8>),
}

/// Decodes the body of one 2xx response into normalized events, whatever its framing: SSE
/// (all APIs), a streamed JSON array (Gemini without `alt=sse`), or a non-stream JSON reply
/// (`stream: false`), which yields the same events as the same answer streamed.
pub struct ResponseDecoder {
    api: Api,
    framing: Framing,
    inner: Box<dyn PayloadDecoder>,
    started: bool,
    /// A JSON reply may be recognised (the content type is not `text/event-stream`).
    json_allowed: bool,
    /// A JSON reply failed to decode and its error was emitted: nothing more follows.
    failed: bool,
    /// A framing limit that stopped decoding (already reported as an `Error` event).
    framing_limit: Option<LimitError>,
}

impl ResponseDecoder {
    /// A decoder that tells the framing from the body alone: `[` starts a JSON array, `{` a
    /// JSON reply, anything else is SSE.
    pub fn new(api: Api) -> Self {
        ResponseDecoder {
            api,
            framing: Framing::Undecided(Vec::new()),
            inner: api.payload_decoder(),
            started: false,
            json_allowed: true,
            failed: false,
            framing_limit: None,
        }
    }

    /// The limit ([`crate::limits`]) that stopped decoding this body, if one did: a body
    /// that cannot be decoded within the limits, which `run` and `check` refuse.
    pub fn limit_exceeded(&self) -> Option<&LimitError> {
        self.framing_limit
            .as_ref()
            .or_else(|| self.inner.limit_exceeded())
    }

    /// After framing: report a framing limit once, as the stream's error.
    fn note_framing_limit(&mut self, out: &mut Vec<StreamEvent>) {
        if self.framing_limit.is_some() {
            return;
        }
        let hit = match &self.framing {
            Framing::Undecided(_) => None,
            Framing::Sse(d) => d.limit_exceeded(),
            Framing::JsonArray(s) => s.limit_exceeded(),
            // A JSON reply is bounded by `reply::MAX_JSON_REPLY_BYTES` and refused whole.
            Framing::Json(_) => None,
        };
        if let Some(e) = hit.cloned() {
            out.push(StreamEvent::Error(error::limit_error(&e)));
            self.framing_limit = Some(e);
        }
    }

    /// A decoder for a response with these headers: a `text/event-stream` body is never taken
    /// for a JSON reply; any other (a JSON content type, or none) is sniffed as by [`new`].
    ///
    /// [`new`]: ResponseDecoder::new
    pub fn for_response(api: Api, headers: &Headers) -> Self {
        let mut d = Self::new(api);
        d.json_allowed = !headers
            .get("content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("event-stream"));
        d
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::StartStep);
        }
    }

    /// Feed body bytes as they arrive.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        self.start(out);
        if self.framing_limit.is_some() {
            return;
        }
        if let Framing::Undecided(buf) = &mut self.framing {
            buf.extend_from_slice(bytes);
            let body = buf.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(buf);
            let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
                if let Err(e) = crate::limits::DEFAULT.check_bytes("leading whitespace", buf.len())
                {
                    self.framing = Framing::Undecided(Vec::new());
                    out.push(StreamEvent::Error(error::limit_error(&e)));
                    self.framing_limit = Some(e);
                }
                return;
            };
            if buf.len() < 3 && b"\xEF\xBB\xBF".starts_with(buf) {
                return; // maybe a BOM still arriving
            }
            let held = std::mem::take(buf);
            self.framing = if first == b'[' {
                Framing::JsonArray(json_array::JsonArraySplitter::new())
            } else if first == b'{' && self.json_allowed {
                Framing::Json(Vec::new())
            } else {
                Framing::Sse(SseDecoder::new())
            };
            return self.feed_framed(&held, out);
        }
        self.feed_framed(bytes, out);
    }

    fn feed_framed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        match &mut self.framing {
            Framing::Undecided(_) => unreachable!("framing is decided before feed_framed"),
            Framing::Sse(d) => {
                // Events are lent straight from the SSE decoder's buffers to the adapter.
                let inner = &mut self.inner;
                d.feed_ref(bytes, &mut |ev| inner.payload(ev.event, ev.data, out));
            }
            Framing::JsonArray(s) => {
                let inner = &mut self.inner;
                s.feed(bytes, &mut |elem| inner.payload(None, elem, out));
            }
            Framing::Json(buf) => {
                // Past the limit the body is refused at the end; keep no more of it.
                if buf.len() <= reply::MAX_JSON_REPLY_BYTES {
                    buf.extend_from_slice(bytes);
                }
            }
        }
        self.note_framing_limit(out);
    }

    /// The body ended.
    pub fn finish(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>) {
        self.start(out);
        if self.failed || self.framing_limit.is_some() {
            // The stream already ended in its error (a JSON reply's or a limit's).
            return;
        }
        match &mut self.framing {
            Framing::Undecided(_) => {}
            Framing::Sse(d) => {
                let inner = &mut self.inner;
                let mut sink = |ev: SseEventRef<'_>| inner.payload(ev.event, ev.data, out);
                // A cut connection leaves at most a fragment of a line: decoding it would
                // turn a retryable reset into a protocol error.
                if outcome == EndOutcome::Complete {
                    d.finish_ref(&mut sink);
                } else {
                    d.finish_cut_ref(&mut sink);
                }
            }
            Framing::JsonArray(s) => {
                let inner = &mut self.inner;
                s.finish(&mut |elem| inner.payload(None, elem, out));
            }
            // A cut JSON body is decoded not at all: `end` reports the cut.
            Framing::Json(buf) if outcome == EndOutcome::Complete => {
                let body = std::mem::take(buf);
                if let Err(e) = reply::feed_json(self.api, &body, &mut *self.inner, out) {
                    self.failed = true;
                    out.push(StreamEvent::Error(e));
                    return;
                }
            }
            Framing::Json(_) => {}
        }
        self.inner.end(outcome, out);
    }
}

/// Decode one whole response (status, headers, body chunks, outcome) into events: an error
/// response becomes a single classified `Error`; a 2xx body goes through [`ResponseDecoder`].
pub fn decode_response<'a>(
    api: Api,
    status: u16,
    headers: &Headers,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    outcome: EndOutcome,
) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    if !(200..300).contains(&status) {
        let body: Vec<u8> = chunks.into_iter().flatten().copied().collect();
        out.push(StreamEvent::Error(
            api.classify_error(status, headers, &body),
        ));
        return out;
    }
    let mut dec = ResponseDecoder::for_response(api, headers);
    for c in chunks {
        dec.feed(c, &mut out);
    }
    dec.finish(outcome, &mut out);
    out
}

/// Decode an NDJSON fixture (vercel `.chunks.txt`: one SSE data payload per line).
pub fn decode_ndjson(api: Api, text: &str) -> Vec<StreamEvent> {
    let mut inner = api.payload_decoder();
    let mut out = vec![StreamEvent::StartStep];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        inner.payload(None, line, &mut out);
    }
    inner.end(EndOutcome::Complete, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ErrorClass;

    /// A reset inside a `data:` line is a network error (retryable), not a protocol error.
    #[test]
    fn reset_mid_line_is_a_network_error() {
        let body = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"obj";
        for api in [
            Api::OpenAiChat,
            Api::Anthropic,
            Api::OpenAiResponses,
            Api::Gemini,
        ] {
            let evs = decode_response(api, 200, &Headers::new(), [&body[..]], EndOutcome::Reset);
            let Some(StreamEvent::Error(e)) = evs.last() else {
                panic!("{api}: a cut stream must end in an error, got {evs:?}");
            };
            assert_eq!(e.class, ErrorClass::Network, "{api}: {e:?}");
            assert!(e.retryable, "{api}: {e:?}");
        }
    }
}
