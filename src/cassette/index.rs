//! A cassette indexed by byte offsets: what `serve` holds, so its memory grows with the number
//! of interactions and the size of their requests, not with the response bodies.
//!
//! [`CassetteIndex::open`] reads the file once through the same [`CassetteReader`] as
//! [`Cassette::load`](super::Cassette::load) (same validation, limits, footer check and
//! errors, so it accepts and rejects exactly the same files) and keeps per interaction its
//! request, response head and end, and where its body lines are: the byte range from its
//! first `chunk` line to its `end` line, and their count. It does not keep one entry per
//! chunk: a 1 GB cassette holds millions of chunk lines, and per-chunk offsets alone would
//! grow with the file.
//!
//! [`CassetteIndex::body`] reads one interaction's chunks back from that range, decoding each
//! line as the reader does. Lines of other interactions inside the range (a proxy recording
//! concurrent requests interleaves them) are skipped. Before reading, the file is checked to
//! be the one indexed (size, modification time, inode); a file changed in place, replaced or
//! cut, or a range that no longer holds what was indexed, is [`ErrorKind::Changed`], never
//! other bytes.

use std::fs::{File, Metadata};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::line::parse_line;
use super::reader::{BodySpan, CassetteReader, Truncation, DEFAULT_MAX_LINE_LEN};
use super::{
    CassetteError, Chunk, End, ErrorKind, Footer, Header, Interaction, Line, Request, ResponseHead,
    ToolRecord,
};

/// What identifies the file that was indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a file replaced by another (rename over it) is another file.
    file_id: (u64, u64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        #[cfg(unix)]
        let file_id = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let file_id = (0, 0);
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            file_id,
        }
    }

    /// What differs from `indexed`, or `None` when nothing does.
    fn change_from(&self, indexed: &Stamp) -> Option<String> {
        if self.file_id != indexed.file_id {
            Some("it was replaced by another file".into())
        } else if self.len != indexed.len {
            Some(format!(
                "{} bytes now, {} when indexed",
                self.len, indexed.len
            ))
        } else if self.modified != indexed.modified {
            Some("its modification time changed".into())
        } else {
            None
        }
    }
}

/// One interaction as indexed: everything but the body bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedInteraction {
    pub id: u64,
    pub step: u32,
    pub attempt: u32,
    pub request: Request,
    /// `None` when the connection failed before the response head arrived.
    pub response: Option<ResponseHead>,
    pub end: Option<End>,
    span: BodySpan,
}

impl IndexedInteraction {
    /// How many `chunk` lines its body has.
    pub fn chunk_count(&self) -> u64 {
        self.span.chunks
    }

    /// The first body byte that is not ASCII whitespace (`{` for a JSON reply), if any.
    pub fn body_first_byte(&self) -> Option<u8> {
        self.span.first_byte
    }

    /// The byte range of the file its body is read from: its first `chunk` line (else its
    /// `end` line) to just past its `end` line.
    pub fn body_range(&self) -> std::ops::Range<u64> {
        self.span.start..self.span.end
    }
}

/// A cassette indexed by offsets (see the module docs).
#[derive(Debug, Clone)]
pub struct CassetteIndex {
    pub path: PathBuf,
    pub header: Header,
    /// Complete interactions, in the order of their `request` lines (as [`super::Cassette`]).
    pub interactions: Vec<IndexedInteraction>,
    pub tools: Vec<ToolRecord>,
    pub footer: Option<Footer>,
    /// `Some` when the file had no footer (cut short).
    pub truncation: Option<Truncation>,
    stamp: Stamp,
}

impl CassetteIndex {
    /// Read and validate `path` as [`Cassette::load`](super::Cassette::load) does (the first
    /// error is returned) and index it.
    pub fn open(path: impl AsRef<Path>) -> Result<CassetteIndex, CassetteError> {
        let path = path.as_ref();
        let io_err = |e| CassetteError::new(path, None, ErrorKind::Io(e));
        let before = Stamp::of(&std::fs::metadata(path).map_err(io_err)?);
        let mut reader = CassetteReader::open(path)?.index_mode();
        let (interactions, tools) = reader.read_all(|reader, i| IndexedInteraction {
            id: i.id,
            step: i.step,
            attempt: i.attempt,
            request: i.request,
            response: i.response,
            end: i.end,
            span: reader.take_span().unwrap_or_default(),
        })?;
        let after = Stamp::of(&std::fs::metadata(path).map_err(io_err)?);
        if let Some(change) = after.change_from(&before) {
            let kind = ErrorKind::Changed(format!("while it was read: {change}"));
            return Err(CassetteError::new(path, None, kind));
        }
        Ok(CassetteIndex {
            path: path.to_path_buf(),
            header: reader.header().clone(),
            interactions,
            tools,
            footer: reader.footer().cloned(),
            truncation: reader.truncation().cloned(),
            stamp: before,
        })
    }

    pub fn is_truncated(&self) -> bool {
        self.truncation.is_some()
    }

    /// The chunks of interaction `index` (a position in [`interactions`](Self::interactions)),
    /// read from the file as they are asked for. Fails at once when the file is not the one
    /// indexed.
    pub fn body(&self, index: usize) -> Result<BodyReader, CassetteError> {
        let inter = &self.interactions[index];
        let span = inter.span;
        let io_err = |e| CassetteError::new(&self.path, Some(span.line), ErrorKind::Io(e));
        let mut file = File::open(&self.path).map_err(io_err)?;
        let now = Stamp::of(&file.metadata().map_err(io_err)?);
        if let Some(change) = now.change_from(&self.stamp) {
            return Err(CassetteError::new(
                &self.path,
                None,
                ErrorKind::Changed(change),
            ));
        }
        file.seek(SeekFrom::Start(span.start)).map_err(io_err)?;
        Ok(BodyReader {
            input: BufReader::with_capacity(64 * 1024, file.take(span.end - span.start)),
            path: self.path.clone(),
            id: inter.id,
            expected: span.chunks,
            read: 0,
            line_no: span.line,
            buf: Vec::new(),
            done: false,
        })
    }

    /// Interaction `index` whole, its chunks read from the file: exactly what
    /// [`Cassette::load`](super::Cassette::load) holds for it.
    pub fn interaction(&self, index: usize) -> Result<Interaction, CassetteError> {
        let chunks = self.body(index)?.collect::<Result<Vec<_>, _>>()?;
        let i = &self.interactions[index];
        Ok(Interaction {
            id: i.id,
            step: i.step,
            attempt: i.attempt,
            request: i.request.clone(),
            response: i.response.clone(),
            chunks,
            end: i.end,
        })
    }
}

/// One interaction's chunks, read from the file in order ([`CassetteIndex::body`]). Yields an
/// [`ErrorKind::Changed`] error (then nothing) when the lines are not what was indexed.
pub struct BodyReader {
    input: BufReader<Take<File>>,
    path: PathBuf,
    id: u64,
    expected: u64,
    read: u64,
    /// The line number of the next line.
    line_no: u64,
    buf: Vec<u8>,
    done: bool,
}

impl BodyReader {
    /// The next chunks, up to about `max_bytes` of body (at least one chunk unless the body
    /// is over): a play reads a batch at a time without holding a thread while it paces them.
    /// Once the last chunk is read, its `end` line is checked too, so [`is_done`](Self::is_done)
    /// tells the body is over without another read (a client that saw the whole stream may
    /// close the connection at once).
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<Chunk>, CassetteError> {
        let mut out = Vec::new();
        let mut size = 0;
        while size < max_bytes {
            match self.next() {
                Some(Ok(c)) => {
                    size += c.bytes.len().max(1);
                    out.push(c);
                }
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        if !self.done && self.read == self.expected {
            // A chunk past the count is an error, so this reads the `end` line or fails.
            if let Some(Err(e)) = self.next() {
                return Err(e);
            }
        }
        Ok(out)
    }

    /// Whether every chunk and the `end` line were read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn changed(&mut self, line: u64, what: String) -> CassetteError {
        self.done = true;
        CassetteError::new(&self.path, Some(line), ErrorKind::Changed(what))
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, CassetteError> {
        loop {
            self.buf.clear();
            let line = self.line_no;
            let limit = DEFAULT_MAX_LINE_LEN as u64 + 2;
            let n = (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| CassetteError::new(&self.path, Some(line), ErrorKind::Io(e)))?;
            if n == 0 {
                let what = format!(
                    "interaction {}: its `end` line is no longer where it was",
                    self.id
                );
                return Err(self.changed(line, what));
            }
            self.line_no += 1;
            let mut content = self.buf.as_slice();
            content = content.strip_suffix(b"\n").unwrap_or(content);
            content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = match parse_line(content) {
                Ok(l) => l,
                Err(_) => {
                    let what = format!("interaction {}: a body line no longer parses", self.id);
                    return Err(self.changed(line, what));
                }
            };
            match parsed {
                Line::Chunk(c) if c.id == self.id => {
                    let ms = c.ms;
                    let bytes = c
                        .into_bytes()
                        .map_err(|kind| CassetteError::new(&self.path, Some(line), kind))?;
                    self.read += 1;
                    if self.read > self.expected {
                        let what = format!(
                            "interaction {} has more than its {} chunks",
                            self.id, self.expected
                        );
                        return Err(self.changed(line, what));
                    }
                    return Ok(Some(Chunk { ms, bytes }));
                }
                Line::End(e) if e.id == self.id => {
                    let at_end =
                        self.input.get_ref().limit() == 0 && self.input.buffer().is_empty();
                    if self.read != self.expected || !at_end {
                        let what = format!(
                            "interaction {}: {} chunks before its `end` line, {} when indexed",
                            self.id, self.read, self.expected
                        );
                        return Err(self.changed(line, what));
                    }
                    self.done = true;
                    return Ok(None);
                }
                // Another interaction's line, interleaved (a proxy recording).
                Line::Chunk(_) | Line::End(_) | Line::Response(_) | Line::Request(_) => {}
                Line::Tool(_) => {}
                Line::Header(_) | Line::Footer(_) => {
                    let what = format!(
                        "a `{}` line inside interaction {}'s body",
                        parsed.kind(),
                        self.id
                    );
                    return Err(self.changed(line, what));
                }
            }
        }
    }
}

impl Iterator for BodyReader {
    type Item = Result<Chunk, CassetteError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_chunk();
        if next.is_err() {
            self.done = true;
        }
        next.transpose()
    }
}
