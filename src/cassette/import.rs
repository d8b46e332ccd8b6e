//! Import of vcrpy YAML cassettes (pydantic-ai, mirascope, llm-anthropic, llm-gemini styles).
//!
//! `interactions: [{request: {body | parsed_body, headers, method, uri}, response: {status:
//! {code, message}, headers, body: {string} | parsed_body}}]`, header values as lists, gzip
//! bodies as `!!binary` base64.
//!
//! What the conversion does, and what it cannot recover:
//! - One interaction per recorded request. `step` counts requests; a request identical to the
//!   previous one (method, URI, body) is taken as a retry: same `step`, `attempt` + 1.
//! - vcrpy stores each body as one string, so the real chunking and timing are lost. The body
//!   is split after every blank line (SSE event boundaries; one chunk for other bodies), and
//!   `ms` offsets are synthetic: response head at 0, chunk *k* at *k* ms. The header says so
//!   with `timing: "synthetic"` and names the source in `imported_from`.
//! - gzip bodies are gunzipped; the response's `content-encoding` and `content-length`
//!   headers are then dropped because they no longer describe the stored bytes. A
//!   `parsed_body` (pydantic-ai's JSON bodies) is re-serialised compactly.
//! - Tool results are recovered from the *next* request's history (`role:"tool"` messages,
//!   Anthropic `tool_result` blocks, Gemini `functionResponse` parts, Responses
//!   `function_call_output` items), each written as a `tool` line before that request, with
//!   the name and arguments of the matching call. Gemini calls without ids get a synthetic
//!   `call_id` (`<name>#<n>`).
//! - Redaction applies as for any cassette: everything goes through [`CassetteWriter`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexSet;
use serde_json::Value;
use serde_yaml::Value as Yaml;

use super::{
    CassetteWriter, Chunk, End, Header, Interaction, Record, Redactor, Request, ResponseHead,
    ToolRecord,
};
use crate::event::EndOutcome;
use crate::http::Headers;
use crate::provider::tool_results::tool_results;
use crate::provider::wire::{api_from_uri, provider_from_host};

/// Largest body accepted after gunzip (a gzip bomb is an error, not an OOM).
const MAX_BODY: u64 = 512 << 20;

/// Why a vcrpy cassette could not be imported.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|l| l.to_string()).unwrap_or_default())]
pub struct ImportError {
    pub path: PathBuf,
    pub location: Option<Location>,
    pub message: String,
}

/// Where in the YAML file a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A YAML syntax error at this 1-based line (shown as `path:LINE`).
    Line(usize),
    /// A problem with the N-th (1-based) recorded interaction (shown as `path: interaction N`).
    Interaction(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(l) => write!(f, ":{l}"),
            Location::Interaction(n) => write!(f, ": interaction {n}"),
        }
    }
}

/// A converted cassette, ready to write.
#[derive(Debug, Clone)]
pub struct Imported {
    pub header: Header,
    /// Interactions and recovered tool lines, in write order.
    pub records: Vec<Record>,
    /// Recorded requests left out because they are no model call (`interaction N: GET
    /// URL`), e.g. a model-metadata lookup.
    pub skipped: Vec<String>,
}

impl Imported {
    pub fn interactions(&self) -> impl Iterator<Item = &Interaction> {
        self.records.iter().filter_map(|r| match r {
            Record::Interaction(i) => Some(i),
            Record::Tool(_) => None,
        })
    }

    pub fn tools(&self) -> impl Iterator<Item = &ToolRecord> {
        self.records.iter().filter_map(|r| match r {
            Record::Tool(t) => Some(t),
            Record::Interaction(_) => None,
        })
    }

    /// Write as a v1 cassette (redacted, with footer).
    pub fn write<W: Write>(&self, out: W, redactor: Redactor) -> std::io::Result<W> {
        let mut w = CassetteWriter::new(out, self.header.clone(), redactor)?;
        for r in &self.records {
            match r {
                Record::Interaction(i) => w.write_interaction(i)?,
                Record::Tool(t) => w.write_tool(t)?,
            }
        }
        w.finish()
    }
}

/// Import a vcrpy YAML file; `path` names it in errors and in the header.
pub fn import_yaml(text: &str, path: &Path) -> Result<Imported, ImportError> {
    let err = |location: Option<Location>, message: String| ImportError {
        path: path.to_path_buf(),
        location,
        message,
    };
    let text = mark_binary(text);
    let doc: Yaml = serde_yaml::from_str(&text).map_err(|e| {
        err(
            e.location().map(|l| Location::Line(l.line())),
            format!("not a YAML document: {e}"),
        )
    })?;
    let list = doc
        .get("interactions")
        .and_then(Yaml::as_sequence)
        .ok_or_else(|| {
            err(
                None,
                "expected a vcrpy cassette with an `interactions` list".into(),
            )
        })?;
    if list.is_empty() {
        return Err(err(None, "the cassette has no interactions".into()));
    }

    let mut parsed = Vec::with_capacity(list.len());
    for (n, item) in list.iter().enumerate() {
        let p = parse_interaction(item).map_err(|m| err(Some(Location::Interaction(n + 1)), m))?;
        parsed.push(p);
    }

    let api = parsed
        .iter()
        .find_map(|p| api_from_uri(&p.request.url))
        .ok_or_else(|| {
            err(
                None,
                format!(
                    "cannot tell the wire API from the request URIs (first: {}): expected \
                     /chat/completions, /responses, /messages or :generateContent",
                    parsed[0].request.url
                ),
            )
        })?;
    // Only model calls become interactions; anything else (a metadata GET) is named.
    let mut skipped = Vec::new();
    let parsed: Vec<_> = parsed
        .into_iter()
        .enumerate()
        .filter_map(|(n, p)| {
            if api_from_uri(&p.request.url).is_some() {
                Some(p)
            } else {
                skipped.push(format!(
                    "interaction {}: {} {}",
                    n + 1,
                    p.request.method,
                    p.request.url
                ));
                None
            }
        })
        .collect();
    let Some(first_model_request) = parsed.first() else {
        return Err(err(None, "no interaction is a model call".into()));
    };
    let host = url::Url::parse(&first_model_request.request.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();

    let mut header = Header::new(api);
    header.provider = Some(provider_from_host(&host));
    header.model = parsed.iter().find_map(|p| model_of(&p.request));
    header.recorder = Some(format!("tapeloop {} import", crate::VERSION));
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    header
        .extra
        .insert("imported_from".into(), Value::from(source));
    header
        .extra
        .insert("timing".into(), Value::from("synthetic"));

    let mut records = Vec::new();
    let mut seen_results: IndexSet<String> = IndexSet::new();
    let (mut step, mut attempt) = (0u32, 0u32);
    let mut prev: Option<&Request> = None;
    let mut prev_step = 0u32;
    for (n, p) in parsed.iter().enumerate() {
        let retry = prev.is_some_and(|q| {
            q.method == p.request.method && q.url == p.request.url && q.body == p.request.body
        });
        if retry {
            attempt += 1;
        } else {
            step += 1;
            attempt = 1;
        }
        if n > 0 {
            let req_api = api_from_uri(&p.request.url).unwrap_or(api);
            for t in tool_results(req_api, &p.request.body) {
                if seen_results.insert(t.call_id.clone()) {
                    records.push(Record::Tool(ToolRecord {
                        step: prev_step,
                        call_id: t.call_id,
                        tool: t.tool,
                        input: t.input,
                        output: t.output,
                        error: t.error,
                    }));
                }
            }
        }
        let chunks: Vec<Chunk> = split_events(&p.body)
            .into_iter()
            .enumerate()
            .map(|(k, bytes)| Chunk {
                ms: k as u64 + 1,
                bytes,
            })
            .collect();
        let end_ms = chunks.len() as u64 + 1;
        records.push(Record::Interaction(Interaction {
            id: n as u64 + 1,
            step,
            attempt,
            request: p.request.clone(),
            response: Some(ResponseHead {
                status: p.status,
                headers: p.response_headers.clone(),
                ms: 0,
            }),
            chunks,
            end: Some(End {
                ms: end_ms,
                outcome: EndOutcome::Complete,
            }),
        }));
        prev = Some(&p.request);
        prev_step = step;
    }
    Ok(Imported {
        header,
        records,
        skipped,
    })
}

/// Import `input` and write the cassette to `output` (via a temporary file, so a failed
/// import never leaves a half-written cassette behind).
pub fn import_file(input: &Path, output: &Path) -> Result<Imported, ImportError> {
    let io_err = |p: &Path, e: std::io::Error| ImportError {
        path: p.to_path_buf(),
        location: None,
        message: format!("cannot read or write: {e}"),
    };
    let bytes = std::fs::read(input).map_err(|e| io_err(input, e))?;
    let text = String::from_utf8(bytes).map_err(|_| ImportError {
        path: input.to_path_buf(),
        location: None,
        message: "not UTF-8 text: expected a vcrpy YAML cassette".into(),
    })?;
    let imported = import_yaml(&text, input)?;
    let mut tmp = output.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = std::fs::File::create(&tmp)
        .and_then(|f| imported.write(std::io::BufWriter::new(f), Redactor::new()))
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, output));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(output, e));
    }
    Ok(imported)
}

/// One vcrpy interaction, decoded.
struct Parsed {
    request: Request,
    status: u16,
    response_headers: Headers,
    body: Vec<u8>,
}

fn parse_interaction(item: &Yaml) -> Result<Parsed, String> {
    let req = item.get("request").ok_or("expected a `request` mapping")?;
    let resp = item
        .get("response")
        .ok_or("expected a `response` mapping")?;
    let method = req
        .get("method")
        .and_then(Yaml::as_str)
        .ok_or("request has no string `method`")?
        .to_string();
    let url = req
        .get("uri")
        .and_then(Yaml::as_str)
        .ok_or("request has no string `uri`")?
        .to_string();
    let body = if let Some(pb) = req.get("parsed_body") {
        yaml_to_json(pb)?
    } else {
        match req.get("body") {
            None => Value::Null,
            Some(b) => match body_bytes(b)? {
                None => Value::Null,
                Some(bytes) if bytes.is_empty() => Value::Null,
                Some(bytes) => {
                    let bytes = maybe_gunzip(bytes)?.0;
                    match serde_json::from_slice::<Value>(&bytes) {
                        Ok(v) => v,
                        Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                    }
                }
            },
        }
    };
    let request = Request {
        method,
        url,
        headers: headers(req.get("headers"))?,
        body: body.into(),
        body_b64: None,
    };
    let status = match resp.get("status") {
        Some(s) => s.get("code").unwrap_or(s).as_u64(),
        None => None,
    }
    .and_then(|c| u16::try_from(c).ok())
    .filter(|c| (100..=999).contains(c))
    .ok_or("response has no valid `status.code`")?;
    let mut response_headers = headers(resp.get("headers"))?;
    let (body, gunzipped) = if let Some(pb) = resp.get("parsed_body") {
        let v = yaml_to_json(pb)?;
        (serde_json::to_vec(&v).map_err(|e| e.to_string())?, false)
    } else {
        match resp.get("body") {
            None => (Vec::new(), false),
            Some(b) => maybe_gunzip(body_bytes(b)?.unwrap_or_default())?,
        }
    };
    if gunzipped {
        response_headers.0.retain(|k, _| {
            !k.eq_ignore_ascii_case("content-encoding") && !k.eq_ignore_ascii_case("content-length")
        });
    }
    Ok(Parsed {
        request,
        status,
        response_headers,
        body,
    })
}

/// vcrpy header maps: values are lists of strings (joined with ", "), or single scalars.
fn headers(v: Option<&Yaml>) -> Result<Headers, String> {
    let mut out = Headers::new();
    let Some(v) = v else { return Ok(out) };
    if v.is_null() {
        return Ok(out);
    }
    let map = v.as_mapping().ok_or("headers must be a mapping")?;
    for (k, val) in map {
        let name = scalar_string(k).ok_or("a header name is not a string")?;
        let value = match val {
            Yaml::Sequence(items) => items
                .iter()
                .filter_map(scalar_string)
                .collect::<Vec<_>>()
                .join(", "),
            other => scalar_string(other).unwrap_or_default(),
        };
        out.insert(name, value);
    }
    Ok(out)
}

fn scalar_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        Yaml::Tagged(t) => scalar_string(&t.value),
        _ => None,
    }
}

/// serde_yaml resolves the core `!!binary` tag away (the value arrives as a plain base64
/// string), so before parsing, `!!binary` in tag position is renamed to a local tag that
/// survives as [`Yaml::Tagged`].
const BINARY_TAG: &str = "tapeloop-binary";

fn mark_binary(text: &str) -> std::borrow::Cow<'_, str> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?m)^([ \t]*(?:-[ \t]+)?[A-Za-z_][A-Za-z0-9_-]*:[ \t]+|[ \t]*-[ \t]+)!!binary([ \t]|$)")
            .expect("valid regex")
    });
    re.replace_all(text, format!("${{1}}!{BINARY_TAG}${{2}}"))
}

/// The bytes of a vcrpy body: a string, a `!!binary` (base64) scalar, or `{string: ...}`.
fn body_bytes(v: &Yaml) -> Result<Option<Vec<u8>>, String> {
    match v {
        Yaml::Null => Ok(None),
        Yaml::String(s) => Ok(Some(s.clone().into_bytes())),
        Yaml::Tagged(t) if t.tag == serde_yaml::value::Tag::new(BINARY_TAG) => {
            let s = t
                .value
                .as_str()
                .ok_or("a `!!binary` body is not a string")?;
            let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map(Some)
                .map_err(|e| format!("a `!!binary` body is not base64: {e}"))
        }
        Yaml::Tagged(t) => body_bytes(&t.value),
        Yaml::Mapping(_) => match v.get("string") {
            Some(s) => body_bytes(s),
            None => Ok(None),
        },
        _ => Err("a body is neither a string nor a mapping with `string`".into()),
    }
}

/// Gunzip when the bytes are gzip (vcrpy keeps `Content-Encoding: gzip` bodies compressed).
fn maybe_gunzip(bytes: Vec<u8>) -> Result<(Vec<u8>, bool), String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok((bytes, false));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .take(MAX_BODY + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("a gzip body does not decompress: {e}"))?;
    if out.len() as u64 > MAX_BODY {
        return Err(format!("a gzip body decompresses to over {MAX_BODY} bytes"));
    }
    Ok((out, true))
}

/// YAML to JSON for `parsed_body`.
fn yaml_to_json(v: &Yaml) -> Result<Value, String> {
    Ok(match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(m) => {
            let mut obj = serde_json::Map::new();
            for (k, val) in m {
                let key = scalar_string(k).ok_or("a mapping key is not a scalar")?;
                obj.insert(key, yaml_to_json(val)?);
            }
            Value::Object(obj)
        }
        Yaml::Tagged(t) => yaml_to_json(&t.value)?,
    })
}

/// Split a body after every blank line (the end of each SSE event). Bodies without blank
/// lines stay one chunk. Joining the chunks gives the body back byte for byte.
pub fn split_events(body: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let (mut start, mut line_start, mut i) = (0usize, 0usize, 0usize);
    while i < body.len() {
        let b = body[i];
        if b == b'\n' || b == b'\r' {
            let next = if b == b'\r' && body.get(i + 1) == Some(&b'\n') {
                i + 2
            } else {
                i + 1
            };
            if line_start == i && i > start {
                chunks.push(body[start..next].to_vec());
                start = next;
            }
            line_start = next;
            i = next;
        } else {
            i += 1;
        }
    }
    if start < body.len() {
        chunks.push(body[start..].to_vec());
    }
    chunks
}

fn model_of(r: &Request) -> Option<String> {
    if let Some(m) = r.body.get("model").and_then(Value::as_str) {
        return Some(m.to_string());
    }
    let path = url::Url::parse(&r.url).ok()?.path().to_string();
    let after = path.split("/models/").nth(1)?;
    let model = after.split(':').next()?;
    (!model.is_empty()).then(|| model.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte_and_cuts_after_blank_lines() {
        let body = b"event: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\ndata: 3\n\n: c\n\ntail";
        let chunks = split_events(body);
        assert_eq!(chunks.concat(), body);
        assert_eq!(
            chunks,
            [
                b"event: a\ndata: 1\n\n".to_vec(),
                b"event: b\r\ndata: 2\r\n\r\n".to_vec(),
                b"data: 3\n\n".to_vec(),
                b": c\n\n".to_vec(),
                b"tail".to_vec()
            ]
        );
        assert_eq!(
            split_events(b"{\"error\":{}}"),
            [b"{\"error\":{}}".to_vec()]
        );
        assert!(split_events(b"").is_empty());
    }
}
