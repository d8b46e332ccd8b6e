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
//! This module holds the wire JSON types (borrowed where the JSON has no escapes) and the
//! helpers shared with the Responses adapter (tool-argument parsing, lenient token counts);
//! `decode` is the stream decoder, `error` OpenAI's error classification (also shared with
//! the Responses adapter, since both speak OpenAI's error format), `request` the request body.

mod decode;
mod error;
mod fast;
mod request;

pub use decode::{map_finish_reason, Decoder};
pub(crate) use error::{classify, ErrorFields};
pub use error::{classify_error, retry_after_from_text};
pub use request::request_body;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::event::{StreamEvent, ToolCall, Usage};

// ---------------------------------------------------------------------------------------------
// Wire types (borrowed where the JSON has no escapes, so a plain text delta costs no copy)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
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
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
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

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
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
#[cfg_attr(test, derive(Debug, PartialEq))]
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
#[cfg_attr(test, derive(Debug, PartialEq))]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<ArgsFragment<'a>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct XGroq {
    #[serde(default)]
    usage: Option<ChatUsage>,
}

/// Chat usage as OpenAI and the compatible servers report it.
#[derive(Deserialize, Default, Clone, Copy, Debug)]
#[cfg_attr(test, derive(PartialEq))]
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
#[cfg_attr(test, derive(PartialEq))]
struct PromptDetails {
    #[serde(default, deserialize_with = "lenient_u64")]
    cached_tokens: Option<u64>,
    /// OpenRouter (Anthropic/Bedrock upstreams).
    #[serde(default, deserialize_with = "lenient_u64")]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy, Debug)]
#[cfg_attr(test, derive(PartialEq))]
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
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
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
#[cfg_attr(test, derive(Debug, PartialEq))]
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

/// Close a streamed function call: its `ToolInputEnd`, then the `ToolCall` with the arguments
/// parsed ([`parse_tool_input`]).
pub(crate) fn end_function_call(
    id: String,
    tool: String,
    args: &str,
    metadata: Option<Value>,
    out: &mut Vec<StreamEvent>,
) {
    out.push(StreamEvent::ToolInputEnd { id: id.clone() });
    out.push(StreamEvent::ToolCall(ToolCall {
        input: parse_tool_input(args),
        id,
        tool,
        provider_executed: false,
        metadata,
    }));
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
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
