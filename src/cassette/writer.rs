//! Append-only cassette writer with redaction before disk.
//!
//! Body reads are redacted on a sliding window ([`Redactor::hold_from`]): a read whose end
//! could still be the start of a secret is held back and written when the next read of the
//! same interaction arrives (or before its `end`), so a key split across reads is redacted
//! whole. Other reads are written as they come, one line each, at their own `ms`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use base64::Engine;
use serde::Serialize;

use super::footer::{ContentHasher, FooterHash, HashPlan};
use super::{
    ChunkLine, End, EndLine, Footer, Header, Interaction, Line, Redactor, Request, RequestLine,
    ResponseHead, ResponseLine, ToolRecord,
};

/// Writes a cassette line by line, flushing each line as it is written, so a crash loses at
/// most the line being written and leaves a readable, truncated cassette. Every line passes
/// through the [`Redactor`] first. Call [`finish`](Self::finish) to write the footer.
///
/// Misuse that would produce an unreadable cassette (a chunk for an unknown id, a duplicate
/// request id) is refused with an `InvalidInput` error and nothing is written.
pub struct CassetteWriter<W: Write> {
    out: W,
    hasher: ContentHasher,
    lines: u64,
    interactions: u64,
    redactor: Redactor,
    /// Open interactions: id -> whether the response head was written.
    open: HashMap<u64, bool>,
    seen: HashSet<u64>,
    /// Body bytes held back by the sliding window, per open interaction, with the `ms` of
    /// the read they last came with.
    held: HashMap<u64, (u64, Vec<u8>)>,
    line_buf: Vec<u8>,
}

impl CassetteWriter<BufWriter<File>> {
    /// Create (truncate) `path` and write the header.
    pub fn create(path: impl AsRef<Path>, header: Header, redactor: Redactor) -> io::Result<Self> {
        let file = File::create(path)?;
        Self::new(BufWriter::new(file), header, redactor)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl<W: Write> CassetteWriter<W> {
    /// Start a cassette on `out`. The header's `redacted` list gets the rules in force
    /// appended (entries already there are kept).
    pub fn new(out: W, mut header: Header, redactor: Redactor) -> io::Result<Self> {
        for rule in redactor.rules() {
            if !header.redacted.contains(&rule) {
                header.redacted.push(rule);
            }
        }
        let mut w = CassetteWriter {
            out,
            hasher: ContentHasher::new(HashPlan::Blake3),
            lines: 0,
            interactions: 0,
            redactor,
            open: HashMap::new(),
            seen: HashSet::new(),
            held: HashMap::new(),
            line_buf: Vec::with_capacity(1024),
        };
        w.line(&Line::Header(header))?;
        Ok(w)
    }

    fn line(&mut self, line: &impl Serialize) -> io::Result<()> {
        self.line_buf.clear();
        serde_json::to_writer(&mut self.line_buf, line)?;
        self.line_buf.push(b'\n');
        self.out.write_all(&self.line_buf)?;
        self.out.flush()?;
        self.hasher.update(&self.line_buf);
        self.lines += 1;
        Ok(())
    }

    /// Begin an attempt. A `request.body_b64` (a non-JSON body read back from a cassette) is
    /// written again, redacted like [`write_raw_request`](Self::write_raw_request).
    pub fn write_request(
        &mut self,
        id: u64,
        step: u32,
        attempt: u32,
        request: &Request,
    ) -> io::Result<()> {
        let Some(b64) = &request.body_b64 else {
            return self.request_line(id, step, attempt, request, None);
        };
        match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(raw) => self.write_raw_request(id, step, attempt, request, &raw),
            // Not base64 (a hand-edited file): kept as text, redacted as text.
            Err(_) => {
                let clean = self.redactor.bytes(b64.as_bytes());
                let text = String::from_utf8_lossy(&clean).into_owned();
                self.request_line(id, step, attempt, request, Some(text))
            }
        }
    }

    /// Begin an attempt whose body is not JSON: `raw` (redacted) is stored as `body_b64`,
    /// `request.body` as `body` (normally null).
    pub fn write_raw_request(
        &mut self,
        id: u64,
        step: u32,
        attempt: u32,
        request: &Request,
        raw: &[u8],
    ) -> io::Result<()> {
        let clean = self.redactor.bytes(raw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(clean);
        self.request_line(id, step, attempt, request, Some(b64))
    }

    fn request_line(
        &mut self,
        id: u64,
        step: u32,
        attempt: u32,
        request: &Request,
        body_b64: Option<String>,
    ) -> io::Result<()> {
        if self.seen.contains(&id) {
            return Err(invalid(format!("duplicate request id {id}")));
        }
        let line = Line::Request(RequestLine {
            id,
            step,
            attempt,
            request: Request {
                method: request.method.clone(),
                url: self.redactor.url(&request.url),
                headers: self.redactor.headers(&request.headers),
                body: self.redactor.value(&request.body).into(),
                body_b64,
            },
        });
        self.line(&line)?;
        self.seen.insert(id);
        self.open.insert(id, false);
        self.interactions += 1;
        Ok(())
    }

    fn check_open(&self, what: &str, id: u64) -> io::Result<bool> {
        self.open
            .get(&id)
            .copied()
            .ok_or_else(|| invalid(format!("{what} for id {id}, which has no open request")))
    }

    pub fn write_response(&mut self, id: u64, head: &ResponseHead) -> io::Result<()> {
        if self.check_open("response", id)? {
            return Err(invalid(format!("second response for id {id}")));
        }
        let line = Line::Response(ResponseLine {
            id,
            head: ResponseHead {
                headers: self.redactor.response_headers(&head.headers),
                ..*head
            },
        });
        self.line(&line)?;
        self.open.insert(id, true);
        Ok(())
    }

    /// One body read, redacted on the sliding window (module docs), one `chunk` line per read
    /// (`data` when valid UTF-8 on its own, else `b64`). A read whose end could be the start
    /// of a secret is held until the next read of the interaction (or its `end`): if a secret
    /// then spans the two, the held line extends to the secret's end; if the secret is still
    /// incomplete, the two reads become one line.
    pub fn write_chunk(&mut self, id: u64, ms: u64, bytes: &[u8]) -> io::Result<()> {
        if !self.check_open("chunk", id)? {
            return Err(invalid(format!("chunk for id {id} before its response")));
        }
        let mut rest = bytes.to_vec();
        if let Some((held_ms, mut buf)) = self.held.remove(&id) {
            let boundary = buf.len();
            buf.extend_from_slice(bytes);
            if self.redactor.hold_from(&buf) < boundary {
                self.held.insert(id, (ms, buf));
                return Ok(());
            }
            let end = self.redactor.span_end(&buf, boundary);
            self.chunk_line(id, held_ms, &buf[..end])?;
            rest = buf.split_off(end);
        }
        if self.redactor.hold_from(&rest) < rest.len() {
            self.held.insert(id, (ms, rest));
        } else if !rest.is_empty() {
            self.chunk_line(id, ms, &rest)?;
        }
        Ok(())
    }

    /// Write what the window still holds for `id`.
    fn flush_held(&mut self, id: u64) -> io::Result<()> {
        match self.held.remove(&id) {
            Some((ms, bytes)) => self.chunk_line(id, ms, &bytes),
            None => Ok(()),
        }
    }

    fn chunk_line(&mut self, id: u64, ms: u64, bytes: &[u8]) -> io::Result<()> {
        let clean = self.redactor.bytes(bytes);
        let line = match String::from_utf8(clean) {
            Ok(data) => ChunkLine {
                id,
                ms,
                data: Some(data),
                b64: None,
            },
            Err(e) => ChunkLine {
                id,
                ms,
                data: None,
                b64: Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes())),
            },
        };
        self.line(&Line::Chunk(line))
    }

    /// Close an attempt.
    pub fn write_end(&mut self, id: u64, end: End) -> io::Result<()> {
        self.check_open("end", id)?;
        self.flush_held(id)?;
        self.line(&Line::End(EndLine {
            id,
            ms: end.ms,
            outcome: end.outcome,
        }))?;
        self.open.remove(&id);
        Ok(())
    }

    pub fn write_tool(&mut self, tool: &ToolRecord) -> io::Result<()> {
        let line = Line::Tool(ToolRecord {
            step: tool.step,
            call_id: self.redactor.text(&tool.call_id),
            tool: tool.tool.clone(),
            input: self.redactor.value(&tool.input),
            output: self.redactor.value(&tool.output),
            error: tool.error,
        });
        self.line(&line)
    }

    /// Write a whole interaction (request, response, chunks, end). Without an `end`, the
    /// interaction stays open.
    pub fn write_interaction(&mut self, i: &Interaction) -> io::Result<()> {
        self.write_request(i.id, i.step, i.attempt, &i.request)?;
        if let Some(head) = &i.response {
            self.write_response(i.id, head)?;
            for c in &i.chunks {
                self.write_chunk(i.id, c.ms, &c.bytes)?;
            }
        }
        if let Some(end) = i.end {
            self.write_end(i.id, end)?;
        }
        Ok(())
    }

    /// The rules that removed something so far.
    pub fn redacted(&self) -> Vec<String> {
        self.redactor.removed()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Write what the window still holds for interactions left open, then the footer, and
    /// flush; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let mut ids: Vec<u64> = self.held.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.flush_held(id)?;
        }
        let footer = Footer {
            interactions: self.interactions,
            lines: self.lines,
            blake3: self.hasher.hex(FooterHash::Blake3),
            sha256: None,
            redacted: Some(self.redactor.removed()),
        };
        self.line(&Line::Footer(footer))?;
        Ok(self.out)
    }
}
