//! The recording proxy: point any agent (opencode, an SDK script, your own loop) at it, and it
//! forwards every request to the upstream provider and streams each response back without
//! added buffering, while writing the traffic into cassettes.
//!
//! - **Forwarding.** Method, path, query, headers and body go upstream unchanged, except the
//!   hop-by-hop headers and `accept-encoding` (removed so the upstream answers in plain text
//!   and the cassette holds decodable bytes; the client receives the same bytes the cassette
//!   holds). Each body read is written to the client and to the cassette as it arrives.
//! - **Sessions → cassettes.** Requests are grouped into conversations exactly as
//!   `tapeloop serve` recognises them: the `x-tapeloop-session` header when present, else the
//!   conversation prefix (system prompt + first message). Each session becomes
//!   `DIR/<session>.jsonl`, so `serve` replays it to the same agent.
//! - **Steps and attempts.** Within a session, a request whose body equals the previous one is
//!   a retry (same `step`, `attempt` + 1); any other request starts the next step.
//! - Only model endpoints are recorded (`/chat/completions`, `/responses`, `/messages`,
//!   `:streamGenerateContent`, `:generateContent`); anything else is forwarded unrecorded.
//! - Crash safety: every line is flushed as written; footers are written on shutdown.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::cassette::{
    CassetteWriter, End, Header, Redactor, Request as CassetteRequest, ResponseHead,
};
use crate::event::EndOutcome;
use crate::http::Headers;
use crate::serve::{route, session_key};

type Body = BoxBody<Bytes, std::io::Error>;
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
}

struct Session {
    writer: Writer,
    path: PathBuf,
    next_id: u64,
    step: u32,
    attempt: u32,
    last_body: Option<Value>,
}

struct State {
    opts: ProxyOptions,
    client: reqwest::Client,
    sessions: Mutex<BTreeMap<String, Arc<Mutex<Session>>>>,
}

/// A running proxy.
pub struct ProxyHandle {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProxyHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let in-flight responses finish (up to 5 s), write every footer, and
    /// return the cassettes written.
    pub async fn shutdown(mut self) -> std::io::Result<Vec<PathBuf>> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        let sessions = std::mem::take(
            &mut *self
                .state
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let mut paths = Vec::new();
        for (_, s) in sessions {
            let s = match Arc::try_unwrap(s) {
                Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
                Err(_) => continue, // still streaming after the grace period: stays truncated
            };
            s.writer.finish()?;
            paths.push(s.path);
        }
        Ok(paths)
    }
}

/// Start the proxy.
pub async fn start(opts: ProxyOptions) -> std::io::Result<ProxyHandle> {
    std::fs::create_dir_all(&opts.out_dir)?;
    let client = reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let listener = TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State {
        opts,
        client,
        sessions: Mutex::new(BTreeMap::new()),
    });
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let st = Arc::clone(&state);
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let st = Arc::clone(&st);
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let st = Arc::clone(&st);
                            async move { handle(st, req).await }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            conns.abort_all();
        }
    });
    Ok(ProxyHandle {
        addr,
        state,
        stop: Some(stop_tx),
        task,
    })
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

fn gateway_error(message: String) -> Response<Body> {
    let body = serde_json::json!({"error": {"type": "tapeloop_proxy_error", "message": message}});
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
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

fn open_session(
    state: &State,
    key: &str,
    api: crate::provider::Api,
    body: &Value,
) -> std::io::Result<Arc<Mutex<Session>>> {
    let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = sessions.get(key) {
        return Ok(Arc::clone(s));
    }
    let path = state.opts.out_dir.join(format!("{}.jsonl", sanitize(key)));
    let mut header = Header::new(api);
    header.provider = Some(state.opts.provider.clone().unwrap_or_else(|| {
        url::Url::parse(&state.opts.upstream)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    }));
    header.model = body
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string);
    header.recorded_at = Some(crate::record::now_rfc3339());
    header.recorder = Some(format!("tapeloop {} (proxy)", crate::VERSION));
    let writer = CassetteWriter::create(&path, header, Redactor::new())?;
    let s = Arc::new(Mutex::new(Session {
        writer,
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
    req: Request<Incoming>,
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

    // Recording: only model endpoints with a JSON body.
    let json: Option<Value> = serde_json::from_slice(&body_bytes).ok();
    let recorded = match (route(parts.uri.path()), &json) {
        (Some((api, _)), Some(body)) => {
            let key = session_key(&parts.headers, body);
            let session = open_session(&state, &key, api, body)?;
            let id = {
                let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                if s.last_body.as_ref() == Some(body) {
                    s.attempt += 1;
                } else {
                    s.step += 1;
                    s.attempt = 1;
                }
                s.last_body = Some(body.clone());
                let id = s.next_id;
                s.next_id += 1;
                let (step, attempt) = (s.step, s.attempt);
                s.writer.write_request(
                    id,
                    step,
                    attempt,
                    &CassetteRequest {
                        method: parts.method.as_str().to_string(),
                        url: url.clone(),
                        headers: headers.clone(),
                        body: body.clone(),
                    },
                )?;
                id
            };
            Some((session, id))
        }
        _ => None,
    };

    let started = Instant::now();
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut rb = state.client.request(method, &url).body(body_bytes.clone());
    for (k, v) in headers.iter() {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let upstream = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            if let Some((session, id)) = &recorded {
                let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                let outcome = if e.is_timeout() {
                    EndOutcome::Timeout
                } else {
                    EndOutcome::Reset
                };
                s.writer.write_end(
                    *id,
                    End {
                        ms: started.elapsed().as_millis() as u64,
                        outcome,
                    },
                )?;
            }
            return Ok(gateway_error(format!("upstream {url}: {e}")));
        }
    };
    let status = upstream.status().as_u16();
    let resp_headers: Headers = upstream
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some((session, id)) = &recorded {
        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
        s.writer.write_response(
            *id,
            &ResponseHead {
                status,
                headers: resp_headers.clone(),
                ms: started.elapsed().as_millis() as u64,
            },
        )?;
    }
    let mut builder = Response::builder().status(status);
    for (k, v) in resp_headers.iter() {
        if HOP_BY_HOP.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            continue;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    let read_timeout = state.opts.read_timeout;
    tokio::spawn(async move {
        let mut stream = upstream.bytes_stream();
        let outcome = loop {
            match tokio::time::timeout(read_timeout, stream.next()).await {
                Err(_) => break EndOutcome::Timeout,
                Ok(None) => break EndOutcome::Complete,
                Ok(Some(Err(_))) => break EndOutcome::Reset,
                Ok(Some(Ok(bytes))) => {
                    if let Some((session, id)) = &recorded {
                        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                        let _ =
                            s.writer
                                .write_chunk(*id, started.elapsed().as_millis() as u64, &bytes);
                    }
                    if tx.send(Ok(Frame::data(bytes))).await.is_err() {
                        break EndOutcome::Aborted; // the client went away
                    }
                }
            }
        };
        if let Some((session, id)) = &recorded {
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            let _ = s.writer.write_end(
                *id,
                End {
                    ms: started.elapsed().as_millis() as u64,
                    outcome,
                },
            );
        }
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
