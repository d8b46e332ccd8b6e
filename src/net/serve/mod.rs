//! The replay server: plays cassettes back over HTTP as an OpenAI (`/v1/chat/completions`,
//! `/v1/responses`), Anthropic (`/v1/messages`) or Gemini
//! (`/v1beta/models/{model}:streamGenerateContent` and `:generateContent`) endpoint, so a real
//! agent can be tested offline against a recorded situation.
//!
//! - **Matching and sessions** ([`pick`]): by conversation over every cassette served (the
//!   default), or in recorded order per session (`sequence`, `strict`).
//! - **Playing** ([`play`]): status, headers, body chunks and recorded cuts as recorded, on the
//!   pace's schedule ([`pace`]); `--retry-after-scale` rewrites retry waits ([`retry`]).
//! - **Control** ([`control`]): status, reset, the request log, model listings.
//! - **The request log** ([`log`]): one JSON line per answered model request.
//! - **Errors of the server itself** (unknown path, wrong method, a body that is not a JSON
//!   object or is too large, a miss, an exhausted session) are 4xx JSON bodies in the shape
//!   the client's SDK parses ([`answer`]). Shutdown closes idle connections at once and gives
//!   responses in flight [`SHUTDOWN_GRACE`] to finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

pub use super::listener::SHUTDOWN_GRACE;
use super::listener::{Body, RequestBody, RequestBodyError, Server};
use crate::cassette::CassetteIndex;
use crate::matching::{IgnorePath, Matcher, ServeMatch};
use crate::provider::wire;

mod answer;
mod bodies;
mod control;
mod log;
mod pace;
mod pick;
mod play;
mod retry;
mod shape;
mod status;

use answer::{error, Shape};
pub use log::LogEntry;
pub use pace::{schedule, Pace, Schedule};
use pick::{Asked, Catalog, Chosen, Pick, Sent, Sessions};
pub use retry::RetryChange;
pub use status::{CassetteStatus, Divergence, PlayedInteraction, ServeSummary, SessionStatus};

/// Largest request body accepted by default (an agent's whole conversation).
pub const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

/// Sessions kept by default: a CI matrix's worth many times over, about 150 MiB at most.
pub const MAX_SESSIONS: usize = 100_000;

/// The response header that tells a client its session had been forgotten past
/// `--max-sessions` and starts over with this response.
pub const RESTARTED_HEADER: &str = "x-tapeloop-session-restarted";

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub pace: Pace,
    /// How a request finds its recorded interaction.
    pub matching: ServeMatch,
    /// Fields left out of matching besides the mode's own (`--ignore`).
    pub ignore: Vec<IgnorePath>,
    /// Multiply the retry waits of served error responses (`--retry-after-scale`).
    pub retry_after_scale: Option<f64>,
    /// Also write the request log here (`--log`).
    pub log_file: Option<PathBuf>,
    /// Larger request bodies get a 413 JSON error.
    pub max_request_body: usize,
    /// Serve every request as this one session (as if each carried `x-tapeloop-session`):
    /// `tapeloop exec` serves one agent run as one session.
    pub session: Option<String>,
    /// Keep every log entry with its request body for [`ServerHandle::observed`].
    pub observe: bool,
    /// Sessions kept at most (`--max-sessions`); past it the least recently served are
    /// forgotten, so a server that sees endless new sessions stays in bounded memory.
    pub max_sessions: usize,
    /// Header-read and idle timeouts and the connection cap (`--header-read-timeout`, ...).
    pub conn: super::listener::ConnLimits,
}

impl ServeOptions {
    /// Listen on `listen`: recorded pacing, conversation matching, no scaling, no log file,
    /// the default body limit.
    pub fn new(listen: SocketAddr) -> Self {
        ServeOptions {
            listen,
            pace: Pace::Recorded,
            matching: ServeMatch::Conversation,
            ignore: Vec::new(),
            retry_after_scale: None,
            log_file: None,
            max_request_body: MAX_REQUEST_BODY,
            session: None,
            observe: false,
            max_sessions: MAX_SESSIONS,
            conn: super::listener::ConnLimits::DEFAULT,
        }
    }
}

struct State {
    catalog: Catalog,
    opts: ServeOptions,
    inner: Mutex<Sessions>,
    log: Arc<log::RequestLog>,
}

impl State {
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn summary(&self) -> ServeSummary {
        let inner = self.sessions();
        let cassettes = &self.catalog.cassettes;
        let sessions = inner
            .history
            .iter()
            .map(|(key, served)| {
                let interactions: Vec<PlayedInteraction> = served
                    .plays
                    .iter()
                    .map(|&(c, i)| PlayedInteraction {
                        cassette: cassettes[c].path.display().to_string(),
                        id: cassettes[c].interactions[i].id,
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
            matching: self.opts.matching.to_string(),
            strict: self.opts.matching == ServeMatch::Strict,
            cassettes: cassettes
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
            sessions_forgotten: inner.evicted,
            sessions_restarted: inner.restarted,
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

    /// Every request served so far with its body, in the order the responses ended (only with
    /// [`ServeOptions::observe`]).
    pub fn observed(&self) -> Vec<LogEntry> {
        self.state.log.observed()
    }

    /// The request log so far, as JSON lines.
    pub fn requests(&self) -> String {
        self.state.log.text()
    }

    /// Stop accepting, close idle keep-alive connections, let in-flight responses finish (up
    /// to [`SHUTDOWN_GRACE`]), and return the summary.
    pub async fn shutdown(self) -> ServeSummary {
        self.server.shutdown().await;
        self.state.summary()
    }
}

/// Bind and start serving `cassettes`. Fails when the address cannot be bound or the log
/// file cannot be created.
pub async fn start(
    cassettes: Vec<CassetteIndex>,
    opts: ServeOptions,
) -> std::io::Result<ServerHandle> {
    let matcher = Matcher::new(opts.matching, opts.ignore.clone());
    let catalog = Catalog::new(cassettes, matcher);
    let state = Arc::new(State {
        inner: Mutex::new(Sessions::new(&catalog, opts.max_sessions)),
        catalog,
        log: Arc::new(log::RequestLog::new(
            opts.log_file.as_deref(),
            opts.observe,
        )?),
        opts,
    });
    let listen = state.opts.listen;
    let st = Arc::clone(&state);
    let server = Server::bind_with(listen, "tapeloop serve", state.opts.conn, move |req| {
        let st = Arc::clone(&st);
        async move { handle(st, req).await }
    })
    .await?;
    Ok(ServerHandle { server, state })
}

/// A response, logged when its body is over.
fn logged(state: &State, response: Response<Body>, entry: LogEntry) -> Response<Body> {
    let mut entry = entry;
    entry.status = Some(response.status().as_u16());
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        log::Tracked::wrap(body, entry, Arc::clone(&state.log)),
    )
}

async fn handle(
    state: Arc<State>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, incoming) = req.into_parts();
    let path = parts.uri.path();
    if let Some(r) = control::answer(
        &state,
        &parts.method,
        path,
        parts.uri.query(),
        &parts.headers,
    ) {
        return Ok(r);
    }
    let mut entry = state
        .log
        .begin(parts.method.as_str(), path, state.opts.matching.as_str());
    entry.result = "error".into();
    let route = wire::route(path);
    let shape = Shape::of(route.as_ref().map(|r| r.0), path);
    let fail = |status: StatusCode, kind: &str, message: String, mut entry: LogEntry| {
        entry.error = Some(message.clone());
        logged(&state, error(shape, status, kind, &message, None), entry)
    };
    let Some((api, path_model)) = route else {
        return Ok(fail(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "tapeloop serve has no endpoint {path}; it serves POST /v1/chat/completions, /v1/responses, /v1/messages, /v1beta/models/{{model}}:streamGenerateContent, GET /v1/models, /v1beta/models and /_tapeloop/status, /_tapeloop/requests, POST /_tapeloop/reset"
            ),
            entry,
        ));
    };
    if parts.method != Method::POST {
        return Ok(fail(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("{path} takes POST"),
            entry,
        ));
    }
    let max = state.opts.max_request_body;
    let too_large =
        || format!("the request body is larger than the {max} bytes tapeloop serve accepts");
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        // Refuse before reading: the client learns at once, the server buffers nothing.
        return Ok(fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            too_large(),
            entry,
        ));
    }
    let mut headers = parts.headers;
    if let Some(session) = &state.opts.session {
        if let Ok(v) = hyper::header::HeaderValue::from_str(session) {
            headers.insert("x-tapeloop-session", v);
        }
    }
    let query = parts.uri.query();
    let limited = http_body_util::Limited::new(incoming, max);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                too_large(),
                entry,
            ))
        }
        Err(e) if matches!(e.downcast_ref(), Some(RequestBodyError::Stalled(_))) => {
            return Ok(fail(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                e.to_string(),
                entry,
            ))
        }
        Err(e) => {
            return Ok(fail(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("could not read the request body: {e}"),
                entry,
            ))
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Ok(fail(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the request body must be a JSON object".into(),
                entry,
            ))
        }
        Err(e) => {
            return Ok(fail(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("the request body is not JSON: {e}"),
                entry,
            ))
        }
    };
    if state.opts.observe {
        entry.body = Some(Arc::new(body.clone()));
    }
    let model = request_model(path_model, &body);
    let body_stream = shape::body_asks_stream(&body);
    // Prepared before the lock: it is most of a match's work.
    let sent = Sent::new(&state.catalog.matcher, body, model.as_deref());
    let asked = Asked {
        api,
        model: model.as_deref(),
        body: &sent,
        headers: &headers,
    };
    let pick = state.sessions().pick(&state.catalog, &asked);
    match pick {
        Pick::Miss {
            status,
            kind,
            result,
            message,
            session,
            extra,
        } => {
            entry.result = result.into();
            entry.session = session;
            entry.error = Some(message.clone());
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            Ok(logged(
                &state,
                error(shape, status, kind, &message, extra),
                entry,
            ))
        }
        Pick::Play(chosen) => {
            let request = Parsed {
                api,
                path,
                query,
                model,
                body_stream,
            };
            respond(&state, entry, &request, chosen).await
        }
    }
}

/// The model a request names: in the path (Gemini), else in the body.
fn request_model(path_model: Option<String>, body: &Value) -> Option<String> {
    path_model.or_else(|| {
        body.get("model")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// A parsed model request.
struct Parsed<'a> {
    api: crate::provider::Api,
    path: &'a str,
    query: Option<&'a str>,
    model: Option<String>,
    /// The body asks for a stream.
    body_stream: bool,
}

/// Play the `chosen` interaction for `request`, logged.
async fn respond(
    state: &Arc<State>,
    mut entry: LogEntry,
    request: &Parsed<'_>,
    chosen: Chosen,
) -> Result<Response<Body>, std::io::Error> {
    let Chosen {
        cassette,
        index,
        session,
        result,
        restarted,
    } = chosen;
    let c = Arc::clone(&state.catalog.cassettes[cassette]);
    let inter = &c.interactions[index];
    if restarted {
        eprintln!(
            "tapeloop serve: session {session} was forgotten past --max-sessions {} and starts over; raise --max-sessions to keep more",
            state.opts.max_sessions
        );
    }
    entry.result = result.into();
    entry.restarted = restarted;
    entry.session = Some(session);
    entry.cassette = Some(c.path.display().to_string());
    entry.interaction = Some(inter.id);
    entry.step = Some(inter.step);
    entry.attempt = Some(inter.attempt);
    let wanted = shape::Wanted::of(
        request.api,
        request.path,
        request.query,
        request.body_stream,
        request
            .model
            .clone()
            .or_else(|| c.header.model.clone())
            .unwrap_or_else(|| "unknown".into()),
    );
    let played = play::play(
        &state.catalog,
        (cassette, index),
        state.opts.pace,
        state.opts.retry_after_scale,
        &wanted,
    )
    .await;
    entry.retry_after = played.retry_after;
    entry.reply = Some(played.reply.to_string());
    if played.error.is_some() {
        entry.result = "error".into();
        entry.error = played.error;
    }
    match played.response {
        Ok(mut r) => {
            if restarted {
                r.headers_mut().insert(
                    RESTARTED_HEADER,
                    hyper::header::HeaderValue::from_static("forgotten past --max-sessions"),
                );
            }
            Ok(logged(state, r, entry))
        }
        Err(e) => {
            entry.outcome = "closed".into();
            state.log.record(entry);
            Err(e)
        }
    }
}

/// Conversation replay inside another server: the recording proxy's `--mode new`, `once` and
/// `none` answer what was recorded before from here, and forward only what this misses.
pub struct Replayer {
    state: Arc<State>,
}

impl Replayer {
    /// Replay `cassettes` by conversation at `pace`.
    pub fn new(cassettes: Vec<CassetteIndex>, pace: Pace) -> std::io::Result<Replayer> {
        let opts = ServeOptions {
            pace,
            ..ServeOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)))
        };
        let catalog = Catalog::new(cassettes, Matcher::new(opts.matching, Vec::new()));
        Ok(Replayer {
            state: Arc::new(State {
                inner: Mutex::new(Sessions::new(&catalog, opts.max_sessions)),
                catalog,
                log: Arc::new(log::RequestLog::new(None, false)?),
                opts,
            }),
        })
    }

    /// How many recorded interactions it holds.
    pub fn interactions(&self) -> usize {
        self.state
            .catalog
            .cassettes
            .iter()
            .map(|c| c.interactions.len())
            .sum()
    }

    /// The recorded answer to a model request, or `None` when no recorded request is this one
    /// (or its recorded attempts are used up).
    pub async fn answer(
        &self,
        api: crate::provider::Api,
        path: &str,
        query: Option<&str>,
        headers: &hyper::HeaderMap,
        body: &Value,
    ) -> Option<Result<Response<Body>, std::io::Error>> {
        let model = request_model(wire::route(path).and_then(|(_, m)| m), body);
        let sent = Sent::new(&self.state.catalog.matcher, body.clone(), model.as_deref());
        let asked = Asked {
            api,
            model: model.as_deref(),
            body: &sent,
            headers,
        };
        let pick = self.state.sessions().pick(&self.state.catalog, &asked);
        let Pick::Play(chosen) = pick else {
            return None;
        };
        let entry = self.state.log.begin("POST", path, "conversation");
        let request = Parsed {
            api,
            path,
            query,
            model,
            body_stream: shape::body_asks_stream(body),
        };
        Some(respond(&self.state, entry, &request, chosen).await)
    }
}
