//! Playing one recorded interaction back: the status and headers as recorded (framing headers
//! recomputed), the body chunks on the pace's schedule ([`super::pace`]), and a recorded
//! `reset`, `timeout` or `aborted` end cut the connection mid-body; an interaction without a
//! response head closes the connection before any header.
//!
//! The body is read from the cassette file as it is played ([`CassetteIndex::body`]), a batch
//! of about [`BATCH_BYTES`] at a time on the blocking pool, so memory per play stays small
//! whatever the cassette's size and no thread is held while the chunks are paced. Two answers
//! need the whole body first and read it whole: a reply in another shape than the client asked
//! for is reshaped ([`super::shape`]) and sent when the recorded body began, and with
//! `--retry-after-scale` the retry waits of an error response are rewritten ([`super::retry`]).
//! Under `--pace instant` a small complete body is kept in memory once read
//! ([`super::bodies`]) and played from there the next time.
//! A body that cannot be read as it was indexed (the file changed) is a 500 JSON error before
//! the head, or a cut connection after it, and a line on stderr.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::answer::{error, Shape};
use super::pace::{head_wait, schedule, Gaps, Pace};
use super::pick::Catalog;
use super::retry::{self, RetryChange};
use super::shape::{differs, reshape, Wanted};
use super::Body;
use crate::cassette::{BodyReader, CassetteError, Chunk, End};
use crate::event::EndOutcome;
use crate::net::pause;

/// About how many body bytes a play reads from the file at once.
pub(super) const BATCH_BYTES: usize = 64 * 1024;

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
    /// Why the recorded body could not be served (for the request log).
    pub error: Option<String>,
}

/// Where the body frames come from.
enum Frames {
    /// Every chunk at hand and nothing to wait for: `--pace instant`, a body that ended
    /// `complete`, and all of it kept from an earlier play ([`super::bodies`]), built whole, or
    /// read in one batch. Such a body needs no pacing task: its frames are ready at once, so
    /// hyper writes several recorded chunks (each still its own HTTP chunk) per system call
    /// instead of one, and no task or channel is set up per request.
    AllReady(Arc<[Bytes]>),
    /// Sent by a pacing task of its own ([`paced`]).
    Paced(Paced),
}

/// Frames that wait for their schedule or for the file.
enum Paced {
    /// Built whole, with the wait before each (a reshaped or rescaled reply).
    Built {
        chunks: Vec<Bytes>,
        waits: Vec<Duration>,
        end_wait: Duration,
    },
    /// Read from the file a batch at a time; `first` is read already.
    File {
        reader: BodyReader,
        first: Vec<Chunk>,
        gaps: Gaps,
    },
}

/// Play interaction `index` of cassette `slot` in `catalog`.
pub(super) async fn play(
    catalog: &Catalog,
    (slot, index): (usize, usize),
    pace: Pace,
    retry_scale: Option<f64>,
    wanted: &Wanted,
) -> Played {
    let cassette = Arc::clone(&catalog.cassettes[slot]);
    let inter = &cassette.interactions[index];
    let outcome = inter.end.map(|e| e.outcome).unwrap_or(EndOutcome::Reset);
    // A complete body ends with its last chunk (see `PacedBody`).
    let complete = outcome == EndOutcome::Complete;
    let Some(head) = inter.response.as_ref() else {
        pause(head_wait(pace, None, inter.end, None)).await;
        // The recorded connection failed before any header: fail this one the same way
        // (hyper closes the connection without writing a response).
        return failed(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "recorded connection failure",
        ));
    };
    let status = match StatusCode::from_u16(head.status) {
        Ok(s) => s,
        Err(e) => {
            return failed(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("interaction {}: status {}: {e}", inter.id, head.status),
            ))
        }
    };
    let mut headers = head.headers.clone();
    let mut status = status;
    let mut retry_after = Vec::new();
    let mut reply = "recorded";
    let reshaped = differs(head.status, inter.end, inter.body_first_byte(), wanted);
    let scale = retry_scale.filter(|_| head.status >= 400);
    // Nothing to wait for: the body can leave whole, without a pacing task.
    let at_once = pace == Pace::Instant && complete;
    let keep = !reshaped && scale.is_none() && at_once;
    let kept = keep.then(|| catalog.bodies.get((slot, index))).flatten();
    let frames = if let Some(chunks) = kept {
        Frames::AllReady(chunks)
    } else if reshaped || scale.is_some() {
        let c = Arc::clone(&cassette);
        let whole = match blocking(move || c.interaction(index)).await {
            Ok(w) => w,
            Err(e) => return unreadable(&e, wanted),
        };
        let plan = schedule(&whole, pace);
        let mut chunks: Vec<Bytes> = whole
            .chunks
            .iter()
            .map(|c| Bytes::copy_from_slice(&c.bytes))
            .collect();
        let mut waits = plan.chunks.clone();
        if let Some(r) = reshape(&whole, wanted) {
            // The whole reshaped body leaves when the recorded one began.
            let first = waits.first().copied().unwrap_or_default();
            waits = std::iter::once(first)
                .chain(std::iter::repeat(Duration::ZERO))
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
        if let Some(f) = scale {
            retry_after =
                retry::scale_headers(&mut headers, f, cassette.header.recorded_at.as_deref());
            if let Some((body, changes)) = retry::scale_body(&whole.body(), f) {
                // One chunk, sent when the recorded body began.
                chunks = vec![Bytes::from(body)];
                waits.truncate(1);
                retry_after.extend(changes);
            }
        }
        if at_once {
            Frames::AllReady(chunks.into())
        } else {
            Frames::Paced(Paced::Built {
                chunks,
                waits,
                end_wait: plan.end,
            })
        }
    } else {
        let c = Arc::clone(&cassette);
        let opened = blocking(move || {
            let mut reader = c.body(index)?;
            let first = reader.next_batch(BATCH_BYTES)?;
            Ok((reader, first))
        })
        .await;
        match opened {
            Ok((reader, first)) if keep && reader.is_done() => {
                Frames::AllReady(catalog.bodies.keep(
                    (slot, index),
                    first.into_iter().map(|c| c.bytes.into()).collect(),
                ))
            }
            Ok((reader, first)) => Frames::Paced(Paced::File {
                reader,
                first,
                gaps: Gaps::new(pace, head),
            }),
            Err(e) => return unreadable(&e, wanted),
        }
    };
    pause(head_wait(pace, Some(head), inter.end, None)).await;
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
    *response.body_mut() = match frames {
        Frames::AllReady(chunks) => ReadyBody { chunks, next: 0 }.boxed(),
        Frames::Paced(frames) => paced(frames, complete, inter.end, outcome),
    };
    Played {
        response: Ok(response),
        retry_after,
        reply,
        error: None,
    }
}

/// The body of `frames` sent on their schedule by a task of its own; a body not `complete`
/// is cut with the recorded `outcome` after the `end` wait.
fn paced(frames: Paced, complete: bool, end: Option<End>, outcome: EndOutcome) -> Body {
    let (tx, rx) = mpsc::channel::<Item>(8);
    tokio::spawn(async move {
        let end_wait = match frames {
            Paced::Built {
                chunks,
                waits,
                end_wait,
            } => {
                let n = chunks.len();
                for (i, (chunk, wait)) in chunks.into_iter().zip(waits).enumerate() {
                    if !send(&tx, wait, chunk, complete && i + 1 == n).await {
                        return; // client went away
                    }
                }
                end_wait
            }
            Paced::File {
                reader,
                first,
                mut gaps,
            } => {
                let mut reader = reader;
                let mut batch = first;
                loop {
                    let (n, done) = (batch.len(), reader.is_done());
                    for (i, c) in std::mem::take(&mut batch).into_iter().enumerate() {
                        let last = complete && done && i + 1 == n;
                        if !send(&tx, gaps.chunk(c.ms), Bytes::from(c.bytes), last).await {
                            return;
                        }
                    }
                    if reader.is_done() {
                        break gaps.end(end);
                    }
                    let next = tokio::task::spawn_blocking(move || {
                        let b = reader.next_batch(BATCH_BYTES);
                        (reader, b)
                    })
                    .await;
                    match next {
                        Ok((_, Ok(b))) if b.is_empty() => break gaps.end(end),
                        Ok((r, Ok(b))) => (reader, batch) = (r, b),
                        Ok((_, Err(e))) => {
                            eprintln!("tapeloop serve: {e}");
                            let _ = tx
                                .send((Err(std::io::Error::other(e.to_string())), true))
                                .await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx
                                .send((Err(std::io::Error::other(e.to_string())), true))
                                .await;
                            return;
                        }
                    }
                }
            }
        };
        if !complete {
            pause(end_wait).await;
            // An error frame makes hyper drop the connection without finishing the body.
            let cut = std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                format!("recorded stream ended: {}", outcome.as_str()),
            );
            let _ = tx.send((Err(cut), true)).await;
        }
    });
    PacedBody { rx, ended: false }.boxed()
}

/// A body frame from the pacing task, and whether it is the body's last.
type Item = (Result<Frame<Bytes>, std::io::Error>, bool);

/// Send `chunk` after `wait` (`last`: nothing follows it); `false` when the client went away.
async fn send(tx: &mpsc::Sender<Item>, wait: Duration, chunk: Bytes, last: bool) -> bool {
    pause(wait).await;
    tx.send((Ok(Frame::data(chunk)), last)).await.is_ok()
}

/// The body of a played response: the frames the pacing task sends. The frame marked last
/// ends the body at once ([`is_end_stream`](hyper::body::Body::is_end_stream)), so hyper
/// finishes the response with it and the request log counts it complete: a client that stops
/// reading at the last recorded byte (SDKs stop at `[DONE]`) never races the end of the
/// stream, which a channel only reports once the task has dropped its sender.
struct PacedBody {
    rx: mpsc::Receiver<Item>,
    ended: bool,
}

impl hyper::body::Body for PacedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some((frame, last))) => {
                self.ended = last;
                Poll::Ready(Some(frame))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// The body of a played response whose frames are all at hand ([`Frames::AllReady`]).
struct ReadyBody {
    chunks: Arc<[Bytes]>,
    next: usize,
}

impl hyper::body::Body for ReadyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let chunk = self.chunks.get(self.next).cloned();
        self.next += 1;
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }
}

/// Run a file read on the blocking pool.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, CassetteError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(read).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("reading the cassette failed: {e}")),
    }
}

/// A play that closes the connection without a response.
fn failed(e: std::io::Error) -> Played {
    Played {
        response: Err(e),
        retry_after: Vec::new(),
        reply: "recorded",
        error: None,
    }
}

/// The 500 answered when the recorded body cannot be read as indexed.
fn unreadable(message: &str, wanted: &Wanted) -> Played {
    eprintln!("tapeloop serve: {message}");
    Played {
        response: Ok(error(
            Shape::of(Some(wanted.api), ""),
            StatusCode::INTERNAL_SERVER_ERROR,
            "tapeloop_cassette_unreadable",
            message,
            None,
        )),
        retry_after: Vec::new(),
        reply: "recorded",
        error: Some(message.to_string()),
    }
}
