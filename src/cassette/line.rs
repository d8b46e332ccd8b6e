//! Parsing one cassette line: the fast path for lines tapeloop wrote (mirror structs that skip
//! serde's buffering of internally tagged enums), the generic path, the header checks, and the
//! diagnosis that turns a serde error into an [`ErrorKind`] with a readable message.

use serde_json::Value;

use super::{
    chunk_line, ChunkLine, EndLine, ErrorKind, Header, Line, Request, RequestBody, RequestLine,
    ResponseHead, ResponseLine, FORMAT, VERSION,
};

/// Parse one cassette line. `Line` is internally tagged, which serde can only decode by
/// buffering the whole object into an intermediate tree first (every string and the request
/// body allocated twice). Lines written by tapeloop put `kind` first, so the frequent kinds are
/// decoded straight into mirror structs that also require exactly one `kind`; anything else
/// (another key order, a malformed line) takes the generic path, which also produces the
/// error messages. Both paths accept the same lines and build the same values.
pub(super) fn parse_line(bytes: &[u8]) -> serde_json::Result<Line> {
    fast_line(bytes).map_or_else(|| serde_json::from_slice::<Line>(bytes), Ok)
}

fn fast_line(bytes: &[u8]) -> Option<Line> {
    let rest = bytes.strip_prefix(br#"{"kind":""#)?;
    let kind_end = memchr::memchr(b'"', rest)?;
    match &rest[..kind_end] {
        b"chunk" => chunk_line::parse(bytes).map(Line::Chunk).or_else(|| {
            serde_json::from_slice::<fast::Chunk>(bytes)
                .ok()
                .filter(|l| l.kind == "chunk")
                .map(|l| {
                    Line::Chunk(ChunkLine {
                        id: l.id,
                        ms: l.ms,
                        data: l.data,
                        b64: l.b64,
                    })
                })
        }),
        b"request" => serde_json::from_slice::<fast::Request>(bytes)
            .ok()
            .filter(|l| l.kind == "request")
            .map(|l| {
                Line::Request(RequestLine {
                    id: l.id,
                    step: l.step,
                    attempt: l.attempt,
                    request: Request {
                        method: l.method,
                        url: l.url,
                        headers: l.headers,
                        body: l
                            .body
                            .map(|raw| RequestBody::from_raw(raw.to_owned()))
                            .unwrap_or_default(),
                        body_b64: l.body_b64,
                    },
                })
            }),
        b"response" => serde_json::from_slice::<fast::Response>(bytes)
            .ok()
            .filter(|l| l.kind == "response")
            .map(|l| {
                Line::Response(ResponseLine {
                    id: l.id,
                    head: ResponseHead {
                        status: l.status,
                        headers: l.headers,
                        ms: l.ms,
                    },
                })
            }),
        b"end" => serde_json::from_slice::<fast::End>(bytes)
            .ok()
            .filter(|l| l.kind == "end")
            .map(|l| {
                Line::End(EndLine {
                    id: l.id,
                    ms: l.ms,
                    outcome: l.outcome,
                })
            }),
        _ => None,
    }
}

/// Mirrors of [`ChunkLine`], [`RequestLine`], [`ResponseLine`] and [`EndLine`] with the
/// `kind` tag as a required field (so a duplicate or missing `kind` is an error, as with the
/// tagged enum). Field types and defaults must match the originals. They are flat on purpose:
/// `#[serde(flatten)]` would buffer the line as the tagged enum does (the cost this path
/// avoids) and cannot hand out the request body as a borrowed `RawValue`.
mod fast {
    use std::borrow::Cow;

    use serde::Deserialize;

    use crate::event::EndOutcome;
    use crate::http::Headers;

    #[derive(Deserialize)]
    pub struct Chunk<'a> {
        #[serde(borrow)]
        pub kind: Cow<'a, str>,
        pub id: u64,
        pub ms: u64,
        #[serde(default)]
        pub data: Option<String>,
        #[serde(default)]
        pub b64: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Request<'a> {
        #[serde(borrow)]
        pub kind: Cow<'a, str>,
        pub id: u64,
        pub step: u32,
        pub attempt: u32,
        pub method: String,
        pub url: String,
        #[serde(default)]
        pub headers: Headers,
        /// Kept as text: parsed only if something reads it ([`super::RequestBody`]).
        #[serde(default, borrow)]
        pub body: Option<&'a serde_json::value::RawValue>,
        #[serde(default)]
        pub body_b64: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Response<'a> {
        #[serde(borrow)]
        pub kind: Cow<'a, str>,
        pub id: u64,
        pub status: u16,
        #[serde(default)]
        pub headers: Headers,
        #[serde(default)]
        pub ms: u64,
    }

    #[derive(Deserialize)]
    pub struct End<'a> {
        #[serde(borrow)]
        pub kind: Cow<'a, str>,
        pub id: u64,
        pub ms: u64,
        pub outcome: EndOutcome,
    }
}

/// Check line 1 step by step so that the message says what is wrong (a version-2 header is
/// "unknown version 2", not a missing-field error). A header that parses straight into
/// [`Header`] with this format and version is taken as is: every cassette is opened once per
/// replay, and the step-by-step reading through a `Value` cost a tenth of opening one.
pub(super) fn parse_header(bytes: &[u8]) -> Result<Header, ErrorKind> {
    if let Ok(Line::Header(h)) = serde_json::from_slice::<Line>(bytes) {
        if h.format == FORMAT && h.version == VERSION {
            return Ok(h);
        }
    }
    parse_header_in_steps(bytes)
}

fn parse_header_in_steps(bytes: &[u8]) -> Result<Header, ErrorKind> {
    let text = std::str::from_utf8(bytes).map_err(|_| ErrorKind::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(|e| ErrorKind::NotJson {
        detail: short_json_error(&e),
    })?;
    let obj = value.as_object().ok_or(ErrorKind::NotAnObject {
        found: json_type(&value),
    })?;
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => {
            return Err(ErrorKind::NotAnObject {
                found: "an object whose `kind` is not a string",
            })
        }
        None => {
            return Err(ErrorKind::NotAnObject {
                found: "an object without `kind`",
            })
        }
    };
    if kind != "header" {
        return Err(ErrorKind::HeaderNotFirst { found: kind });
    }
    match obj.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(Value::String(f)) => return Err(ErrorKind::NotACassette { format: f.clone() }),
        _ => {
            return Err(ErrorKind::InvalidLine {
                kind: "header",
                detail: "missing string field `format` (expected \"tapeloop-cassette\")".into(),
            })
        }
    }
    match obj.get("version").map(Value::as_u64) {
        Some(Some(VERSION)) => {}
        Some(Some(v)) => return Err(ErrorKind::UnknownVersion(v)),
        _ => {
            return Err(ErrorKind::InvalidLine {
                kind: "header",
                detail: "missing integer field `version` (expected 1)".into(),
            })
        }
    }
    match serde_json::from_value::<Line>(value) {
        Ok(Line::Header(h)) => Ok(h),
        Ok(_) => unreachable!("kind was checked to be header"),
        Err(e) => Err(ErrorKind::InvalidLine {
            kind: "header",
            detail: short_json_error(&e),
        }),
    }
}

/// Explain why a line did not parse as a [`Line`].
pub(super) fn diagnose(bytes: &[u8], err: serde_json::Error) -> ErrorKind {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return ErrorKind::NotUtf8;
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return ErrorKind::NotJson {
                detail: short_json_error(&e),
            }
        }
    };
    let Some(obj) = value.as_object() else {
        return ErrorKind::NotAnObject {
            found: json_type(&value),
        };
    };
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => {
            return ErrorKind::NotAnObject {
                found: "an object whose `kind` is not a string",
            }
        }
        None => {
            return ErrorKind::NotAnObject {
                found: "an object without `kind`",
            }
        }
    };
    let known = [
        "header", "request", "response", "chunk", "end", "tool", "footer",
    ];
    match known.iter().find(|k| **k == kind) {
        Some(k) => ErrorKind::InvalidLine {
            kind: k,
            detail: short_json_error(&err),
        },
        None => ErrorKind::UnknownKind(kind.chars().take(64).collect()),
    }
}

/// serde_json's message without its " at line 1 column N" suffix (the cassette line is ours).
fn short_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The fast path never accepts a line the generic path rejects, and builds the same value
    /// whenever it accepts one.
    fn assert_paths_agree(line: &[u8]) {
        let generic = serde_json::from_slice::<Line>(line);
        match (fast_line(line), generic) {
            (Some(fast), Ok(generic)) => {
                assert_eq!(fast, generic, "{}", String::from_utf8_lossy(line))
            }
            (Some(fast), Err(e)) => panic!(
                "fast path accepted a line the generic path rejects ({e}): {}\n{fast:?}",
                String::from_utf8_lossy(line)
            ),
            (None, _) => {}
        }
    }

    #[test]
    fn fast_and_generic_paths_agree_on_every_bundled_line() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings");
        let mut fast_hits = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            for line in std::fs::read(&path).unwrap().split(|&b| b == b'\n') {
                assert_paths_agree(line);
                fast_hits += usize::from(fast_line(line).is_some());
            }
        }
        assert!(
            fast_hits > 1000,
            "the fast path was hardly used: {fast_hits}"
        );
    }

    /// The direct parse of a header accepts exactly what the step-by-step one does, and
    /// builds the same header; what it declines gets the step-by-step error.
    #[test]
    fn header_shortcut_agrees_with_the_steps() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings");
        let mut headers: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .map(|p| {
                std::fs::read(p)
                    .unwrap()
                    .split(|&b| b == b'\n')
                    .next()
                    .unwrap()
                    .to_vec()
            })
            .collect();
        assert!(headers.len() > 20);
        let h = r#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"openai-chat""#;
        for tail in [
            r#"}"#,
            r#","model":"m","model":"n"}"#,
            r#","x":1,"x":{"y":[1,2.5]}}"#,
            r#","kind":"header"}"#,
            r#","version":2}"#,
            r#","version":1.0}"#,
            r#","format":"other"}"#,
            r#","redacted":"no"}"#,
            r#","extra":1e400}"#,
            r#","provider":null,"scenario":"s","recorded_at":"t"}"#,
        ] {
            headers.push(format!("{h}{tail}").into_bytes());
        }
        headers.push(
            br#"{"format":"tapeloop-cassette","version":1,"api":"gemini","kind":"header"}"#
                .to_vec(),
        );
        headers.push(
            br#"{"kind":"header","format":"tapeloop-cassette","version":2,"api":"nope"}"#.to_vec(),
        );
        headers.push(br#"{"kind":"request","format":"tapeloop-cassette","version":1}"#.to_vec());
        headers.push(b"not json".to_vec());
        for bytes in headers {
            let quick = parse_header(&bytes).map_err(|e| e.to_string());
            let steps = parse_header_in_steps(&bytes).map_err(|e| e.to_string());
            assert_eq!(quick, steps, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn fast_and_generic_paths_agree_on_awkward_chunks() {
        for line in [
            r#"{"kind":"chunk","id":1,"ms":2,"data":"data: {\"a\":\"\u00e9\ud83d\ude00\"}\n\n"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"lone \ud800 surrogate"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":null,"b64":"eA=="}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":5}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"x","data":"y"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"x","kind":"end"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"tab	raw"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"unterminated}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"\q"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"a"} trailing"#,
        ] {
            assert_paths_agree(line.as_bytes());
        }
        // The common case does take the fast path.
        assert!(fast_line(br#"{"kind":"chunk","id":1,"ms":2,"data":"a\"b"}"#).is_some());
    }
}
