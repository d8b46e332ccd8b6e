//! Non-streaming replies: the provider's whole-JSON answer to a `stream: false` request.
//!
//! One idea serves three jobs. Each wire API has a function that turns its non-stream JSON
//! body into the stream payloads the provider would have sent for the same answer
//! (`payloads`), and one that builds that JSON body from normalized events (`assemble`):
//! - decoding a recorded JSON reply feeds those payloads to the API's ordinary stream decoder,
//!   so a JSON reply yields exactly the events a stream of the same answer does
//!   ([`ResponseDecoder`](super::ResponseDecoder) picks this mode for a JSON body);
//! - [`assemble_json`] answers a non-stream request from a recorded stream's events;
//! - [`stream_from_events`] answers a streaming request from a JSON recording's events: the
//!   assembled body's payloads, framed as SSE.
//!
//! What a JSON body cannot carry (see docs/formats.md): chunk boundaries (deltas arrive whole),
//! the raw text of Anthropic and Gemini tool arguments (they are JSON objects there), the
//! response id and creation time (fixed placeholders), and Responses reasoning read from raw
//! `reasoning_text` (it comes back as a summary).

mod anthropic;
mod gemini;
mod model;
mod openai_chat;
mod openai_responses;

use bytes::Bytes;
use serde_json::Value;

use super::{Api, PayloadDecoder};
use crate::event::{ErrorClass, ProviderError, StreamEvent};

pub use model::{coalesce, Reply, ReplyPart};

/// A JSON reply body larger than this is refused with a protocol error rather than buffered.
pub const MAX_JSON_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// One stream payload: the SSE `event:` name (if the API uses one) and the JSON data, or the
/// literal `[DONE]` of OpenAI chat.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Option<&'static str>, Value),
    Done,
}

impl Payload {
    fn data(&self) -> String {
        match self {
            Payload::Json(_, v) => v.to_string(),
            Payload::Done => "[DONE]".to_string(),
        }
    }

    fn event(&self) -> Option<&'static str> {
        match self {
            Payload::Json(e, _) => *e,
            Payload::Done => None,
        }
    }

    /// This payload as one SSE event (`event:` line when named, one `data:` line).
    pub fn to_sse(&self) -> Bytes {
        let mut s = String::new();
        if let Some(e) = self.event() {
            s.push_str("event: ");
            s.push_str(e);
            s.push('\n');
        }
        s.push_str("data: ");
        s.push_str(&self.data());
        s.push_str("\n\n");
        Bytes::from(s)
    }
}

/// A reply body that is not the provider's JSON reply: never retryable.
pub(crate) fn shape_error(api: Api, message: impl std::fmt::Display) -> ProviderError {
    ProviderError {
        class: ErrorClass::Protocol,
        status: None,
        message: format!("undecodable {api} JSON reply: {message}"),
        retryable: false,
        retry_after_ms: None,
        code: None,
    }
}

/// The stream payloads `api` would have sent for the non-stream reply `body`.
pub fn payloads(api: Api, body: &Value) -> Result<Vec<Payload>, ProviderError> {
    if !body.is_object() {
        return Err(shape_error(api, "the body is not a JSON object"));
    }
    match api {
        Api::OpenAiChat => openai_chat::payloads(body),
        Api::OpenAiResponses => openai_responses::payloads(body),
        Api::Anthropic => anthropic::payloads(body),
        Api::Gemini => gemini::payloads(body),
    }
    .map_err(|m| shape_error(api, m))
}

/// Decode a whole non-stream JSON reply body through `inner` (the API's stream decoder): its
/// payloads are fed in order. A body that is not JSON, or not this API's reply, is returned
/// as a protocol error and nothing is fed. The caller still calls `inner.end`.
pub(crate) fn feed_json(
    api: Api,
    body: &[u8],
    inner: &mut dyn PayloadDecoder,
    out: &mut Vec<StreamEvent>,
) -> Result<(), ProviderError> {
    if body.len() > MAX_JSON_REPLY_BYTES {
        return Err(shape_error(
            api,
            format!(
                "the body is {} bytes, more than the {MAX_JSON_REPLY_BYTES}-byte limit",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| shape_error(api, format!("the body is not UTF-8 ({e})")))?;
    let text = text.trim_start_matches('\u{feff}');
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let preview: String = text.chars().take(120).collect();
        shape_error(api, format!("{e}: {preview}"))
    })?;
    for p in payloads(api, &value)? {
        inner.payload(p.event(), &p.data(), out);
    }
    Ok(())
}

/// The provider's non-stream JSON body for the response `events` describe (the events of one
/// attempt, as a decoder emits them). Tool-call ids, item ids and signatures are the recorded
/// ones; the response id and time are placeholders. When the events end in an error, the body
/// is the provider's error body instead (the caller picks the HTTP status, e.g. the error's
/// `status`).
pub fn assemble_json(api: Api, model: &str, events: &[StreamEvent]) -> Value {
    let reply = Reply::from_events(events);
    if let Some(err) = &reply.error {
        return error_body(api, err);
    }
    assemble_reply(api, &reply, model)
}

fn assemble_reply(api: Api, reply: &Reply, model: &str) -> Value {
    match api {
        Api::OpenAiChat => openai_chat::assemble(reply, model),
        Api::OpenAiResponses => openai_responses::assemble(reply, model),
        Api::Anthropic => anthropic::assemble(reply, model),
        Api::Gemini => gemini::assemble(reply, model),
    }
}

/// The provider's SSE stream (one SSE event per chunk) for the response `events` describe: the
/// payloads of [`assemble_json`]'s body. When the events end in a `network` error (a cut
/// recording) the stream stops before its terminal event, so a client sees the same cut; any
/// other error ends the stream with the API's in-stream error event.
pub fn stream_from_events(api: Api, model: &str, events: &[StreamEvent]) -> Vec<Bytes> {
    let reply = Reply::from_events(events);
    let mut ok = reply.clone();
    ok.error = None;
    let body = assemble_reply(api, &ok, model);
    // The assembled body always has this API's shape, so `payloads` cannot refuse it.
    let mut payloads = payloads(api, &body).unwrap_or_default();
    if let Some(err) = &reply.error {
        match api {
            Api::OpenAiChat => openai_chat::strip_terminal(&mut payloads),
            Api::OpenAiResponses => openai_responses::strip_terminal(&mut payloads),
            Api::Anthropic => anthropic::strip_terminal(&mut payloads),
            Api::Gemini => gemini::strip_terminal(&mut payloads),
        }
        if err.class != ErrorClass::Network {
            payloads.push(in_stream_error(api, err));
        }
    }
    payloads.iter().map(Payload::to_sse).collect()
}

/// The API's error body for `err`.
fn error_body(api: Api, err: &ProviderError) -> Value {
    match api {
        Api::OpenAiChat | Api::OpenAiResponses => openai_chat::error_body(err),
        Api::Anthropic => anthropic::error_body(err),
        Api::Gemini => gemini::error_body(err),
    }
}

/// The API's in-stream error event for `err`.
fn in_stream_error(api: Api, err: &ProviderError) -> Payload {
    match api {
        Api::OpenAiChat | Api::Gemini => Payload::Json(None, error_body(api, err)),
        Api::OpenAiResponses => {
            let mut v = openai_chat::error_body(err);
            v["type"] = "error".into();
            Payload::Json(Some("error"), v)
        }
        Api::Anthropic => Payload::Json(Some("error"), anthropic::error_body(err)),
    }
}
