//! Cassette format v1 (see `FORMATS.md`): JSONL recordings of provider interactions.
//!
//! One JSON object per line, `kind` first: a `header`, then per HTTP attempt a `request`, its
//! `response` head, its body `chunk`s and an `end`; `tool` lines for tool executions seen while
//! recording; a `footer` with counts and a hash of every byte before it (`blake3`; `sha256` in
//! cassettes written before BLAKE3, still verified: [`footer`]).
//!
//! - [`CassetteReader`] streams a cassette line by line with bounded memory and yields assembled
//!   [`Interaction`]s and [`ToolRecord`]s; [`Cassette::load`] reads a whole file;
//!   [`CassetteStream`] serves one replay in request order without holding the file;
//!   [`CassetteIndex`] keeps everything but the response bodies and reads those back by byte
//!   offset when they are played (`serve`). Every problem is a [`CassetteError`] naming the
//!   file and line.
//! - [`CassetteWriter`] appends and flushes line by line (a crash loses at most the line being
//!   written) and redacts secrets before anything reaches disk ([`Redactor`]).
//! - [`import`] converts vcrpy YAML cassettes.
//!
//! ## Extensions to the v1 format
//!
//! Fields not named in `FORMATS.md` that tapeloop writes (readers must tolerate unknown fields):
//! - `footer.redacted`: the redaction rules that actually removed something while writing (the
//!   header's `redacted` list is written first and so names the rules in force).
//! - Imported cassettes carry `header.imported_from` (the source file name) and
//!   `header.timing = "synthetic"` (vcrpy keeps neither chunking nor timing).
//!
//! A cassette without a footer is *truncated*: the complete interactions are usable, an
//! interaction cut before its `end` is dropped, and [`Truncation`] says which.

mod body;
mod chunk_line;
mod error;
pub mod footer;
pub mod import;
mod index;
mod line;
mod reader;
mod redact;
mod stream;
mod writer;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{EndOutcome, ErrorClass, ProviderError, StreamEvent};
use crate::http::Headers;
use crate::provider::Api;

pub use body::RequestBody;
pub use error::{CassetteError, ErrorKind};
pub use footer::{rewrite_footer, FooterHash, Rewrite};
pub use index::{BodyReader, CassetteIndex, IndexedInteraction};
pub use reader::{Cassette, CassetteReader, Record, Truncation, DEFAULT_MAX_LINE_LEN};
pub use redact::{Redactor, REDACTED};
pub use stream::{CassetteStream, StreamEnd};
pub use writer::CassetteWriter;

/// The `format` value of every cassette header.
pub const FORMAT: &str = "tapeloop-cassette";
/// The only cassette version this build reads and writes.
pub const VERSION: u64 = 1;

/// The first line of a cassette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u64,
    pub api: Api,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<String>,
    /// Redaction rules in force / what was removed (`header:authorization`, `query:key`, ...).
    #[serde(default)]
    pub redacted: Vec<String>,
    /// Fields not named by the format (kept on read, written back on write).
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Header {
    /// A v1 header for `api` with every optional field empty.
    pub fn new(api: Api) -> Self {
        Header {
            format: FORMAT.to_string(),
            version: VERSION,
            api,
            provider: None,
            model: None,
            scenario: None,
            recorded_at: None,
            recorder: Some(format!("tapeloop {}", crate::VERSION)),
            redacted: Vec::new(),
            extra: IndexMap::new(),
        }
    }

    /// The model a run against this cassette reports: the header's, else `fallback` (the
    /// scenario's), else empty.
    pub fn model_or(&self, fallback: Option<&str>) -> String {
        let own = self.model.as_deref().filter(|m| !m.is_empty());
        own.or(fallback).unwrap_or_default().to_string()
    }

    /// The provider a run against this cassette reports: the header's, else `fallback`, else
    /// `unknown`.
    pub fn provider_or(&self, fallback: Option<&str>) -> String {
        (self.provider.as_deref().or(fallback))
            .unwrap_or("unknown")
            .to_string()
    }
}

/// An HTTP request as recorded (headers and URL already redacted on disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Headers,
    /// The JSON request body (`null` for a body-less request), parsed on first use.
    #[serde(default)]
    pub body: RequestBody,
    /// A body that is not JSON, base64 (then `body` is null), as the recording proxy writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_b64: Option<String>,
}

/// The response head: status, headers and ms from sending the request to the headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseHead {
    pub status: u16,
    #[serde(default)]
    pub headers: Headers,
    #[serde(default)]
    pub ms: u64,
}

/// One body read: its ms offset and the exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub ms: u64,
    pub bytes: Vec<u8>,
}

/// How and when the body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub ms: u64,
    pub outcome: EndOutcome,
}

/// A tool execution seen while recording (`tool` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRecord {
    pub step: u32,
    pub call_id: String,
    pub tool: String,
    #[serde(default)]
    pub input: Value,
    /// Usually a string; structured outputs (Gemini `functionResponse.response`) are kept as is.
    #[serde(default)]
    pub output: Value,
    #[serde(default)]
    pub error: bool,
}

/// The last line: counts and a hash of everything before it ([`Footer::hash`] says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    pub interactions: u64,
    pub lines: u64,
    /// Hex BLAKE3 of every byte before the footer: what tapeloop writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Hex SHA-256 of the same bytes: the older form, verified when `blake3` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Extension: redaction rules that removed something (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<Vec<String>>,
}

/// One HTTP attempt, assembled from its `request`, `response`, `chunk` and `end` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: u64,
    pub step: u32,
    pub attempt: u32,
    pub request: Request,
    /// `None` when the connection failed before the response head arrived.
    pub response: Option<ResponseHead>,
    pub chunks: Vec<Chunk>,
    pub end: Option<End>,
}

impl Interaction {
    /// The body bytes, all chunks joined.
    pub fn body(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|c| c.bytes.iter().copied())
            .collect()
    }

    /// Decode this attempt through `api`'s adapter, exactly as replay does. Without a response
    /// head the attempt failed at the network level and yields one `network` error.
    /// Decode a 2xx response the way a replay does and say whether a limit
    /// ([`crate::limits`]) stops it: what `check` reports and `run` refuses.
    pub fn check_decodable(&self, api: Api) -> Result<(), crate::limits::LimitError> {
        let Some(head) = &self.response else {
            return Ok(());
        };
        if !(200..300).contains(&head.status) {
            return Ok(());
        }
        let mut decoder = crate::provider::ResponseDecoder::new(api);
        let mut events = Vec::new();
        for c in &self.chunks {
            decoder.feed(&c.bytes, &mut events);
            // Only the limit matters here: the events are dropped as they come.
            events.clear();
            if let Some(e) = decoder.limit_exceeded() {
                return Err(e.clone());
            }
        }
        let outcome = self.end.map(|e| e.outcome).unwrap_or(EndOutcome::Reset);
        decoder.finish(outcome, &mut events);
        decoder.limit_exceeded().map_or(Ok(()), |e| Err(e.clone()))
    }

    pub fn decode(&self, api: Api) -> Vec<StreamEvent> {
        let outcome = self.end.map(|e| e.outcome).unwrap_or(EndOutcome::Reset);
        match &self.response {
            Some(head) => crate::provider::decode_response(
                api,
                head.status,
                &head.headers,
                self.chunks.iter().map(|c| c.bytes.as_slice()),
                outcome,
            ),
            None => vec![StreamEvent::Error(ProviderError {
                class: ErrorClass::Network,
                status: None,
                message: format!(
                    "no response: the connection ended ({}) before the response headers",
                    outcome.as_str()
                ),
                retryable: true,
                retry_after_ms: None,
                code: None,
            })],
        }
    }
}

/// One cassette line, tagged by `kind` (written first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    Header(Header),
    Request(RequestLine),
    Response(ResponseLine),
    Chunk(ChunkLine),
    End(EndLine),
    Tool(ToolRecord),
    Footer(Footer),
}

impl Line {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Line::Header(_) => "header",
            Line::Request(_) => "request",
            Line::Response(_) => "response",
            Line::Chunk(_) => "chunk",
            Line::End(_) => "end",
            Line::Tool(_) => "tool",
            Line::Footer(_) => "footer",
        }
    }
}

/// A `request` line: the attempt's ids, then the [`Request`]'s fields at the same level.
///
/// `flatten` buffers the line through serde's intermediate tree, which the tagged [`Line`]
/// does anyway; lines tapeloop wrote take the reader's fast path instead (`line.rs`), which
/// keeps the body as raw text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    pub id: u64,
    pub step: u32,
    pub attempt: u32,
    #[serde(flatten)]
    pub request: Request,
}

/// A `response` line: the attempt's id, then the [`ResponseHead`]'s fields (as [`RequestLine`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseLine {
    pub id: u64,
    #[serde(flatten)]
    pub head: ResponseHead,
}

/// A `chunk` line: exactly one of `data` (UTF-8 text) and `b64` (base64 bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkLine {
    pub id: u64,
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64: Option<String>,
}

/// An `end` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndLine {
    pub id: u64,
    pub ms: u64,
    pub outcome: EndOutcome,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_serialize_kind_first_and_round_trip() {
        let mut h = Header::new(Api::OpenAiChat);
        h.extra
            .insert("imported_from".into(), Value::from("x.yaml"));
        let line = Line::Header(h);
        let json = serde_json::to_string(&line).unwrap();
        assert!(
            json.starts_with(
                r#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"openai-chat""#
            ),
            "{json}"
        );
        assert!(json.contains(r#""imported_from":"x.yaml""#));
        assert_eq!(serde_json::from_str::<Line>(&json).unwrap(), line);

        let chunk = Line::Chunk(ChunkLine {
            id: 1,
            ms: 5,
            data: Some("data: x\n\n".into()),
            b64: None,
        });
        let json = serde_json::to_string(&chunk).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"chunk","id":1,"ms":5,"data":"data: x\n\n"}"#
        );
    }

    /// The nested request and response head are written and read at the line's own level,
    /// with serde's usual messages.
    #[test]
    fn request_and_response_lines_are_flat() {
        for json in [
            r#"{"kind":"request","id":1,"step":2,"attempt":1,"method":"POST","url":"u","headers":{},"body":{"a":1}}"#,
            r#"{"kind":"request","id":1,"step":2,"attempt":1,"method":"POST","url":"u","headers":{},"body":null,"body_b64":"eA=="}"#,
            r#"{"kind":"response","id":1,"status":200,"headers":{"a":"b"},"ms":3}"#,
        ] {
            let line: Line = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&line).unwrap(), json);
        }
        for (json, message) in [
            (
                r#"{"kind":"request","id":1,"step":1,"attempt":1,"url":"u"}"#,
                "missing field `method`",
            ),
            (
                r#"{"kind":"request","id":1,"step":1,"attempt":1,"method":"a","method":"b","url":"u"}"#,
                "duplicate field `method`",
            ),
            (
                r#"{"kind":"response","id":1,"status":"200"}"#,
                "invalid type: string \"200\", expected u16",
            ),
        ] {
            let err = serde_json::from_str::<Line>(json).unwrap_err().to_string();
            assert!(err.starts_with(message), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let line: Line = serde_json::from_str(
            r#"{"kind":"end","id":3,"ms":9,"outcome":"reset","future":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(
            line,
            Line::End(EndLine {
                id: 3,
                ms: 9,
                outcome: EndOutcome::Reset
            })
        );
    }
}
