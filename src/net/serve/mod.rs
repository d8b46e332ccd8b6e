//! The replay server: plays cassettes back over HTTP as an OpenAI (`/v1/chat/completions`,
//! `/v1/responses`), Anthropic (`/v1/messages`) or Gemini
//! (`/v1beta/models/{model}:streamGenerateContent`) endpoint, so a real agent can be tested
//! offline against a recorded situation.
//!
//! - **Routing.** The request path picks the wire API; among the cassettes of that API the one
//!   whose model matches the request (else the first) serves it.
//! - **Sessions.** Interactions play in order per client session. A session is the value of
//!   the `x-tapeloop-session` request header when present; otherwise the conversation prefix —
//!   the system prompt plus the first message of the request's `messages` / `input` /
//!   `contents` — so every request of one agent run (and its retries) shares a session while
//!   runs with different prompts do not interfere.
//! - **Replay.** Status, headers (`retry-after` included; length and encoding headers are
//!   recomputed), error bodies and the body chunks are sent as recorded; a recorded `reset`,
//!   `timeout` or `aborted` end cuts the connection mid-body, and an interaction without a
//!   response head closes the connection before any header. Timing ([`schedule`]):
//!   `recorded` waits the recorded offsets, `instant` sends at once, `xN` runs N times faster.
//!   A session that has played every interaction of its cassette moves on to the next
//!   cassette of the same API and model, if any; after the last it gets a 400
//!   `tapeloop_cassette_exhausted` error.
//! - **Strict mode.** A request whose canonical body differs from the recorded one gets a 400
//!   JSON error naming the first differing path, and is logged. Canonical means: object key
//!   order ignored; the volatile top-level fields `user`, `metadata`, `store`,
//!   `prompt_cache_key`, `safety_identifier` and `service_tier` dropped; and, inside strings,
//!   ISO-8601 dates/times replaced by `<date>` and absolute paths under `/home`, `/Users`,
//!   `/tmp`, `/private`, `/var/folders`, `/root` and `/work` replaced by `<path>` (cwd and date
//!   lines in system prompts).
//! - `GET /_tapeloop/status` reports the cassettes (with the ids never played), the
//!   interactions each session was served in order, and the divergences.
//! - **Errors of the server itself** (unknown path, wrong method, a body that is not a JSON
//!   object or is too large, an exhausted cassette, a strict-mode divergence) are 4xx JSON
//!   bodies `{"type":"error","error":{"type":…,"message":…}}`, which the OpenAI and Anthropic
//!   SDKs both surface. Shutdown closes idle connections at once and gives responses in flight
//!   [`SHUTDOWN_GRACE`] to finish.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub use super::listener::SHUTDOWN_GRACE;
use super::listener::{Body, Server};
use crate::cassette::{Cassette, Interaction};
use crate::event::EndOutcome;
use crate::matching::{session_key, strict_difference};

mod pace;
mod status;

use crate::provider::wire;
pub use pace::{schedule, Pace, Schedule};
pub use status::{CassetteStatus, Divergence, PlayedInteraction, ServeSummary, SessionStatus};

/// Largest request body accepted by default (an agent's whole conversation).
pub const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub pace: Pace,
    pub strict: bool,
    /// Larger request bodies get a 413 JSON error.
    pub max_request_body: usize,
}

impl ServeOptions {
    /// Listen on `listen`, recorded pacing, not strict, the default body limit.
    pub fn new(listen: SocketAddr) -> Self {
        ServeOptions {
            listen,
            pace: Pace::Recorded,
            strict: false,
            max_request_body: MAX_REQUEST_BODY,
        }
    }
}

struct State {
    cassettes: Vec<Arc<Cassette>>,
    opts: ServeOptions,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (cassette index, session key) → next interaction index.
    cursors: BTreeMap<(usize, String), usize>,
    /// Session key → (cassette index, interaction index) in serving order.
    history: BTreeMap<String, Vec<(usize, usize)>>,
    played: Vec<Vec<bool>>,
    requests: u64,
    divergences: Vec<Divergence>,
}

impl State {
    fn summary(&self) -> ServeSummary {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = inner
            .history
            .iter()
            .map(|(key, served)| {
                let interactions: Vec<PlayedInteraction> = served
                    .iter()
                    .map(|&(c, i)| PlayedInteraction {
                        cassette: self.cassettes[c].path.display().to_string(),
                        id: self.cassettes[c].interactions[i].id,
                    })
                    .collect();
                (
                    key.clone(),
                    SessionStatus {
                        played: interactions.len(),
                        interactions,
                    },
                )
            })
            .collect();
        ServeSummary {
            pace: self.opts.pace.to_string(),
            strict: self.opts.strict,
            cassettes: self
                .cassettes
                .iter()
                .enumerate()
                .map(|(i, c)| CassetteStatus {
                    path: c.path.display().to_string(),
                    api: c.header.api,
                    model: c.header.model.clone(),
                    interactions: c.interactions.len(),
                    played: inner.played[i].iter().filter(|p| **p).count(),
                    unused: c
                        .interactions
                        .iter()
                        .zip(&inner.played[i])
                        .filter(|(_, p)| !**p)
                        .map(|(it, _)| it.id)
                        .collect(),
                })
                .collect(),
            sessions,
            requests: inner.requests,
            divergences: inner.divergences.clone(),
        }
    }
}

/// A running server. Dropping it without [`ServerHandle::shutdown`] stops it too.
pub struct ServerHandle {
    server: Server,
    state: Arc<State>,
}

impl ServerHandle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The current status.
    pub fn summary(&self) -> ServeSummary {
        self.state.summary()
    }

    /// Stop accepting, close idle keep-alive connections, let in-flight responses finish (up
    /// to [`SHUTDOWN_GRACE`]), and return the summary.
    pub async fn shutdown(self) -> ServeSummary {
        self.server.shutdown().await;
        self.state.summary()
    }
}

/// Bind and start serving `cassettes`.
pub async fn start(cassettes: Vec<Cassette>, opts: ServeOptions) -> std::io::Result<ServerHandle> {
    let played = cassettes
        .iter()
        .map(|c| vec![false; c.interactions.len()])
        .collect();
    let state = Arc::new(State {
        cassettes: cassettes.into_iter().map(Arc::new).collect(),
        opts,
        inner: Mutex::new(Inner {
            played,
            ..Inner::default()
        }),
    });
    let listen = state.opts.listen;
    let st = Arc::clone(&state);
    let server = Server::bind(listen, "tapeloop serve", move |req| {
        let st = Arc::clone(&st);
        async move { handle(st, req).await }
    })
    .await?;
    Ok(ServerHandle { server, state })
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON error both SDK families parse: OpenAI reads `error.message`, Anthropic reads the
/// top-level `type: "error"` envelope.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path == "/_tapeloop/status" {
        let summary = state.summary();
        return Ok(json_response(
            StatusCode::OK,
            &serde_json::to_value(summary).unwrap_or(Value::Null),
        ));
    }
    let Some((api, path_model)) = wire::route(&path) else {
        return Ok(error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "tapeloop serve has no endpoint {path}; it serves /v1/chat/completions, /v1/responses, /v1/messages, /v1beta/models/{{model}}:streamGenerateContent and GET /_tapeloop/status"
            ),
        ));
    };
    if req.method() != Method::POST {
        return Ok(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            &format!("{path} takes POST"),
        ));
    }
    let max = state.opts.max_request_body;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        // Refuse before reading: the client learns at once, the server buffers nothing.
        return Ok(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            &format!("the request body is larger than the {max} bytes tapeloop serve accepts"),
        ));
    }
    let headers = req.headers().clone();
    let limited = http_body_util::Limited::new(req.into_body(), max);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let too_large = e.is::<http_body_util::LengthLimitError>();
            return Ok(error_response(
                if too_large {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                },
                "invalid_request_error",
                &if too_large {
                    format!(
                        "the request body is larger than the {max} bytes tapeloop serve accepts"
                    )
                } else {
                    format!("could not read the request body: {e}")
                },
            ));
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the request body must be a JSON object",
            ))
        }
        Err(e) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("the request body is not JSON: {e}"),
            ))
        }
    };
    let model = path_model.or_else(|| {
        body.get("model")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let session = session_key(&headers, &body);

    // Pick the cassette and the interaction under the lock; stream outside it.
    let picked = {
        let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.requests += 1;
        let candidates: Vec<usize> = state
            .cassettes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.header.api == api)
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            return Ok(error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no cassette with api `{api}` is being served"),
            ));
        }
        let by_model: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| {
                model.is_some() && state.cassettes[*i].header.model.as_deref() == model.as_deref()
            })
            .collect();
        let pool = if by_model.is_empty() {
            candidates
        } else {
            by_model
        };
        let idx = pool
            .iter()
            .copied()
            .find(|i| {
                let next = inner
                    .cursors
                    .get(&(*i, session.clone()))
                    .copied()
                    .unwrap_or(0);
                next < state.cassettes[*i].interactions.len()
            })
            .unwrap_or(pool[0]);
        let cassette = Arc::clone(&state.cassettes[idx]);
        let next = inner
            .cursors
            .get(&(idx, session.clone()))
            .copied()
            .unwrap_or(0);
        let Some(inter) = cassette.interactions.get(next) else {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "tapeloop_cassette_exhausted",
                &format!(
                    "{}: all {} recorded interactions were already played for this session",
                    cassette.path.display(),
                    cassette.interactions.len()
                ),
            ));
        };
        if state.opts.strict {
            if let Some(d) = strict_difference(&inter.request.body, &body) {
                let div = Divergence {
                    cassette: cassette.path.display().to_string(),
                    session: session.clone(),
                    interaction: inter.id,
                    path: d.path.clone(),
                    recorded: d.left.clone(),
                    sent: d.right.clone(),
                };
                eprintln!(
                    "tapeloop serve: divergence in {} (interaction {}) at {}: recorded {}, sent {}",
                    div.cassette, div.interaction, div.path, div.recorded, div.sent
                );
                inner.divergences.push(div);
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": {
                        "type": "tapeloop_divergence",
                        "message": format!("request differs from recorded interaction {} at {}: recorded {}, sent {}", inter.id, d.path, d.left, d.right),
                        "path": d.path,
                        "interaction": inter.id,
                    }}),
                ));
            }
        }
        inner.cursors.insert((idx, session.clone()), next + 1);
        inner.history.entry(session).or_default().push((idx, next));
        inner.played[idx][next] = true;
        (cassette, next)
    };
    let (cassette, index) = picked;
    replay_interaction(cassette, index, state.opts.pace).await
}

/// Headers never replayed as recorded: the server recomputes framing.
const SKIP_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "keep-alive",
];

async fn replay_interaction(
    cassette: Arc<Cassette>,
    index: usize,
    pace: Pace,
) -> Result<Response<Body>, std::io::Error> {
    let inter: &Interaction = &cassette.interactions[index];
    let plan = schedule(inter, pace);
    let Some(head) = inter.response.as_ref() else {
        // The recorded connection failed before any header: fail this one the same way
        // (hyper closes the connection without writing a response).
        tokio::time::sleep(plan.head).await;
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "recorded connection failure",
        ));
    };
    tokio::time::sleep(plan.head).await;
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::from_u16(head.status).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("interaction {}: status {}: {e}", inter.id, head.status),
        )
    })?;
    for (k, v) in head.headers.iter() {
        if SKIP_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            continue;
        }
        // A hand-written cassette may hold a header hyper cannot send; drop that one header
        // rather than the whole response.
        match (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            (Ok(name), Ok(value)) => {
                response.headers_mut().append(name, value);
            }
            _ => eprintln!(
                "tapeloop serve: {} interaction {}: skipping header {k:?} that cannot be sent",
                cassette.path.display(),
                inter.id
            ),
        }
    }
    let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
    tokio::spawn(async move {
        let inter = &cassette.interactions[index];
        for (chunk, wait) in inter.chunks.iter().zip(&plan.chunks) {
            if !wait.is_zero() {
                tokio::time::sleep(*wait).await;
            }
            if tx
                .send(Ok(Frame::data(Bytes::copy_from_slice(&chunk.bytes))))
                .await
                .is_err()
            {
                return; // client went away
            }
        }
        let outcome = inter.end.map(|e| e.outcome).unwrap_or(EndOutcome::Reset);
        if outcome != EndOutcome::Complete {
            tokio::time::sleep(plan.end).await;
            // An error frame makes hyper drop the connection without finishing the body.
            let _ = tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    format!("recorded stream ended: {}", outcome.as_str()),
                )))
                .await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    *response.body_mut() = StreamBody::new(stream).boxed();
    Ok(response)
}
