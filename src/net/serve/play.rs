//! Playing one recorded interaction back: the status and headers as recorded (framing headers
//! recomputed), the body chunks on the [`schedule`] of the pace, and a recorded `reset`,
//! `timeout` or `aborted` end cut the connection mid-body; an interaction without a response
//! head closes the connection before any header. With `--retry-after-scale`, the retry waits
//! of an error response are rewritten first ([`super::retry`]); a reply in another shape than
//! the client asked for is reshaped ([`super::shape`]), sent when the recorded body began.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::pace::{schedule, Pace};
use super::retry::{self, RetryChange};
use super::shape::{reshape, Wanted};
use super::Body;
use crate::cassette::Cassette;
use crate::event::EndOutcome;

/// Headers never replayed as recorded: the server recomputes framing.
const SKIP_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "keep-alive",
];

/// What playing an interaction produced.
pub(super) struct Played {
    /// `Err`: close the connection without a response (a recorded failure before the head).
    pub response: Result<Response<Body>, std::io::Error>,
    /// Retry waits rewritten by `--retry-after-scale`.
    pub retry_after: Vec<RetryChange>,
    /// `recorded`, `json-from-stream` or `stream-from-json`.
    pub reply: &'static str,
}

/// Play interaction `index` of `cassette`.
pub(super) async fn play(
    cassette: Arc<Cassette>,
    index: usize,
    pace: Pace,
    retry_scale: Option<f64>,
    wanted: &Wanted,
) -> Played {
    let inter = &cassette.interactions[index];
    let plan = schedule(inter, pace);
    tokio::time::sleep(plan.head).await;
    let Some(head) = inter.response.as_ref() else {
        // The recorded connection failed before any header: fail this one the same way
        // (hyper closes the connection without writing a response).
        return Played {
            response: Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "recorded connection failure",
            )),
            retry_after: Vec::new(),
            reply: "recorded",
        };
    };
    let status = match StatusCode::from_u16(head.status) {
        Ok(s) => s,
        Err(e) => {
            return Played {
                response: Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("interaction {}: status {}: {e}", inter.id, head.status),
                )),
                retry_after: Vec::new(),
                reply: "recorded",
            }
        }
    };
    let mut headers = head.headers.clone();
    let mut chunks: Vec<Bytes> = inter
        .chunks
        .iter()
        .map(|c| Bytes::copy_from_slice(&c.bytes))
        .collect();
    let mut waits = plan.chunks.clone();
    let mut retry_after = Vec::new();
    let mut status = status;
    let mut reply = "recorded";
    if let Some(r) = reshape(inter, wanted) {
        // The whole reshaped body leaves when the recorded one began.
        let first = waits.first().copied().unwrap_or_default();
        waits = std::iter::once(first)
            .chain(std::iter::repeat(std::time::Duration::ZERO))
            .take(r.chunks.len())
            .collect();
        chunks = r.chunks;
        status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        headers
            .0
            .retain(|k, _| !k.eq_ignore_ascii_case("content-type"));
        headers.insert("content-type", r.content_type);
        reply = r.how;
    }
    if let Some(f) = retry_scale.filter(|_| head.status >= 400) {
        retry_after = retry::scale_headers(&mut headers, f, cassette.header.recorded_at.as_deref());
        if let Some((body, changes)) = retry::scale_body(&inter.body(), f) {
            // One chunk, sent when the recorded body began.
            chunks = vec![Bytes::from(body)];
            waits.truncate(1);
            retry_after.extend(changes);
        }
    }
    let mut response = Response::new(Body::default());
    *response.status_mut() = status;
    for (k, v) in headers.iter() {
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
    let outcome = inter.end.map(|e| e.outcome).unwrap_or(EndOutcome::Reset);
    let end_wait = plan.end;
    let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
    tokio::spawn(async move {
        for (chunk, wait) in chunks.into_iter().zip(waits) {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                return; // client went away
            }
        }
        if outcome != EndOutcome::Complete {
            tokio::time::sleep(end_wait).await;
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
    Played {
        response: Ok(response),
        retry_after,
        reply,
    }
}
