//! Answering in the shape the client asked for: a `stream: false` request (or Gemini's
//! `:generateContent`) gets the provider's whole JSON body, a streaming request gets a stream,
//! whatever the recording holds.
//!
//! - As recorded when the recording already has the asked shape (a JSON recording is one whose
//!   body starts with `{`; Gemini's streamed JSON array starts with `[`), for error statuses
//!   (they keep their recorded status and body), for a recording without a response head, and
//!   for a recording cut short (the client sees the same cut).
//! - A JSON body **assembled** from a recorded stream's events
//!   ([`crate::provider::reply::assemble_json`]); an in-stream error becomes the provider's
//!   error body with that error's status (500 when it has none).
//! - A stream **built** from a JSON recording's events
//!   ([`crate::provider::reply::stream_from_events`]): SSE, or for Gemini without `alt=sse` the
//!   JSON array that endpoint streams.

use bytes::Bytes;
use serde_json::Value;

use crate::cassette::{End, Interaction};
use crate::event::{EndOutcome, StreamEvent};
use crate::provider::reply::{assemble_json, stream_from_events};
use crate::provider::Api;

/// What the client asked for.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    pub api: Api,
    pub stream: bool,
    /// Gemini streaming: `alt=sse` (else a JSON array).
    pub sse: bool,
    /// The model named by the request, else the cassette's.
    pub model: String,
}

impl Wanted {
    /// From the request path, query and whether the body asks for a stream
    /// ([`body_asks_stream`]).
    pub fn of(
        api: Api,
        path: &str,
        query: Option<&str>,
        body_stream: bool,
        model: String,
    ) -> Wanted {
        let stream = match api {
            Api::Gemini => path.ends_with(":streamGenerateContent"),
            _ => body_stream,
        };
        let sse = api != Api::Gemini
            || query.is_some_and(|q| {
                url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "alt" && v == "sse")
            });
        Wanted {
            api,
            stream,
            sse,
            model,
        }
    }
}

/// Whether a request body asks for a stream (`"stream": true`; Gemini asks in the path).
pub fn body_asks_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}

/// A reshaped answer: status, content type and the body chunks.
pub(super) struct Reshaped {
    pub status: u16,
    pub content_type: &'static str,
    pub chunks: Vec<Bytes>,
    /// `json-from-stream` or `stream-from-json` (the request log's `reply`).
    pub how: &'static str,
}

/// Whether a recording with this status, end and first non-whitespace body byte is reshaped
/// for `wanted` (decided before its body is read: reshaping needs the whole body).
pub(super) fn differs(status: u16, end: Option<End>, first: Option<u8>, wanted: &Wanted) -> bool {
    if status >= 400 || end.is_none_or(|e| e.outcome != EndOutcome::Complete) {
        return false;
    }
    let recorded_json = first == Some(b'{');
    recorded_json == wanted.stream
}

/// The reshaped answer of `inter` for `wanted`, or `None` to play it as recorded.
pub(super) fn reshape(inter: &Interaction, wanted: &Wanted) -> Option<Reshaped> {
    let head = inter.response.as_ref()?;
    let body = inter.body();
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if !differs(head.status, inter.end, first, wanted) {
        return None; // already the asked shape, or an error or a cut, kept as recorded
    }
    let events = inter.decode(wanted.api);
    if wanted.stream {
        let sse = stream_from_events(wanted.api, &wanted.model, &events);
        if wanted.sse {
            return Some(Reshaped {
                status: 200,
                content_type: "text/event-stream",
                chunks: sse,
                how: "stream-from-json",
            });
        }
        return Some(Reshaped {
            status: 200,
            content_type: "application/json; charset=UTF-8",
            chunks: vec![json_array(&sse)],
            how: "stream-from-json",
        });
    }
    let status = events
        .iter()
        .rev()
        .find_map(|e| match e {
            StreamEvent::Error(err) => Some(err.status.unwrap_or(500)),
            _ => None,
        })
        .unwrap_or(200);
    let json = assemble_json(wanted.api, &wanted.model, &events);
    Some(Reshaped {
        status,
        content_type: "application/json",
        chunks: vec![Bytes::from(json.to_string())],
        how: "json-from-stream",
    })
}

/// SSE events (`data: {...}`) as the JSON array Gemini streams without `alt=sse`.
fn json_array(sse: &[Bytes]) -> Bytes {
    let elements: Vec<String> = sse
        .iter()
        .filter_map(|chunk| {
            let text = std::str::from_utf8(chunk).ok()?;
            let data: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            (!data.is_empty()).then_some(data)
        })
        .collect();
    Bytes::from(format!("[{}]", elements.join(",\r\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wanted_reads_stream_from_body_or_gemini_path() {
        // (api, path or Gemini method, query, `"stream": true` in the body) → (stream, SSE)
        #[rustfmt::skip]
        let cases = [
            (Api::OpenAiChat, "/v1/chat/completions", None, true, (true, true)),
            (Api::Anthropic, "/v1/messages", None, false, (false, false)),
            (Api::Gemini, "streamGenerateContent", Some("alt=sse"), false, (true, true)),
            (Api::Gemini, "streamGenerateContent", None, false, (true, false)),
            (Api::Gemini, "generateContent", None, true, (false, false)),
        ];
        for (api, path, query, in_body, (stream, sse)) in cases {
            let path = match api {
                Api::Gemini => format!("/v1beta/models/m:{path}"),
                _ => path.to_string(),
            };
            let body = json!({ "stream": in_body });
            let w = Wanted::of(api, &path, query, body_asks_stream(&body), "m".into());
            assert_eq!(w.stream, stream, "{path} {query:?}");
            if stream {
                assert_eq!(w.sse, sse, "{path} {query:?}");
            }
        }
    }

    #[test]
    fn sse_becomes_a_json_array() {
        let sse = [
            Bytes::from("data: {\"a\":1}\n\n"),
            Bytes::from("data: {\"b\":2}\n\n"),
        ];
        let arr: Value = serde_json::from_slice(&json_array(&sse)).unwrap();
        assert_eq!(arr, json!([{"a": 1}, {"b": 2}]));
        assert_eq!(&json_array(&[])[..], b"[]");
    }
}
