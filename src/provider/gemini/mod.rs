//! Gemini / Vertex `streamGenerateContent`: stream decoding, HTTP error classification, request
//! bodies.
//!
//! Every payload (an SSE `data:` of `alt=sse`, or one element of the streamed JSON array) is a
//! whole `GenerateContentResponse`; only `candidates[0]` is read. There is no terminal event:
//! the stream ends at EOF, and a response is complete only if some chunk carried a
//! `finishReason` (see `reference/provider-stream-notes.md` §5).
//!
//! Mapping choices:
//! - Text and thought parts form blocks with adapter-chosen ids (`"0"`, `"1"`, …); a block
//!   stays open while parts of the same kind follow and closes when another kind arrives.
//! - `thoughtSignature` must round-trip: on a thought part it goes into `reasoning-end`
//!   metadata, on a function call into the `tool-call` metadata, and on a plain text part into
//!   an empty reasoning block emitted just before that text (`request_body` puts it back on
//!   the text part). The key is always `{"thoughtSignature":…}`.
//! - Gemini has no call ids unless the server sends `functionCall.id`: calls get `call_0`,
//!   `call_1`, … in stream order.
//! - Vertex streamed arguments (`partialArgs` with JSON paths) are assembled into the argument
//!   object; a `functionCall` without `willContinue: true` (the empty terminator, or the last
//!   partial chunk when the terminator is missing) completes the call, as does the
//!   `finishReason` chunk or the end of a finished stream.
//! - Usage is cumulative on every chunk, "last value wins" per field: input =
//!   `promptTokenCount − cachedContentTokenCount + toolUsePromptTokenCount` (grounding/search
//!   tool prompts are billed as input and counted in `totalTokenCount`), cache_read =
//!   `cachedContentTokenCount`, output = `candidatesTokenCount` (which excludes thoughts),
//!   reasoning = `thoughtsTokenCount`. So `Usage::total()` equals `totalTokenCount`.

mod decode;
mod error;
mod request;

pub use decode::Decoder;
pub use error::classify_error;
pub use request::request_body;

use serde::Deserialize;
use serde_json::{Number, Value};

// ---------------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    candidates: Option<FirstCandidate>,
    usage_metadata: Option<UsageMetadata>,
    /// Boxed, like `error`: rare, and out of line they keep `Chunk` small to move.
    prompt_feedback: Option<Box<PromptFeedback>>,
    error: Option<Box<GoogleError>>,
}

/// `candidates`, reduced while parsing to its first element: only `candidates[0]` is read.
/// Every element is still parsed, so a malformed candidate fails the chunk exactly as a `Vec`
/// would, but no `Vec` is built per chunk.
struct FirstCandidate(Option<Candidate>);

impl<'de> Deserialize<'de> for FirstCandidate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FirstCandidate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                // What serde's `Vec` says, so error messages are unchanged.
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(c) = seq.next_element::<Candidate>()? {
                    if first.is_none() {
                        first = Some(c);
                    }
                }
                Ok(FirstCandidate(first))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    parts: Option<Vec<Part>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    thought: Option<bool>,
    thought_signature: Option<String>,
    function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCall {
    id: Option<String>,
    name: Option<String>,
    args: Option<Value>,
    partial_args: Option<Vec<PartialArg>>,
    will_continue: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialArg {
    json_path: Option<String>,
    string_value: Option<String>,
    number_value: Option<Number>,
    bool_value: Option<bool>,
    null_value: Option<Value>,
    struct_value: Option<Value>,
    list_value: Option<Value>,
    will_continue: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// `google.rpc.Status` as Google's JSON error bodies carry it.
#[derive(Deserialize, Default)]
struct GoogleError {
    code: Option<i64>,
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<GoogleError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `candidates` keeps the first element, still parses (and fails on) every element, and
    /// words its errors as serde's `Vec` did.
    #[test]
    fn first_candidate_only() {
        let pick = |json: &str| {
            serde_json::from_str::<Chunk>(json)
                .map(|c| c.candidates.and_then(|c| c.0).and_then(|c| c.finish_reason))
        };
        assert_eq!(
            pick(r#"{"candidates":[{"finishReason":"STOP"},{"finishReason":"MAX_TOKENS"}]}"#)
                .unwrap(),
            Some("STOP".to_string())
        );
        assert_eq!(pick(r#"{"candidates":[]}"#).unwrap(), None);
        assert_eq!(pick(r#"{"candidates":null}"#).unwrap(), None);
        assert!(pick(r#"{"candidates":[{},{"finishReason":7}]}"#).is_err());
        let err = pick(r#"{"candidates":{}}"#).unwrap_err().to_string();
        let vec_err = serde_json::from_str::<Vec<u8>>("{}")
            .unwrap_err()
            .to_string();
        assert_eq!(err.split(" at ").next(), vec_err.split(" at ").next());
    }
}
