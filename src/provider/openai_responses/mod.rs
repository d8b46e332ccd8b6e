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

mod decode;
mod request;

pub use decode::Decoder;
pub use request::request_body;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::event::{ProviderError, Usage};
use crate::http::Headers;
use crate::provider::openai_chat::lenient_u64;

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

/// Classify a non-2xx Responses-API response (same error body as chat completions).
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    super::openai_chat::classify_error(status, headers, body)
}
