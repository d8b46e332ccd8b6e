//! Normalized stream events: the processor's input vocabulary.
//!
//! Every provider adapter turns its wire format into these events, modelled on the AI SDK
//! `fullStream` parts that opencode consumes. They serialize as JSON lines tagged by `type`
//! (`{"type":"text-delta","id":"0","text":"Hel"}`), which is what `tapeloop events` prints.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token usage of one model response, normalized across providers.
///
/// The split is disjoint: `input` excludes cache reads and writes, `output` excludes reasoning.
/// Each adapter maps its provider's accounting onto this (see
/// `reference/provider-stream-notes.md`), so totals and costs compare across providers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Prompt tokens billed at the input price (cache reads and writes excluded).
    pub input: u64,
    /// Completion tokens excluding reasoning.
    pub output: u64,
    /// Reasoning/thinking tokens (billed at the output price).
    pub reasoning: u64,
    /// Prompt tokens served from the provider's cache.
    pub cache_read: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
}

impl Usage {
    /// All tokens, each counted once.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.reasoning + self.cache_read + self.cache_write
    }

    /// Field-wise sum.
    pub fn add(&mut self, other: &Usage) {
        self.input += other.input;
        self.output += other.output;
        self.reasoning += other.reasoning;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
    }

    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }
}

/// Why a model response ended, in the AI SDK v5 vocabulary. The provider's own value is kept
/// beside it as `raw_finish_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Error,
    Other,
    Unknown,
}

impl FinishReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content-filter",
            FinishReason::ToolCalls => "tool-calls",
            FinishReason::Error => "error",
            FinishReason::Other => "other",
            FinishReason::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for FinishReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure a provider error is. Retry policies decide on this plus `retryable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// 429 or a rate-limit error body.
    RateLimited,
    /// 529, 503 "overloaded", Anthropic `overloaded_error`, Gemini `UNAVAILABLE`.
    Overloaded,
    /// Other 5xx.
    Server,
    /// 401/403, invalid API key.
    Auth,
    /// 400/404/422 and other client errors that a retry cannot fix.
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextOverflow,
    /// The provider refused on safety grounds.
    ContentFilter,
    /// Connection reset, timeout, or a stream cut off before its terminal event.
    Network,
    /// The stream could not be decoded (a payload that is not the provider's JSON).
    Protocol,
}

impl ErrorClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate-limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Server => "server",
            ErrorClass::Auth => "auth",
            ErrorClass::InvalidRequest => "invalid-request",
            ErrorClass::ContextOverflow => "context-overflow",
            ErrorClass::ContentFilter => "content-filter",
            ErrorClass::Network => "network",
            ErrorClass::Protocol => "protocol",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified provider or transport error: an HTTP error response, an in-stream error event,
/// or a stream that ended without its terminal event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderError {
    pub class: ErrorClass,
    /// HTTP status for error responses; `None` for in-stream and network errors.
    pub status: Option<u16>,
    pub message: String,
    /// Whether the provider (status, headers such as `x-should-retry`, or body) says a retry may
    /// succeed.
    pub retryable: bool,
    /// The wait the server asked for, in ms (`retry-after-ms`, `retry-after` seconds or HTTP
    /// date, Gemini `RetryInfo.retryDelay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The provider's own error code/type (`overloaded_error`, `rate_limit_exceeded`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A complete tool call: what the model asked for, as a stream ends it
/// ([`StreamEvent::ToolCall`]) and as the conversation keeps it
/// ([`crate::conversation::AssistantPart::ToolCall`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub tool: String,
    /// The parsed arguments, key order as the model wrote them.
    pub input: Value,
    /// Server-side tools (web search, code execution) run by the provider itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provider_executed: bool,
    /// Provider data to send back with the call (Gemini `thoughtSignature`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// One normalized stream event.
///
/// Ids (`id`) are stream-local block ids chosen by the adapter (the provider's index or item id)
/// and only pair `*-start`/`*-delta`/`*-end` events; tool calls use the provider's call id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StreamEvent {
    /// A model response began (sent once per response, before anything else).
    StartStep,
    TextStart {
        id: String,
    },
    TextDelta {
        id: String,
        text: String,
    },
    TextEnd {
        id: String,
    },
    /// A refusal streamed by the model (OpenAI `delta.refusal`, Responses `refusal.delta`).
    RefusalDelta {
        id: String,
        text: String,
    },
    /// Reasoning/thinking began. `metadata` carries provider data that must round-trip
    /// verbatim to the next request (redacted thinking `data`, encrypted reasoning, item ids).
    ReasoningStart {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
    },
    ReasoningDelta {
        id: String,
        text: String,
    },
    /// Reasoning ended; `metadata` carries the final signature (`signature`,
    /// `thoughtSignature`, `encrypted_content`) when the provider sends one.
    ReasoningEnd {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
    },
    /// A tool call's arguments began streaming.
    ToolInputStart {
        id: String,
        tool: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        provider_executed: bool,
    },
    ToolInputDelta {
        id: String,
        delta: String,
    },
    ToolInputEnd {
        id: String,
    },
    /// A complete tool call with parsed arguments (key order as the model wrote them).
    ToolCall(ToolCall),
    /// The result of a provider-executed tool (web search results, code execution output).
    /// Results of client tools come from the tool executor, never from the provider.
    ToolResult {
        id: String,
        tool: String,
        output: Value,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    /// The response finished. `usage` is final for the response.
    FinishStep {
        finish_reason: FinishReason,
        /// The provider's own finish/stop reason (`end_turn`, `tool_calls`, `STOP`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw_finish_reason: Option<String>,
        usage: Usage,
    },
    /// The request failed: an HTTP error, an in-stream error, or a cut-off stream.
    Error(ProviderError),
}

impl StreamEvent {
    /// The `type` tag as it appears in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            StreamEvent::StartStep => "start-step",
            StreamEvent::TextStart { .. } => "text-start",
            StreamEvent::TextDelta { .. } => "text-delta",
            StreamEvent::TextEnd { .. } => "text-end",
            StreamEvent::RefusalDelta { .. } => "refusal-delta",
            StreamEvent::ReasoningStart { .. } => "reasoning-start",
            StreamEvent::ReasoningDelta { .. } => "reasoning-delta",
            StreamEvent::ReasoningEnd { .. } => "reasoning-end",
            StreamEvent::ToolInputStart { .. } => "tool-input-start",
            StreamEvent::ToolInputDelta { .. } => "tool-input-delta",
            StreamEvent::ToolInputEnd { .. } => "tool-input-end",
            StreamEvent::ToolCall(ToolCall { .. }) => "tool-call",
            StreamEvent::ToolResult { .. } => "tool-result",
            StreamEvent::FinishStep { .. } => "finish-step",
            StreamEvent::Error(_) => "error",
        }
    }
}

/// How a response body ended (the cassette's `end.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndOutcome {
    /// The server closed the body normally.
    Complete,
    /// The connection dropped mid-stream.
    Reset,
    /// No byte arrived within the read timeout.
    Timeout,
    /// The client gave up (Ctrl-C, abort).
    Aborted,
}

impl EndOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndOutcome::Complete => "complete",
            EndOutcome::Reset => "reset",
            EndOutcome::Timeout => "timeout",
            EndOutcome::Aborted => "aborted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_json_lines() {
        let ev = StreamEvent::TextDelta {
            id: "0".into(),
            text: "Hel".into(),
        };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"type":"text-delta","id":"0","text":"Hel"}"#
        );
        let err = StreamEvent::Error(ProviderError {
            class: ErrorClass::RateLimited,
            status: Some(429),
            message: "slow down".into(),
            retryable: true,
            retry_after_ms: Some(3000),
            code: None,
        });
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(
            json,
            r#"{"type":"error","class":"rate-limited","status":429,"message":"slow down","retryable":true,"retry_after_ms":3000}"#
        );
        let back: StreamEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, err);
    }

    #[test]
    fn finish_step_round_trips() {
        let ev = StreamEvent::FinishStep {
            finish_reason: FinishReason::ToolCalls,
            raw_finish_reason: Some("tool_use".into()),
            usage: Usage {
                input: 10,
                output: 5,
                reasoning: 2,
                cache_read: 100,
                cache_write: 0,
            },
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.starts_with(r#"{"type":"finish-step","finish_reason":"tool-calls""#));
        assert_eq!(serde_json::from_str::<StreamEvent>(&json).unwrap(), ev);
    }

    #[test]
    fn usage_total_counts_each_bucket_once() {
        let mut u = Usage {
            input: 1,
            output: 2,
            reasoning: 3,
            cache_read: 4,
            cache_write: 5,
        };
        assert_eq!(u.total(), 15);
        u.add(&u.clone());
        assert_eq!(u.total(), 30);
    }
}
