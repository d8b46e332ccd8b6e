//! OpenAI Chat Completions (`/v1/chat/completions`) and the chat-compatible servers that copy
//! it: DeepSeek, xAI, Groq, OpenRouter, Z.ai, Mistral, Qwen/DashScope, vLLM, Ollama, Azure.
//!
//! The stream is a sequence of `chat.completion.chunk` payloads ended by `data: [DONE]`. What
//! varies between servers (see `reference/provider-stream-notes.md` §3) is where reasoning
//! text lives (`reasoning_content`, `reasoning` + `reasoning_details`, Mistral's typed content
//! array), how tool-call fragments are cut (keyed on `index`, never on `id`), where usage lives
//! (a trailing `choices:[]` chunk, the finish chunk, `x_groq.usage`) and how usage is counted
//! (xAI's `completion_tokens` excludes reasoning, OpenAI's includes it).
//!
//! The helpers shared with the Responses adapter (error classification, tool-argument parsing,
//! lenient token counts) live here too, since both speak OpenAI's error format.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::{EndOutcome, ErrorClass, FinishReason, ProviderError, StreamEvent, Usage};
use crate::http::{self, Headers};

use super::error::{cut_off_error, protocol_error};

// ---------------------------------------------------------------------------------------------
// Wire types (borrowed where the JSON has no escapes, so a plain text delta costs no copy)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Option<FirstChoice<'a>>,
    /// Boxed, like `x_groq` and `error`: present once per stream at most, and keeping them out
    /// of line makes `Chunk` (moved several times per parse) less than half the size.
    #[serde(default)]
    usage: Option<Box<ChatUsage>>,
    #[serde(default)]
    x_groq: Option<Box<XGroq>>,
    /// OpenRouter puts a top-level `error` on an otherwise normal chunk; OpenAI and Groq send a
    /// chunk that is only `{"error": ...}`. Rare, so kept as a `Value`.
    #[serde(default)]
    error: Option<Box<Value>>,
}

/// `choices`, reduced while parsing to the first choice of index 0 (a missing index counts as
/// 0): only choice 0 is the agent's response, and with `n > 1` other choices interleave. Every
/// element is still parsed, so a malformed choice fails the chunk exactly as a `Vec` would, but
/// no `Vec` is built per chunk.
struct FirstChoice<'a>(Option<Choice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                // What serde's `Vec` says, so error messages are unchanged.
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(c) = seq.next_element::<Choice<'a>>()? {
                    if first.is_none() && c.index.unwrap_or(0) == 0 {
                        first = Some(c);
                    }
                }
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    /// DeepSeek, xAI, Z.ai, llama.cpp.
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    /// OpenRouter, Groq, Ollama, vLLM.
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    /// OpenRouter's structured reasoning (same text as `reasoning`, plus signatures).
    #[serde(default, borrow)]
    reasoning_details: Option<Vec<ReasoningDetail<'a>>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ReasoningDetail<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    summary: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    format: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<ArgsFragment<'a>>,
}

#[derive(Deserialize)]
struct XGroq {
    #[serde(default)]
    usage: Option<ChatUsage>,
}

/// Chat usage as OpenAI and the compatible servers report it.
#[derive(Deserialize, Default, Clone, Copy, Debug)]
struct ChatUsage {
    #[serde(default, deserialize_with = "lenient_u64")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    completion_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's own name for cache reads.
    #[serde(default, deserialize_with = "lenient_u64")]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy, Debug)]
struct PromptDetails {
    #[serde(default, deserialize_with = "lenient_u64")]
    cached_tokens: Option<u64>,
    /// OpenRouter (Anthropic/Bedrock upstreams).
    #[serde(default, deserialize_with = "lenient_u64")]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy, Debug)]
struct CompletionDetails {
    #[serde(default, deserialize_with = "lenient_u64")]
    reasoning_tokens: Option<u64>,
}

impl ChatUsage {
    /// Map onto the normalized disjoint split.
    ///
    /// OpenAI counts reasoning inside `completion_tokens` (`total = prompt + completion`); xAI
    /// does not (`total = prompt + completion + reasoning`). The totals tell them apart.
    fn normalize(&self) -> Usage {
        let prompt = self.prompt_tokens.unwrap_or(0);
        let completion = self.completion_tokens.unwrap_or(0);
        let details = self.prompt_tokens_details.unwrap_or_default();
        let cache_read = details
            .cached_tokens
            .filter(|&c| c > 0)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0);
        let cache_write = details.cache_write_tokens.unwrap_or(0);
        let reasoning = self
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        let reasoning_excluded = reasoning > 0
            && self.total_tokens
                == Some(prompt.saturating_add(completion).saturating_add(reasoning));
        let output = if reasoning_excluded {
            completion
        } else {
            completion.saturating_sub(reasoning)
        };
        Usage {
            input: prompt.saturating_sub(cache_read.saturating_add(cache_write)),
            output,
            reasoning,
            cache_read,
            cache_write,
        }
    }
}

/// `delta.content`: a string everywhere except Mistral's magistral models, which send an
/// array of typed chunks (`{"type":"thinking","thinking":[{"type":"text","text":…}]}`,
/// `{"type":"text","text":…}`) and may switch between the two forms within one stream.
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

#[derive(Deserialize)]
struct ContentPart<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Content<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Content::Parts(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element::<ContentPart<'a>>()? {
                    parts.push(p);
                }
                Ok(Content::Parts(parts))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let part = ContentPart::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Content::Parts(vec![part]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A `function.arguments` fragment: a string on the wire, but an object from a few local
/// servers (Ollama's native shape leaking through); an object is re-serialized to its text.
struct ArgsFragment<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for ArgsFragment<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ArgsFragment<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ArgsFragment(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ArgsFragment(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ArgsFragment(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ArgsFragment(Cow::Borrowed("")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ArgsFragment(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A token count that tolerates `null`, floats and garbage (→ `None`) instead of failing the
/// whole chunk: usage is bookkeeping, never a reason to drop the text around it.
pub(crate) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a token count")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.max(0) as u64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok((v.is_finite() && v >= 0.0).then_some(v as u64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

// ---------------------------------------------------------------------------------------------
// Shared OpenAI helpers
// ---------------------------------------------------------------------------------------------

/// Tool arguments as the processor sees them: the parsed JSON (key order kept), `{}` for an
/// empty string, or — when the model wrote something that is not JSON — the raw text as a JSON
/// string, so the processor can hand the model a tool error instead of losing the call.
pub(crate) fn parse_tool_input(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::Object(Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// The arguments string to send back for a tool call: the raw text for input that never
/// parsed, compact JSON otherwise.
pub(crate) fn tool_input_to_arguments(input: &Value) -> String {
    match input {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// The parts of an OpenAI-style error object (`{"message","type","code","param"}`, plus
/// OpenRouter's numeric `code` and `metadata.raw`, Groq's `status_code`).
#[derive(Default, Debug)]
pub(crate) struct ErrorFields {
    pub message: Option<String>,
    pub kind: Option<String>,
    pub code: Option<String>,
    /// A numeric code or `status_code` inside the error object (OpenRouter, Groq).
    pub status: Option<u16>,
}

impl ErrorFields {
    /// Read the error object `err` (the value of `"error"`, or a Responses `response.error`).
    pub(crate) fn from_value(err: &Value) -> ErrorFields {
        let Some(obj) = err.as_object() else {
            return ErrorFields {
                message: err.as_str().map(str::to_owned),
                ..Default::default()
            };
        };
        let str_of = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut message = str_of("message");
        // OpenRouter wraps the upstream's own error text in `metadata.raw`; it is the part that
        // says "rate-limited upstream" or "context length exceeded".
        if let Some(raw) = obj
            .get("metadata")
            .and_then(|m| m.get("raw"))
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            message = Some(match message {
                Some(m) if !m.is_empty() => format!("{m}: {raw}"),
                _ => raw.to_owned(),
            });
        }
        let numeric = |v: Option<&Value>| {
            v.and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..600).contains(n))
        };
        let code_value = obj.get("code");
        let status = numeric(obj.get("status_code"))
            .or_else(|| numeric(obj.get("status")))
            .or_else(|| numeric(code_value));
        let code = match code_value {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        ErrorFields {
            message,
            kind: str_of("type").filter(|s| !s.is_empty()),
            code,
            status,
        }
    }

    /// Read an HTTP error body: `{"error":{...}}`, a bare error object, or any text.
    pub(crate) fn from_body(body: &[u8]) -> ErrorFields {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                let inner = v.get("error").filter(|e| !e.is_null()).unwrap_or(&v);
                let mut f = ErrorFields::from_value(inner);
                if f.message.is_none() {
                    f.message = v.get("message").and_then(Value::as_str).map(str::to_owned);
                }
                f
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body).trim().to_owned();
                ErrorFields {
                    message: (!text.is_empty()).then_some(text),
                    ..Default::default()
                }
            }
        }
    }

    fn has(&self, needle: &str) -> bool {
        let hit = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(needle));
        hit(&self.code) || hit(&self.kind)
    }
}

/// Classify an OpenAI-style error. `http_status` is the response status for HTTP errors and
/// `None` for in-stream errors (whose own `status_code`/numeric `code` then stands in for it).
///
/// Follows opencode's `ProviderError` rules (reference §3.1): 413, `context_length_exceeded` or
/// an overflow message → context overflow, never retried; `insufficient_quota`,
/// `usage_not_included`, `invalid_prompt` → never retried; otherwise the AI SDK default
/// (408/409/429/5xx), overridden by an `x-should-retry` header.
pub(crate) fn classify(
    http_status: Option<u16>,
    headers: Option<&Headers>,
    fields: ErrorFields,
    body_empty: bool,
) -> ProviderError {
    let status = http_status.or(fields.status);
    let message = fields.message.clone().unwrap_or_else(|| match status {
        Some(s) => format!("HTTP {s} (no body)"),
        None => "provider error".to_string(),
    });
    let msg_lower = message.to_ascii_lowercase();
    let never_retry = fields.has("insufficient_quota")
        || fields.has("usage_not_included")
        || fields.has("invalid_prompt");
    let class = if status == Some(413)
        || fields.has("context_length_exceeded")
        || http::is_context_overflow_message(&message)
        || (body_empty && status == Some(400))
    {
        ErrorClass::ContextOverflow
    } else if fields.has("insufficient_quota") {
        ErrorClass::RateLimited
    } else if fields.has("content_filter")
        || fields.has("content_policy")
        || fields.has("invalid_prompt")
    {
        ErrorClass::ContentFilter
    } else if status == Some(429) {
        ErrorClass::RateLimited
    } else if fields.has("overloaded")
        || (status.is_none_or(|s| s >= 500) && msg_lower.contains("overloaded"))
    {
        ErrorClass::Overloaded
    } else if fields.has("rate_limit") || fields.has("too_many_requests") {
        ErrorClass::RateLimited
    } else if matches!(status, Some(401 | 403))
        || fields.has("invalid_api_key")
        || fields.has("authentication")
        || fields.has("permission")
    {
        ErrorClass::Auth
    } else if let Some(s) = status {
        http::class_for_status(s)
    } else if fields.has("invalid_request") || fields.has("not_found") {
        ErrorClass::InvalidRequest
    } else {
        // An in-stream error that names nothing more specific is the server's failure
        // (OpenAI's mid-stream `server_error`).
        ErrorClass::Server
    };
    let mut retryable = match status {
        Some(s) => http::status_is_retryable(s),
        None => matches!(
            class,
            ErrorClass::RateLimited | ErrorClass::Overloaded | ErrorClass::Server
        ),
    };
    if let Some(h) = headers.and_then(|h| h.get("x-should-retry")) {
        match h.trim() {
            "true" => retryable = true,
            "false" => retryable = false,
            _ => {}
        }
    }
    if class == ErrorClass::ContextOverflow || never_retry {
        retryable = false;
    }
    let retry_after_ms = headers
        .and_then(|h| http::retry_after_ms(h, None))
        .or_else(|| retry_after_from_text(&message));
    ProviderError {
        class,
        status: http_status,
        message,
        retryable,
        retry_after_ms,
        code: fields.code.or(fields.kind),
    }
}

/// The wait in OpenAI's rate-limit text: "Please try again in 20s", "in 1.5s", "in 300ms",
/// "in 1m12.48s", "in 2 seconds". Rounded up to whole ms.
pub fn retry_after_from_text(message: &str) -> Option<u64> {
    static RE: std::sync::OnceLock<(regex::Regex, regex::Regex)> = std::sync::OnceLock::new();
    let (outer, part) = RE.get_or_init(|| {
        const UNIT: &str = r"(?:ms|milliseconds?|seconds?|secs?|s|minutes?|mins?|m|hours?|h)";
        (
            regex::Regex::new(&format!(
                r"(?i)try again in\s*((?:\d+(?:\.\d+)?\s*{UNIT}\s*)+)"
            ))
            .expect("valid retry regex"),
            regex::Regex::new(&format!(r"(?i)(\d+(?:\.\d+)?)\s*({UNIT})"))
                .expect("valid retry part regex"),
        )
    });
    let span = outer.captures(message)?.get(1)?.as_str();
    let mut total_ms = 0f64;
    for c in part.captures_iter(span) {
        let n: f64 = c.get(1)?.as_str().parse().ok()?;
        let unit = c.get(2)?.as_str().to_ascii_lowercase();
        let factor = if unit.starts_with("ms") || unit.starts_with("milli") {
            1.0
        } else if unit.starts_with('s') {
            1000.0
        } else if unit.starts_with('m') {
            60_000.0
        } else {
            3_600_000.0
        };
        total_ms += n * factor;
    }
    (total_ms.is_finite() && total_ms >= 0.0).then(|| total_ms.ceil() as u64)
}

// ---------------------------------------------------------------------------------------------
// Stream decoder
// ---------------------------------------------------------------------------------------------

/// One tool call being assembled from fragments that share an `index`.
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    args: String,
    /// `tool-input-start` has been emitted.
    started: bool,
}

/// Decoder state for one chat-completions response.
pub struct Decoder {
    /// Open text block id (`text-N`).
    text: Option<String>,
    /// Open reasoning block id (`reasoning-N`).
    reasoning: Option<String>,
    /// OpenRouter `reasoning_details` to carry on `reasoning-end` (signatures, encrypted data).
    reasoning_meta: Option<ReasoningMeta>,
    /// Blocks opened so far, for unique ids.
    blocks: u32,
    refusal_id: Option<String>,
    calls: Vec<PendingCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    /// `[DONE]` seen.
    done: bool,
    /// An `Error` was emitted: everything after is ignored.
    failed: bool,
}

/// OpenRouter reasoning round-trip data.
#[derive(Default)]
struct ReasoningMeta {
    signature: Option<String>,
    format: Option<String>,
    /// Non-text details (`reasoning.encrypted`, `reasoning.summary`) kept verbatim.
    others: Vec<Value>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            text: None,
            reasoning: None,
            reasoning_meta: None,
            blocks: 0,
            refusal_id: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            done: false,
            failed: false,
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.blocks);
        self.blocks += 1;
        id
    }

    fn close_text(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(id) = self.text.take() {
            out.push(StreamEvent::TextEnd { id });
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(id) = self.reasoning.take() {
            let metadata = self.reasoning_meta.take().and_then(|m| {
                if m.signature.is_none() && m.others.is_empty() {
                    return None;
                }
                let mut details = Vec::with_capacity(1 + m.others.len());
                if let Some(sig) = m.signature {
                    details.push(json!({
                        "type": "reasoning.text",
                        "signature": sig,
                        "format": m.format,
                    }));
                }
                details.extend(m.others);
                Some(json!({ "reasoning_details": details }))
            });
            out.push(StreamEvent::ReasoningEnd { id, metadata });
        }
    }

    fn push_text(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        self.close_reasoning(out);
        let id = match &self.text {
            Some(id) => id.clone(),
            None => {
                let id = self.next_id("text");
                out.push(StreamEvent::TextStart { id: id.clone() });
                self.text = Some(id.clone());
                id
            }
        };
        out.push(StreamEvent::TextDelta {
            id,
            text: text.to_owned(),
        });
    }

    fn push_reasoning(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        self.close_text(out);
        let id = match &self.reasoning {
            Some(id) => id.clone(),
            None => {
                let id = self.next_id("reasoning");
                out.push(StreamEvent::ReasoningStart {
                    id: id.clone(),
                    metadata: None,
                });
                self.reasoning = Some(id.clone());
                id
            }
        };
        out.push(StreamEvent::ReasoningDelta {
            id,
            text: text.to_owned(),
        });
    }

    fn note_reasoning_details(&mut self, details: &[ReasoningDetail<'_>]) {
        for d in details {
            let kind = d.kind.as_deref().unwrap_or("reasoning.text");
            if kind == "reasoning.text" {
                if let Some(sig) = d.signature.as_deref().filter(|s| !s.is_empty()) {
                    let m = self.reasoning_meta.get_or_insert_with(Default::default);
                    m.signature = Some(sig.to_owned());
                    m.format = d.format.as_deref().map(str::to_owned);
                }
            } else if let Some(data) = d.data.as_deref().filter(|s| !s.is_empty()) {
                let m = self.reasoning_meta.get_or_insert_with(Default::default);
                m.others
                    .push(json!({"type": kind, "data": data, "format": d.format}));
            } else if let Some(summary) = d.summary.as_deref().filter(|s| !s.is_empty()) {
                let m = self.reasoning_meta.get_or_insert_with(Default::default);
                m.others
                    .push(json!({"type": kind, "summary": summary, "format": d.format}));
            }
        }
    }

    /// Reasoning text of one delta, from whichever field this server uses. `reasoning` and
    /// `reasoning_details` carry the same text on OpenRouter, so only one is taken.
    fn reasoning_text<'d>(delta: &'d Delta<'_>) -> Option<Cow<'d, str>> {
        if let Some(r) = delta.reasoning_content.as_deref().filter(|s| !s.is_empty()) {
            return Some(Cow::Borrowed(r));
        }
        if let Some(r) = delta.reasoning.as_deref().filter(|s| !s.is_empty()) {
            return Some(Cow::Borrowed(r));
        }
        let details = delta.reasoning_details.as_deref()?;
        let mut text = String::new();
        for d in details {
            match d.kind.as_deref().unwrap_or("reasoning.text") {
                "reasoning.text" => text.push_str(d.text.as_deref().unwrap_or("")),
                "reasoning.summary" => text.push_str(d.summary.as_deref().unwrap_or("")),
                _ => {}
            }
        }
        (!text.is_empty()).then_some(Cow::Owned(text))
    }

    fn tool_fragment(
        &mut self,
        tc: ToolCallDelta<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), String> {
        let id = tc.id.as_deref().filter(|s| !s.is_empty());
        let (name, args) = match tc.function {
            Some(f) => (
                f.name.filter(|s| !s.is_empty()),
                f.arguments.map(|a| a.0).unwrap_or(Cow::Borrowed("")),
            ),
            None => (None, Cow::Borrowed("")),
        };
        // Key on `index`. Without one (a few old servers), a new non-empty id opens a new call
        // and anything else continues the last call.
        let index = match tc.index {
            Some(i) => i,
            None => match (self.calls.last(), id) {
                (Some(last), Some(id)) if last.id != id => last.index + 1,
                (Some(last), _) => last.index,
                (None, _) => 0,
            },
        };
        let pos = match self.calls.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                // The first fragment of a call must name the tool (the AI SDK rejects the
                // stream otherwise); the id may be missing on a few local servers.
                let Some(name) = name.as_deref() else {
                    return Err(format!("tool call {index} started without a function name"));
                };
                self.close_reasoning(out);
                self.close_text(out);
                self.calls.push(PendingCall {
                    index,
                    id: id.map_or_else(|| format!("call_{index}"), str::to_owned),
                    name: name.to_owned(),
                    args: String::new(),
                    started: false,
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        if !call.started {
            call.started = true;
            out.push(StreamEvent::ToolInputStart {
                id: call.id.clone(),
                tool: call.name.clone(),
                provider_executed: false,
            });
        }
        if !args.is_empty() {
            call.args.push_str(&args);
            out.push(StreamEvent::ToolInputDelta {
                id: call.id.clone(),
                delta: args.into_owned(),
            });
        }
        Ok(())
    }

    /// Close open blocks and emit every assembled tool call.
    fn finish_content(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_reasoning(out);
        self.close_text(out);
        self.refusal_id = None;
        for call in self.calls.drain(..) {
            out.push(StreamEvent::ToolInputEnd {
                id: call.id.clone(),
            });
            out.push(StreamEvent::ToolCall {
                input: parse_tool_input(&call.args),
                id: call.id,
                tool: call.name,
                provider_executed: false,
                metadata: None,
            });
        }
    }

    /// Emit `err` once; blocks are closed so the event sequence stays well formed, and
    /// half-assembled tool calls are dropped.
    fn fail(&mut self, err: ProviderError, out: &mut Vec<StreamEvent>) {
        self.close_reasoning(out);
        self.close_text(out);
        self.calls.clear();
        self.failed = true;
        out.push(StreamEvent::Error(err));
    }

    fn chunk(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        let chunk: Chunk<'_> = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => return self.fail(protocol_error(&e, data, "…"), out),
        };
        let usage = chunk
            .usage
            .as_deref()
            .or_else(|| chunk.x_groq.as_ref().and_then(|x| x.usage.as_ref()));
        if let Some(usage) = usage {
            self.usage = Some(usage.normalize());
        }
        let error = chunk.error.filter(|e| !e.is_null());
        if error.is_some() || event == Some("error") {
            let fields = match &error {
                Some(e) => ErrorFields::from_value(e),
                None => ErrorFields {
                    message: Some(data.to_owned()),
                    ..Default::default()
                },
            };
            return self.fail(classify(None, None, fields, false), out);
        }
        // Only choice 0 is the agent's response; with `n > 1` other choices interleave.
        let Some(choice) = chunk.choices.and_then(|c| c.0) else {
            return;
        };
        if let Some(delta) = choice.delta {
            if let Some(details) = delta.reasoning_details.as_deref() {
                self.note_reasoning_details(details);
            }
            if let Some(r) = Self::reasoning_text(&delta) {
                self.push_reasoning(&r, out);
            }
            match &delta.content {
                Some(Content::Text(t)) => self.push_text(t, out),
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        self.content_part(p, out);
                    }
                }
                None => {}
            }
            if let Some(r) = delta.refusal.as_deref().filter(|s| !s.is_empty()) {
                let id = match &self.refusal_id {
                    Some(id) => id.clone(),
                    None => {
                        let id = self.next_id("refusal");
                        self.refusal_id = Some(id.clone());
                        id
                    }
                };
                out.push(StreamEvent::RefusalDelta {
                    id,
                    text: r.to_owned(),
                });
            }
            for tc in delta.tool_calls.into_iter().flatten() {
                if let Err(msg) = self.tool_fragment(tc, out) {
                    return self.fail(
                        ProviderError {
                            class: ErrorClass::Protocol,
                            status: None,
                            message: msg,
                            retryable: false,
                            retry_after_ms: None,
                            code: None,
                        },
                        out,
                    );
                }
            }
        }
        if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
            // OpenRouter repeats the finish chunk: the first one counts.
            if self.finish.is_none() {
                self.finish = Some(reason.into_owned());
                self.finish_content(out);
            }
        }
    }

    fn content_part(&mut self, part: &ContentPart<'_>, out: &mut Vec<StreamEvent>) {
        match part.kind.as_deref() {
            Some("thinking") => match &part.thinking {
                Some(Content::Text(t)) => self.push_reasoning(t, out),
                Some(Content::Parts(inner)) => {
                    for p in inner {
                        if let Some(t) = p.text.as_deref() {
                            self.push_reasoning(t, out);
                        }
                    }
                }
                None => {}
            },
            Some("text") | None => {
                if let Some(t) = part.text.as_deref() {
                    self.push_text(t, out);
                }
            }
            // Images, references and other parts carry no text for the loop.
            Some(_) => {}
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Map a chat `finish_reason` onto the AI SDK vocabulary.
pub fn map_finish_reason(raw: Option<&str>) -> FinishReason {
    match raw {
        Some("stop") | Some("end_turn") | Some("eos") => FinishReason::Stop,
        Some("length") | Some("max_tokens") | Some("model_length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("tool_calls") | Some("function_call") | Some("tool_use") => FinishReason::ToolCalls,
        Some("error") => FinishReason::Error,
        Some(_) => FinishReason::Other,
        None => FinishReason::Unknown,
    }
}

impl super::PayloadDecoder for Decoder {
    fn payload(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.failed || self.done {
            return;
        }
        let trimmed = data.trim();
        if trimmed == "[DONE]" {
            self.done = true;
            return;
        }
        if trimmed.is_empty() {
            return;
        }
        self.chunk(event, data, out);
    }

    /// `finish-step` is emitted here, when the body has ended cleanly — as the AI SDK does in
    /// its stream `flush`. The finish chunk precedes the usage chunk, and a connection that
    /// drops after `[DONE]` still fails the request in opencode, so nothing is final earlier.
    fn end(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>) {
        if self.failed {
            return;
        }
        if outcome != EndOutcome::Complete || !(self.done || self.finish.is_some()) {
            return self.fail(cut_off_error(outcome, "[DONE]"), out);
        }
        self.finish_content(out);
        out.push(StreamEvent::FinishStep {
            finish_reason: map_finish_reason(self.finish.as_deref()),
            raw_finish_reason: self.finish.take(),
            usage: self.usage.unwrap_or_default(),
        });
        self.failed = true; // nothing more may follow a finished response
    }
}

/// Classify a non-2xx chat-completions response.
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    let body_empty = body.iter().all(u8::is_ascii_whitespace);
    classify(
        Some(status),
        Some(headers),
        ErrorFields::from_body(body),
        body_empty,
    )
}

// ---------------------------------------------------------------------------------------------
// Request body
// ---------------------------------------------------------------------------------------------

/// The `/v1/chat/completions` body for a conversation.
///
/// Reasoning parts are not sent back: OpenAI rejects unknown message fields and its reasoning
/// is not replayable in chat. Provider-executed tool parts have no chat representation.
pub fn request_body(conv: &Conversation, opts: &RequestOptions) -> Value {
    let mut messages = Vec::with_capacity(conv.messages.len() + 1);
    if let Some(system) = conv.system.as_deref() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for msg in &conv.messages {
        match msg {
            Message::User { content } => messages.push(json!({"role": "user", "content": content})),
            Message::Assistant { parts } => {
                let mut text = String::new();
                let mut tool_calls = Vec::new();
                for part in parts {
                    match part {
                        AssistantPart::Text { text: t } => text.push_str(t),
                        AssistantPart::ToolCall {
                            id,
                            tool,
                            input,
                            provider_executed: false,
                            ..
                        } => tool_calls.push(json!({
                            "id": id,
                            "type": "function",
                            "function": {"name": tool, "arguments": tool_input_to_arguments(input)},
                        })),
                        _ => {}
                    }
                }
                let mut m = Map::new();
                m.insert("role".into(), "assistant".into());
                m.insert(
                    "content".into(),
                    if text.is_empty() && !tool_calls.is_empty() {
                        Value::Null
                    } else {
                        Value::String(text)
                    },
                );
                if !tool_calls.is_empty() {
                    m.insert("tool_calls".into(), Value::Array(tool_calls));
                }
                messages.push(Value::Object(m));
            }
            Message::Tool { results } => {
                for r in results {
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": r.call_id,
                        "content": r.output,
                    }));
                }
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), opts.model.clone().into());
    body.insert("messages".into(), Value::Array(messages));
    if !conv.tools.is_empty() {
        let tools = conv
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.schema},
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    body.insert("stream".into(), opts.stream.into());
    if opts.stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(max) = opts.max_output_tokens {
        body.insert("max_completion_tokens".into(), max.into());
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_text_forms() {
        let cases = [
            ("Please try again in 20s.", Some(20_000)),
            ("Please try again in 1.5s", Some(1_500)),
            ("Please try again in 300ms.", Some(300)),
            ("Please try again in 1m12.48s.", Some(72_480)),
            ("try again in 2 seconds", Some(2_000)),
            ("no hint here", None),
        ];
        for (text, want) in cases {
            assert_eq!(retry_after_from_text(text), want, "{text}");
        }
    }

    /// `choices` keeps the first index-0 choice, still parses (and fails on) every element, and
    /// words its errors as serde's `Vec` did.
    #[test]
    fn first_choice_of_index_zero() {
        let pick = |json: &str| {
            serde_json::from_str::<Chunk<'_>>(json).map(|c| {
                c.choices
                    .and_then(|c| c.0)
                    .and_then(|c| c.finish_reason.map(Cow::into_owned))
            })
        };
        assert_eq!(
            pick(r#"{"choices":[{"index":1,"finish_reason":"a"},{"finish_reason":"b"},{"index":0,"finish_reason":"c"}]}"#).unwrap(),
            Some("b".to_string())
        );
        assert_eq!(pick(r#"{"choices":[]}"#).unwrap(), None);
        assert_eq!(pick(r#"{"choices":null}"#).unwrap(), None);
        assert!(pick(r#"{"choices":[{"index":0},{"index":"x"}]}"#).is_err());
        let err = pick(r#"{"choices":{"index":0}}"#).unwrap_err().to_string();
        let vec_err = serde_json::from_str::<Vec<u8>>("{}")
            .unwrap_err()
            .to_string();
        assert_eq!(err.split(" at ").next(), vec_err.split(" at ").next());
    }

    #[test]
    fn tool_input_forms() {
        assert_eq!(parse_tool_input(""), json!({}));
        assert_eq!(parse_tool_input("  "), json!({}));
        assert_eq!(
            parse_tool_input("{\"b\":1,\"a\":2}").to_string(),
            "{\"b\":1,\"a\":2}"
        );
        assert_eq!(parse_tool_input("{\"a\":"), json!("{\"a\":"));
    }
}
