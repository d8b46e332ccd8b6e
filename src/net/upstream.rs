//! The one timed exchange with an upstream provider, shared by live recording
//! ([`crate::record`]) and the recording proxy ([`super::proxy`]).
//!
//! [`Upstream::send`] sends a request and waits for the response head; [`Exchange::next`]
//! hands out each body read as it arrives. Both time everything from the moment the request
//! was sent (the cassette's `ms` offsets) and tee what they see into a [`Tee`] — a cassette
//! interaction — before the caller sees it, so a crash loses at most the read in flight.
//! The read timeout bounds the wait for the head and every silence between two reads;
//! network failures become an `end` line with the matching outcome.
//!
//! A body sent with a `content-encoding` (`gzip`, `deflate`, `br`, `zstd`) is decoded as it
//! streams ([`super::encoding`]): the tee receives the plain bytes, and a stored head without
//! `content-encoding` and `content-length` that keeps the original encoding under
//! [`ORIGINAL_ENCODING_HEADER`], so redaction sees text and the cassette replays. The caller
//! receives both: the bytes as sent (the proxy forwards them untouched) and the plain bytes
//! (live recording decodes events from them). A body that cannot be decoded (corrupt, or past
//! the decoded-size limit) ends the exchange as `reset`, with the reason in
//! [`Exchange::decode_error`]. An encoding tapeloop does not know is stored as sent.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::encoding::{BodyDecoder, DecodeError, ORIGINAL_ENCODING_HEADER};
use crate::cassette::{End, ResponseHead};
use crate::event::EndOutcome;
use crate::http::Headers;

/// Where an exchange's response is written as it happens (a cassette interaction whose
/// request line the caller already wrote).
pub trait Tee {
    fn response(&mut self, head: &ResponseHead) -> std::io::Result<()>;
    fn chunk(&mut self, ms: u64, bytes: &[u8]) -> std::io::Result<()>;
    fn end(&mut self, end: End) -> std::io::Result<()>;
}

/// An HTTP client with the recording timeouts.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    read_timeout: Duration,
}

/// An attempt that got no response head.
#[derive(Debug, Clone)]
pub struct NetworkFailure {
    pub outcome: EndOutcome,
    pub message: String,
    /// Milliseconds from sending to the failure.
    pub ms: u64,
}

/// Why [`Upstream::send`] returned no response.
#[derive(Debug)]
pub enum SendError {
    /// The network failed; the tee holds the `end` line.
    Network(NetworkFailure),
    /// The tee could not be written.
    Tee(std::io::Error),
}

/// A response whose head has arrived and whose body is being read.
pub struct Exchange {
    /// The head as the upstream sent it.
    pub head: ResponseHead,
    sent: Instant,
    /// Undoes the body's `content-encoding`, when it has one tapeloop knows.
    decoder: Option<BodyDecoder>,
    decode_error: Option<DecodeError>,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    read_timeout: Duration,
}

/// One step of reading a body.
#[derive(Debug)]
pub enum BodyRead {
    /// A body read, `ms` after the request was sent: `bytes` as sent, `decoded` with the
    /// `content-encoding` undone (the same bytes when there is none; possibly empty while a
    /// decoder waits for more input).
    Chunk {
        ms: u64,
        bytes: Bytes,
        decoded: Bytes,
    },
    /// The body is over; the tee holds this `end` line.
    End(End),
}

impl Upstream {
    /// A client that connects within `connect_timeout` and waits at most `read_timeout` for
    /// the head and between body reads.
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> reqwest::Result<Self> {
        Ok(Upstream {
            client: reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .build()?,
            read_timeout,
        })
    }

    /// Send a request and wait for its head, which goes to `tee` (or, on a network failure,
    /// an `end` line with the outcome).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &Headers,
        body: Bytes,
        tee: &mut (dyn Tee + Send),
    ) -> Result<Exchange, SendError> {
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut rb = self.client.request(method, url).body(body);
        for (k, v) in headers.iter() {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let sent = Instant::now();
        let failure = |outcome, message| NetworkFailure {
            outcome,
            message,
            ms: ms_since(sent),
        };
        let response = match tokio::time::timeout(self.read_timeout, rb.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let outcome = if e.is_timeout() {
                    EndOutcome::Timeout
                } else {
                    EndOutcome::Reset
                };
                return Err(fail(tee, failure(outcome, format!("request failed: {e}"))));
            }
            Err(_) => {
                let message = format!(
                    "no response head within the read timeout ({} ms)",
                    self.read_timeout.as_millis()
                );
                return Err(fail(tee, failure(EndOutcome::Timeout, message)));
            }
        };
        let head = ResponseHead {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            ms: ms_since(sent),
        };
        let encoding = head
            .headers
            .get("content-encoding")
            .unwrap_or("")
            .to_string();
        let (decoder, stored) = match BodyDecoder::for_encoding(&encoding, &Default::default()) {
            Ok(Some(d)) => (Some(d), stored_head(&head, &encoding)),
            // Not encoded, or an encoding tapeloop cannot undo: stored as sent.
            Ok(None) | Err(_) => (None, head.clone()),
        };
        tee.response(&stored).map_err(SendError::Tee)?;
        Ok(Exchange {
            head,
            sent,
            decoder,
            decode_error: None,
            body: response.bytes_stream().fuse().boxed(),
            read_timeout: self.read_timeout,
        })
    }
}

/// The head a cassette stores for a body decoded from `encoding`: no `content-encoding` or
/// `content-length` (they describe the encoded bytes), the encoding kept under
/// [`ORIGINAL_ENCODING_HEADER`].
fn stored_head(head: &ResponseHead, encoding: &str) -> ResponseHead {
    let mut headers: Headers = head
        .headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("content-encoding") && !k.eq_ignore_ascii_case("content-length")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.insert(ORIGINAL_ENCODING_HEADER, encoding.to_string());
    ResponseHead {
        status: head.status,
        headers,
        ms: head.ms,
    }
}

/// Write the failure's `end` line and turn it into the error to return.
fn fail(tee: &mut (dyn Tee + Send), f: NetworkFailure) -> SendError {
    match tee.end(End {
        ms: f.ms,
        outcome: f.outcome,
    }) {
        Ok(()) => SendError::Network(f),
        Err(e) => SendError::Tee(e),
    }
}

impl Exchange {
    /// The next body read (teed as a chunk line), or the end of the body (teed as the `end`
    /// line): `complete`, `reset` on a broken connection, `timeout` after a silence longer
    /// than the read timeout.
    pub async fn next(&mut self, tee: &mut (dyn Tee + Send)) -> std::io::Result<BodyRead> {
        let mut outcome = match tokio::time::timeout(self.read_timeout, self.body.next()).await {
            Err(_) => EndOutcome::Timeout,
            Ok(None) => EndOutcome::Complete,
            Ok(Some(Err(_))) => EndOutcome::Reset,
            Ok(Some(Ok(bytes))) => {
                let ms = self.elapsed_ms();
                let decoded = match self.decoder.as_mut().map(|d| d.push(&bytes)) {
                    None => Ok(bytes.clone()),
                    Some(r) => r.map(Bytes::from),
                };
                match decoded {
                    Ok(decoded) => {
                        if !decoded.is_empty() {
                            tee.chunk(ms, &decoded)?;
                        }
                        return Ok(BodyRead::Chunk { ms, bytes, decoded });
                    }
                    Err(e) => {
                        self.decode_error = Some(e);
                        EndOutcome::Reset
                    }
                }
            }
        };
        if outcome == EndOutcome::Complete {
            if let Some(d) = self.decoder.take() {
                match d.finish() {
                    Ok(rest) if rest.is_empty() => {}
                    Ok(rest) => {
                        let ms = self.elapsed_ms();
                        tee.chunk(ms, &rest)?;
                        let bytes = Bytes::new();
                        let decoded = Bytes::from(rest);
                        return Ok(BodyRead::Chunk { ms, bytes, decoded });
                    }
                    Err(e) => {
                        self.decode_error = Some(e);
                        outcome = EndOutcome::Reset;
                    }
                }
            }
        }
        self.decoder = None;
        let end = End {
            ms: self.elapsed_ms(),
            outcome,
        };
        tee.end(end)?;
        Ok(BodyRead::End(end))
    }

    /// Why the body could not be decoded, when a `reset` end came from decoding rather than
    /// the network.
    pub fn decode_error(&self) -> Option<&DecodeError> {
        self.decode_error.as_ref()
    }

    /// Milliseconds since the request was sent.
    pub fn elapsed_ms(&self) -> u64 {
        ms_since(self.sent)
    }
}

fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}
