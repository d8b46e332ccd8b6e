//! The request log: one JSON line per request the server answered, kept in memory for
//! `GET /_tapeloop/requests` and written to `--log FILE` as it happens.
//!
//! A line is written when its response is over, because only then is it known how many body
//! bytes went out and whether the client read to the end (`complete`), went away first
//! (`disconnected`), or the recorded stream was cut as recorded (`cut`; `closed` when the
//! recorded connection failed before any header). [`Tracked`] wraps a response body to learn
//! that. The in-memory log keeps the last [`KEEP`] lines; the file keeps all.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body as _, Frame, SizeHint};
use serde::Serialize;

use super::retry::RetryChange;
use super::Body;

/// Lines kept in memory (older ones are dropped, the `--log` file keeps them).
pub const KEEP: usize = 100_000;

/// One served request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogEntry {
    /// When the request arrived (RFC 3339, milliseconds).
    pub time: String,
    /// Milliseconds from server start to the request's arrival.
    pub ms: u64,
    pub method: String,
    pub path: String,
    /// The session that was served (`header:NAME`, `conversation-N`, `prefix:HASH`).
    pub session: Option<String>,
    pub cassette: Option<String>,
    /// The recorded interaction id served.
    pub interaction: Option<u64>,
    pub step: Option<u32>,
    pub attempt: Option<u32>,
    /// The status sent (`None`: the connection was closed before any header, as recorded).
    pub status: Option<u16>,
    /// `conversation`, `sequence` or `strict`.
    #[serde(rename = "match")]
    pub match_mode: String,
    /// `opened` (a new session), `continued`, `retry` (a further recorded attempt of the same
    /// request), `in-order` (sequence and strict modes), `miss`, `exhausted` or `error` (the
    /// server's own error; control endpoints log nothing).
    pub result: String,
    /// The session had been forgotten past `--max-sessions` and started over with this
    /// request (its response carries `x-tapeloop-session-restarted`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
    /// How the reply was shaped: `recorded`, `json-from-stream` (a non-stream request answered
    /// from a recorded stream) or `stream-from-json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Response body bytes sent.
    pub bytes: u64,
    /// `complete`, `disconnected`, `cut` or `closed` (module docs).
    pub outcome: String,
    /// `retry-after`, `retry-after-ms` and `retryDelay` values rewritten by
    /// `--retry-after-scale`: the recorded and the served value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry_after: Vec<RetryChange>,
    /// The error message of a miss or an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds from server start to the end of the response (or the client's leaving).
    pub end_ms: u64,
    /// The request body, kept only when the server observes for `tapeloop exec`.
    #[serde(skip)]
    pub body: Option<Arc<serde_json::Value>>,
}

/// The log of one server.
pub struct RequestLog {
    started: Instant,
    lines: Mutex<VecDeque<String>>,
    file: Option<Mutex<BufWriter<File>>>,
    /// Every finished entry with its request body, when observing (`tapeloop exec`).
    observed: Option<Mutex<Vec<LogEntry>>>,
}

impl RequestLog {
    /// A log, appending to `file` when given (created or truncated now).
    pub fn new(file: Option<&Path>, observe: bool) -> std::io::Result<RequestLog> {
        let file = match file {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Some(Mutex::new(BufWriter::new(File::create(p).map_err(
                    |e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())),
                )?)))
            }
            None => None,
        };
        Ok(RequestLog {
            started: Instant::now(),
            lines: Mutex::new(VecDeque::new()),
            file,
            observed: observe.then(|| Mutex::new(Vec::new())),
        })
    }

    /// A new entry for a request arriving now.
    pub fn begin(&self, method: &str, path: &str, match_mode: &str) -> LogEntry {
        LogEntry {
            time: now_rfc3339_ms(),
            ms: self.started.elapsed().as_millis() as u64,
            method: method.to_string(),
            path: path.to_string(),
            match_mode: match_mode.to_string(),
            ..LogEntry::default()
        }
    }

    /// Write a finished entry.
    pub fn record(&self, mut entry: LogEntry) {
        entry.end_ms = self.started.elapsed().as_millis() as u64;
        let line = serde_json::to_string(&entry).unwrap_or_default();
        if let Some(observed) = &self.observed {
            observed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry);
        }
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            // A full disk must not stop the replay: say so once per failed line.
            if let Err(e) = writeln!(f, "{line}").and_then(|()| f.flush()) {
                eprintln!("tapeloop serve: writing the request log: {e}");
            }
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Every finished entry with its request body, in the order they finished (empty unless
    /// observing).
    pub fn observed(&self) -> Vec<LogEntry> {
        self.observed
            .as_ref()
            .map(|o| o.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Every kept line, each ending in a newline.
    pub fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().flat_map(|l| [l.as_str(), "\n"]).collect()
    }
}

/// Now in UTC as RFC 3339 with milliseconds (`2026-12-06T05:13:48.123Z`), written in one
/// allocation: every request's log entry starts with it.
fn now_rfc3339_ms() -> String {
    rfc3339_ms(time::OffsetDateTime::now_utc())
}

fn rfc3339_ms(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A response body that logs its entry when it is over (module docs).
pub struct Tracked {
    inner: Body,
    entry: Option<LogEntry>,
    log: Arc<RequestLog>,
}

impl Tracked {
    pub fn wrap(inner: Body, entry: LogEntry, log: Arc<RequestLog>) -> Body {
        http_body_util::BodyExt::boxed(Tracked {
            inner,
            entry: Some(entry),
            log,
        })
    }

    fn finish(&mut self, outcome: &str) {
        if let Some(mut e) = self.entry.take() {
            e.outcome = outcome.to_string();
            self.log.record(e);
        }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(d), Some(e)) = (frame.data_ref(), this.entry.as_mut()) {
                    e.bytes += d.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish("complete");
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish("cut"),
            Poll::Ready(None) => this.finish("complete"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let outcome = if self.inner.is_end_stream() {
            "complete"
        } else {
            "disconnected"
        };
        self.finish(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    #[test]
    fn times_are_rfc3339_with_milliseconds_in_utc() {
        for (given, want) in [
            ("2026-12-06T05:13:48.123456789Z", "2026-12-06T05:13:48.123Z"),
            ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000Z"),
            ("2026-12-06T07:00:00.999+02:00", "2026-12-06T05:00:00.999Z"),
        ] {
            let t = OffsetDateTime::parse(given, &Rfc3339).unwrap();
            let t = t.to_offset(time::UtcOffset::UTC);
            assert_eq!(rfc3339_ms(t), want, "{given}");
        }
        let now = now_rfc3339_ms();
        assert!(OffsetDateTime::parse(&now, &Rfc3339).is_ok(), "{now}");
        assert_eq!(now.len(), "2026-12-06T05:13:48.123Z".len(), "{now}");
    }
}
