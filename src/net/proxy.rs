//! The recording proxy: point any agent (opencode, an SDK script, your own loop) at it, and it
//! forwards every request to the upstream provider and streams each response back without
//! added buffering, while writing the traffic into cassettes.
//!
//! - **Forwarding.** Method, path, query, headers and body go upstream unchanged, except the
//!   hop-by-hop headers and `accept-encoding` (removed so the upstream normally answers in
//!   plain text). A response the upstream encodes anyway reaches the client as sent and the
//!   cassette decoded ([`super::upstream`]). Each body read is written to the client and to the
//!   cassette as it arrives.
//! - **Sessions → cassettes.** Requests are grouped into conversations exactly as
//!   `tapeloop serve` recognises them: the `x-tapeloop-session` header when present, else the
//!   conversation prefix (system prompt + first message). Each session becomes
//!   `DIR/<session>.jsonl`, so `serve` replays it to the same agent.
//! - **Steps and attempts.** Within a session, a request whose body equals the previous one is
//!   a retry (same `step`, `attempt` + 1); any other request starts the next step.
//! - **Request bodies.** Every body sent to a model endpoint is recorded: a body with a
//!   `content-encoding` (gzip, deflate, br, zstd) is decoded first (the upstream still gets the
//!   bytes as sent; the stored headers keep the encoding as
//!   `x-tapeloop-original-content-encoding`); a JSON body is stored as `body`, anything else
//!   as `body_b64` (its bytes, base64) with `body: null`. A body that cannot be decoded is
//!   forwarded and the proxy says on stderr that it was not recorded, and why.
//! - Only model endpoints are recorded (`/chat/completions`, `/responses`, `/messages`,
//!   `:streamGenerateContent`, `:generateContent`); anything else is forwarded unrecorded.
//! - Crash safety: every line is flushed as written; footers are written on shutdown.
//!   Shutdown stops accepting, closes idle keep-alive connections, lets in-flight responses
//!   finish for a grace period, then ends any still-open interaction as `aborted` and writes
//!   every footer.
//! - Secrets: the writer's redaction rules apply, and the credentials of a session's first
//!   request (bearer token, `x-api-key`, `api-key`, `x-goog-api-key`, `key` / `api_key` query
//!   values) are also scrubbed verbatim from everything in that session's cassette.
//! - Timeouts: the connect timeout bounds connecting upstream; the read timeout bounds both
//!   the wait for the response head and every silence between two body reads.
//! - **Record modes** ([`ProxyMode`], as vcrpy's): `all` forwards and records everything
//!   (existing session files are replaced); `new` answers every request that matches a
//!   cassette already in the output directory from that cassette (conversation matching, as
//!   `serve` does) and forwards and records only the rest, into new files; `none` only
//!   replays, refusing what no cassette holds; `once` (the default) records everything when the
//!   directory holds no cassette yet, and otherwise behaves as `none`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::encoding::ORIGINAL_ENCODING_HEADER;
use super::listener::{Body, RequestBody, Server};
use super::serve::{Pace, Replayer};
use super::upstream::{BodyRead, SendError, Tee, Upstream};
use crate::cassette::{
    CassetteWriter, End, Header, Redactor, Request as CassetteRequest, ResponseHead,
};
use crate::event::EndOutcome;
use crate::http::Headers;
use crate::matching::session_key;
use crate::provider::wire;

crate::string_enum! {
    /// What the proxy does with a request a cassette in its directory already holds, and with
    /// one none holds (module docs).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum ProxyMode: "record mode" {
        /// Record when the directory has no cassette yet, else only replay.
        #[default]
        Once = "once",
        /// Replay what was recorded, record what is new.
        New = "new",
        /// Record everything, replacing session files.
        All = "all",
        /// Only replay; refuse what was never recorded.
        None = "none",
    }
}

type Writer = CassetteWriter<BufWriter<File>>;

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub listen: SocketAddr,
    /// Upstream base URL (`https://api.openai.com`); the request path is appended.
    pub upstream: String,
    /// Directory the session cassettes are written to.
    pub out_dir: PathBuf,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Provider name for cassette headers; default: the upstream host.
    pub provider: Option<String>,
    pub mode: ProxyMode,
    /// Header-read and idle timeouts and the connection cap of the proxy's own listener.
    pub conn: super::listener::ConnLimits,
}

struct Session {
    /// `None` once shutdown has written the footer.
    writer: Option<Writer>,
    /// Interactions whose `end` is not written yet, with their send time.
    open: BTreeMap<u64, Instant>,
    path: PathBuf,
    next_id: u64,
    step: u32,
    attempt: u32,
    last_body: Option<RecordedBody>,
}

/// A request body as the proxy records it: JSON (decoded from its `content-encoding` first),
/// or the decoded bytes when they are not JSON (a `request` line's `body_b64`).
#[derive(Debug, PartialEq)]
enum RecordedBody {
    Json(Value),
    Raw(Bytes),
}

impl RecordedBody {
    /// The body of a request with these headers; an error when its `content-encoding` cannot
    /// be undone (unknown, corrupt or past the decoded-size limit).
    fn of(headers: &hyper::HeaderMap, bytes: &Bytes) -> Result<Self, super::encoding::DecodeError> {
        let encoding = headers
            .get(hyper::header::CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let decoded = match encoding.trim() {
            "" => bytes.clone(),
            enc => super::encoding::decode_all(enc, bytes, &Default::default())?.into(),
        };
        Ok(match serde_json::from_slice(&decoded) {
            Ok(v) => RecordedBody::Json(v),
            Err(_) => RecordedBody::Raw(decoded),
        })
    }
}

/// The request headers a cassette stores: the body is stored decoded, so a
/// `content-encoding` is kept under [`ORIGINAL_ENCODING_HEADER`] instead.
fn recorded_headers(headers: &Headers) -> Headers {
    headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("content-encoding") {
                (ORIGINAL_ENCODING_HEADER.to_string(), v.clone())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

struct State {
    opts: ProxyOptions,
    /// Replays the cassettes found in the directory at start (modes once, new, none).
    replayer: Option<Replayer>,
    /// Whether requests no cassette holds are forwarded and recorded.
    records: bool,
    upstream: Upstream,
    sessions: Mutex<BTreeMap<String, Arc<Mutex<Session>>>>,
}

/// A running proxy.
pub struct ProxyHandle {
    server: Server,
    state: Arc<State>,
}

impl ProxyHandle {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stop accepting, close idle connections, let in-flight responses finish (up to 5 s),
    /// end what is still streaming as `aborted`, write every footer, and return the cassettes
    /// written.
    pub async fn shutdown(self) -> std::io::Result<Vec<PathBuf>> {
        self.server.shutdown().await;
        let sessions = std::mem::take(
            &mut *self
                .state
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let mut paths = Vec::new();
        let mut first_err = None;
        for (_, s) in sessions {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            let open = std::mem::take(&mut s.open);
            let Some(mut writer) = s.writer.take() else {
                continue;
            };
            let mut result = Ok(());
            for (id, started) in open {
                result = result.and_then(|()| {
                    writer.write_end(
                        id,
                        End {
                            ms: started.elapsed().as_millis() as u64,
                            outcome: EndOutcome::Aborted,
                        },
                    )
                });
            }
            match result.and_then(|()| writer.finish().map(drop)) {
                Ok(()) => paths.push(s.path.clone()),
                Err(e) => {
                    first_err.get_or_insert(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", s.path.display()),
                    ));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(paths),
        }
    }
}

/// The cassettes directly in `dir`, in name order, indexed: their bodies are read when they
/// are replayed.
fn existing_cassettes(
    dir: &std::path::Path,
) -> std::io::Result<Vec<crate::cassette::CassetteIndex>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            crate::cassette::CassetteIndex::open(p)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
        })
        .collect()
}

/// Start the proxy. Fails when a cassette already in the directory cannot be read (modes
/// once, new and none replay them).
pub async fn start(opts: ProxyOptions) -> std::io::Result<ProxyHandle> {
    std::fs::create_dir_all(&opts.out_dir)?;
    let existing = if opts.mode == ProxyMode::All {
        Vec::new()
    } else {
        existing_cassettes(&opts.out_dir)?
    };
    let records = match opts.mode {
        ProxyMode::All | ProxyMode::New => true,
        ProxyMode::Once => existing.is_empty(),
        ProxyMode::None => false,
    };
    let replayer = if existing.is_empty() {
        None
    } else {
        Some(Replayer::new(existing, Pace::Instant)?)
    };
    let upstream = Upstream::new(opts.connect_timeout, opts.read_timeout)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let listen = opts.listen;
    let state = Arc::new(State {
        opts,
        replayer,
        records,
        upstream,
        sessions: Mutex::new(BTreeMap::new()),
    });
    let st = Arc::clone(&state);
    let server = Server::bind_with(
        listen,
        "tapeloop record --proxy",
        state.opts.conn,
        move |req| {
            let st = Arc::clone(&st);
            async move { handle(st, req).await }
        },
    )
    .await?;
    Ok(ProxyHandle { server, state })
}

const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "accept-encoding",
];

/// A JSON error of the proxy itself.
fn json_error(status: StatusCode, body: Value) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn gateway_error(message: String) -> Response<Body> {
    json_error(
        StatusCode::BAD_GATEWAY,
        serde_json::json!({"error": {"type": "tapeloop_proxy_error", "message": message}}),
    )
}

/// The answer to a model request no cassette holds, in a mode that records nothing new.
fn not_recorded(mode: ProxyMode) -> Response<Body> {
    let body = serde_json::json!({"type": "error", "error": {"type": "tapeloop_not_recorded",
        "message": format!("no cassette in the proxy's directory holds this request, and --mode {mode} records nothing new (use --mode new to record it)")}});
    json_error(StatusCode::BAD_REQUEST, body)
}

fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The credential values a request carries, to scrub verbatim from its session's cassette.
fn credentials(headers: &hyper::HeaderMap, uri: &hyper::Uri) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
    ] {
        for v in headers.get_all(name) {
            let Ok(v) = v.to_str() else { continue };
            let v = v.trim();
            let token = v
                .split_once(char::is_whitespace)
                .filter(|(scheme, _)| {
                    scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("basic")
                })
                .map(|(_, t)| t.trim())
                .unwrap_or(v);
            out.push(token.to_string());
        }
    }
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if k == "key" || k == "api_key" {
                out.push(v.into_owned());
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn open_session(
    state: &State,
    key: &str,
    api: crate::provider::Api,
    model: Option<&str>,
    body: &Value,
    secrets: Vec<String>,
) -> std::io::Result<Arc<Mutex<Session>>> {
    let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = sessions.get(key) {
        return Ok(Arc::clone(s));
    }
    let mut path = state.opts.out_dir.join(format!("{}.jsonl", sanitize(key)));
    // Never replace a cassette recorded before, except in mode `all`.
    let mut n = 1;
    while state.opts.mode != ProxyMode::All && path.exists() {
        n += 1;
        path = state
            .opts
            .out_dir
            .join(format!("{}-{n}.jsonl", sanitize(key)));
    }
    let mut header = Header::new(api);
    // Named as `import` names the same host, so reports agree about the provider.
    header.provider = Some(state.opts.provider.clone().unwrap_or_else(|| {
        url::Url::parse(&state.opts.upstream)
            .ok()
            .and_then(|u| u.host_str().map(wire::provider_from_host))
            .unwrap_or_else(|| "unknown".into())
    }));
    header.model = body
        .get("model")
        .and_then(Value::as_str)
        .or(model)
        .map(str::to_string);
    header.recorded_at = Some(crate::record::now_rfc3339());
    header.recorder = Some(format!("tapeloop {} (proxy)", crate::VERSION));
    let redactor = secrets
        .into_iter()
        .fold(Redactor::new(), |r, secret| r.secret(secret));
    let writer = CassetteWriter::create(&path, header, redactor)?;
    let s = Arc::new(Mutex::new(Session {
        writer: Some(writer),
        open: BTreeMap::new(),
        path,
        next_id: 1,
        step: 0,
        attempt: 0,
        last_body: None,
    }));
    sessions.insert(key.to_string(), Arc::clone(&s));
    Ok(s)
}

async fn handle(
    state: Arc<State>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body_bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => return Ok(gateway_error(format!("reading the request body: {e}"))),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let url = format!(
        "{}{}",
        state.opts.upstream.trim_end_matches('/'),
        path_and_query
    );
    let mut headers = Headers::new();
    for (k, v) in &parts.headers {
        if HOP_BY_HOP
            .iter()
            .any(|h| k.as_str().eq_ignore_ascii_case(h))
        {
            continue;
        }
        headers.insert(
            k.as_str(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        );
    }

    // Recording: model endpoints only; every body they carry is recorded (module docs).
    let route = wire::route(parts.uri.path());
    let body = match &route {
        Some(_) => RecordedBody::of(&parts.headers, &body_bytes),
        None => Ok(RecordedBody::Raw(Bytes::new())),
    };
    if let (Some((api, _)), Ok(RecordedBody::Json(json))) = (&route, &body) {
        if let Some(r) = &state.replayer {
            if let Some(answer) = r
                .answer(
                    *api,
                    parts.uri.path(),
                    parts.uri.query(),
                    &parts.headers,
                    json,
                )
                .await
            {
                return answer;
            }
        }
    }
    if route.is_some() && !state.records {
        return Ok(not_recorded(state.opts.mode));
    }
    let recorded = match (route, body) {
        (Some((api, model)), Ok(body)) => {
            let null = Value::Null;
            let json = match &body {
                RecordedBody::Json(v) => v,
                RecordedBody::Raw(_) => &null,
            };
            let key = session_key(&parts.headers, json);
            let secrets = credentials(&parts.headers, &parts.uri);
            let session = open_session(&state, &key, api, model.as_deref(), json, secrets)?;
            let id = {
                let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                if s.last_body.as_ref() == Some(&body) {
                    s.attempt += 1;
                } else {
                    s.step += 1;
                    s.attempt = 1;
                }
                let id = s.next_id;
                s.next_id += 1;
                let (step, attempt) = (s.step, s.attempt);
                let mut request = CassetteRequest {
                    method: parts.method.as_str().to_string(),
                    url: url.clone(),
                    headers: recorded_headers(&headers),
                    body: json.clone().into(),
                    body_b64: None,
                };
                if let Some(w) = s.writer.as_mut() {
                    match &body {
                        RecordedBody::Json(_) => w.write_request(id, step, attempt, &request)?,
                        RecordedBody::Raw(raw) => {
                            request.body = Value::Null.into();
                            w.write_raw_request(id, step, attempt, &request, raw)?
                        }
                    }
                    s.open.insert(id, Instant::now());
                }
                s.last_body = Some(body);
                id
            };
            Some((session, id))
        }
        (Some(_), Err(e)) => {
            eprintln!(
                "tapeloop record --proxy: {} {url}: forwarded but NOT recorded: request body: {e}",
                parts.method
            );
            None
        }
        (None, _) => None,
    };

    let mut tee = ProxyTee { recorded };
    let mut exchange = match state
        .upstream
        .send(parts.method.as_str(), &url, &headers, body_bytes, &mut tee)
        .await
    {
        Ok(x) => x,
        Err(SendError::Tee(e)) => return Err(e),
        Err(SendError::Network(f)) => {
            return Ok(gateway_error(format!("upstream {url}: {}", f.message)))
        }
    };
    let mut builder = Response::builder().status(exchange.head.status);
    for (k, v) in exchange.head.headers.iter() {
        if HOP_BY_HOP.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            continue;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    tokio::spawn(async move {
        let outcome = loop {
            match exchange.next(&mut tee).await {
                Ok(BodyRead::End(end)) => {
                    if let Some(e) = exchange.decode_error() {
                        eprintln!("tapeloop record --proxy: {url}: response body: {e}");
                    }
                    break end.outcome;
                }
                Ok(BodyRead::Chunk { bytes, .. }) => {
                    if tx.send(Ok(Frame::data(bytes))).await.is_err() {
                        // The client went away.
                        let _ = tee.end(End {
                            ms: exchange.elapsed_ms(),
                            outcome: EndOutcome::Aborted,
                        });
                        break EndOutcome::Aborted;
                    }
                }
                Err(_) => break EndOutcome::Aborted, // the tee never fails mid-body
            }
        };
        if outcome != EndOutcome::Complete {
            let _ = tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    format!("upstream stream ended: {}", outcome.as_str()),
                )))
                .await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    builder
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// A recorded exchange's lines go to its session's cassette; an unrecorded one's nowhere.
/// Body reads are best effort (the client is served even when the disk is not), and an `end`
/// is written once, unless shutdown already closed the interaction.
struct ProxyTee {
    recorded: Option<(Arc<Mutex<Session>>, u64)>,
}

impl Tee for ProxyTee {
    fn response(&mut self, head: &ResponseHead) -> std::io::Result<()> {
        let Some((session, id)) = &self.recorded else {
            return Ok(());
        };
        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
        match s.writer.as_mut() {
            Some(w) => w.write_response(*id, head),
            None => Ok(()),
        }
    }

    fn chunk(&mut self, ms: u64, bytes: &[u8]) -> std::io::Result<()> {
        if let Some((session, id)) = &self.recorded {
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = s.writer.as_mut() {
                let _ = w.write_chunk(*id, ms, bytes);
            }
        }
        Ok(())
    }

    fn end(&mut self, end: End) -> std::io::Result<()> {
        if let Some((session, id)) = self.recorded.take() {
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            if s.open.remove(&id).is_some() {
                if let Some(w) = s.writer.as_mut() {
                    let _ = w.write_end(id, end);
                }
            }
        }
        Ok(())
    }
}
