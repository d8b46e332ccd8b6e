//! Streaming cassette reader: line by line, bounded memory, every error with file and line.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::limits::Limits;
use base64::Engine;
use indexmap::IndexMap;

use super::footer::{ContentHasher, HashPlan};
use super::line::{diagnose, parse_header, parse_line};
use super::{
    CassetteError, Chunk, End, ErrorKind, Footer, Header, Interaction, Line, RequestLine,
    ResponseHead, ToolRecord,
};

/// The longest line accepted by default (64 MiB). A longer line is an error, not an allocation.
pub const DEFAULT_MAX_LINE_LEN: usize = crate::limits::DEFAULT.max_bytes;

/// What the reader yields, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A complete interaction, yielded when its `end` line is read.
    Interaction(Interaction),
    Tool(ToolRecord),
}

/// How a footer-less (cut short) cassette ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truncation {
    /// Interactions whose `end` line never came; they are not yielded.
    pub dropped: Vec<u64>,
    /// The last line was cut mid-write (no newline, not JSON) and was ignored.
    pub partial_last_line: bool,
    /// Lines read.
    pub lines: u64,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "truncated: no footer after {} lines", self.lines)?;
        if self.partial_last_line {
            write!(f, ", last line cut mid-write")?;
        }
        if !self.dropped.is_empty() {
            let ids: Vec<String> = self.dropped.iter().map(|i| i.to_string()).collect();
            write!(
                f,
                "; interaction{} {} dropped (no `end` line)",
                if ids.len() == 1 { "" } else { "s" },
                ids.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Where an interaction's body is in the file: what [`super::index`] keeps instead of the
/// chunk bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BodySpan {
    /// Byte offset of its first `chunk` line, else of its `end` line.
    pub start: u64,
    /// Byte offset just past its `end` line.
    pub end: u64,
    /// How many `chunk` lines it has.
    pub chunks: u64,
    /// The first body byte that is not ASCII whitespace (which reply shape was recorded).
    pub first_byte: Option<u8>,
    /// The line number of the line at `start`.
    pub line: u64,
}

/// An interaction still being assembled.
#[derive(Debug)]
struct Pending {
    seq: u64,
    /// Its `request` line: ids and request.
    line: RequestLine,
    response: Option<ResponseHead>,
    chunks: Vec<Chunk>,
    span: BodySpan,
    /// Bytes this interaction's lines put in memory so far (charged to `open_bytes`).
    bytes: usize,
}

/// The most bytes the interactions still open (no `end` yet) may hold together: a file of
/// requests that never end, or one endless response, must not grow memory with the file.
pub const OPEN_INTERACTION_LIMITS: Limits = Limits {
    max_bytes: 256 << 20,
    ..crate::limits::DEFAULT
};

/// One physical line as read.
enum RawLine {
    /// `buf` holds the line (with its `\n` when `complete`).
    Line {
        complete: bool,
    },
    TooLong {
        len: u64,
    },
    Eof,
}

/// Reads a cassette incrementally. Iterate it for [`Record`]s; an `Err` concerns one line
/// (skipped, reading goes on) unless [`CassetteError::is_fatal`]. After the iterator ends,
/// [`footer`](Self::footer) and [`truncation`](Self::truncation) describe how the file ended.
///
/// Interactions of different ids may interleave (a proxy recording concurrent requests); each
/// is assembled by id and yielded when its `end` arrives, so memory holds only open ones.
pub struct CassetteReader<R> {
    input: R,
    path: PathBuf,
    max_line: usize,
    header: Header,
    line_no: u64,
    /// The footer's hash of every byte of the lines before the current one, but for the
    /// held bytes from `unhashed` on (hashed in one piece when they are released).
    hasher: ContentHasher,
    /// The current line when it spans two fills of the input's buffer (or is too long).
    buf: Vec<u8>,
    /// The current line as `start..end` of the input's buffer, when it lies within one fill:
    /// read there without a copy.
    borrowed: Option<(usize, usize)>,
    /// Bytes at the front of the input's buffer already read as lines but not yet consumed,
    /// and where the not yet hashed ones among them start.
    held: usize,
    unhashed: usize,
    pending: IndexMap<u64, Pending>,
    seen: HashSet<u64>,
    requests: u64,
    footer: Option<Footer>,
    truncation: Option<Truncation>,
    partial_last_line: bool,
    eof_errors: Vec<CassetteError>,
    finished: bool,
    /// Bytes held by `pending`, bounded by [`OPEN_INTERACTION_LIMITS`].
    open_bytes: usize,
    /// Bytes read as lines so far, and the offset where the current line starts.
    pos: u64,
    line_start: u64,
    /// `false` in index mode: chunk bytes are checked and counted, then dropped.
    keep_chunks: bool,
    /// The body span of the interaction yielded last.
    ended: Option<BodySpan>,
}

impl CassetteReader<BufReader<File>> {
    /// Open `path` and read its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        Self::open_with_limit(path, DEFAULT_MAX_LINE_LEN)
    }

    /// Open with a custom maximum line length.
    pub fn open_with_limit(path: impl AsRef<Path>, max_line: usize) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        let io_err = |e| CassetteError::new(path, None, ErrorKind::Io(e));
        let mut file = File::open(path).map_err(io_err)?;
        let plan = HashPlan::of_file(&mut file).map_err(io_err)?;
        let input = BufReader::with_capacity(64 * 1024, file);
        Self::with_plan(input, path, max_line, plan)
    }
}

impl<R: BufRead> CassetteReader<R> {
    /// Read a cassette from `input`; `path` names it in errors.
    pub fn new(input: R, path: impl Into<PathBuf>) -> Result<Self, CassetteError> {
        Self::with_limit(input, path, DEFAULT_MAX_LINE_LEN)
    }

    /// Like [`new`](Self::new) with a custom maximum line length. The footer at the end is not
    /// known yet, so both footer hashes are computed ([`HashPlan::Both`]).
    pub fn with_limit(
        input: R,
        path: impl Into<PathBuf>,
        max_line: usize,
    ) -> Result<Self, CassetteError> {
        Self::with_plan(input, path, max_line, HashPlan::Both)
    }

    /// Read `input`, computing the footer hashes `plan` names.
    pub(crate) fn with_plan(
        input: R,
        path: impl Into<PathBuf>,
        max_line: usize,
        plan: HashPlan,
    ) -> Result<Self, CassetteError> {
        let mut r = CassetteReader {
            input,
            path: path.into(),
            max_line,
            header: super::Header::new(crate::provider::Api::OpenAiChat),
            line_no: 0,
            hasher: ContentHasher::new(plan),
            buf: Vec::new(),
            borrowed: None,
            held: 0,
            unhashed: 0,
            pending: IndexMap::new(),
            seen: HashSet::new(),
            requests: 0,
            footer: None,
            truncation: None,
            partial_last_line: false,
            eof_errors: Vec::new(),
            finished: false,
            open_bytes: 0,
            pos: 0,
            line_start: 0,
            keep_chunks: true,
            ended: None,
        };
        r.header = r.read_header()?;
        Ok(r)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The footer, once read.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    /// Set when the whole file has been read and it had no footer.
    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Index mode ([`super::index`]): chunks are validated and charged to the open-interaction
    /// limit exactly as when they are kept (so the same files are rejected), but yielded
    /// interactions have no chunks; [`take_span`](Self::take_span) says where they are.
    pub(crate) fn index_mode(mut self) -> Self {
        self.keep_chunks = false;
        self
    }

    /// Where the body of the interaction yielded last is in the input.
    pub(crate) fn take_span(&mut self) -> Option<BodySpan> {
        self.ended.take()
    }

    /// The request order of the oldest interaction still open (its `end` not yet read).
    pub(crate) fn oldest_open(&self) -> Option<u64> {
        self.pending.values().map(|p| p.seq).min()
    }

    fn err(&self, kind: ErrorKind) -> CassetteError {
        CassetteError::new(&self.path, Some(self.line_no), kind)
    }

    fn read_line(&mut self) -> std::io::Result<RawLine> {
        self.buf.clear();
        self.borrowed = None;
        self.line_start = self.pos;
        // Most lines lie within the input's buffer: read them there, and consume and hash
        // the lines held so only when the buffer must be refilled.
        let avail = self.input.fill_buf()?;
        let rest = avail.get(self.held..).unwrap_or_default();
        if let Some(i) = memchr::memchr(b'\n', rest) {
            if i < self.max_line.saturating_add(2) {
                self.borrowed = Some((self.held, self.held + i + 1));
                self.held += i + 1;
                self.pos += i as u64 + 1;
                return Ok(RawLine::Line { complete: true });
            }
        }
        self.release()?;
        loop {
            let avail = self.input.fill_buf()?;
            if avail.is_empty() {
                return Ok(if self.buf.is_empty() {
                    RawLine::Eof
                } else {
                    RawLine::Line { complete: false }
                });
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if self.buf.len() + take > self.max_line.saturating_add(2) {
                // Too long: hash and discard the rest of the line without keeping it.
                let mut len = self.buf.len() as u64;
                self.hasher.update(&self.buf);
                self.buf.clear();
                let mut consumed_nl = false;
                loop {
                    let avail = self.input.fill_buf()?;
                    if avail.is_empty() {
                        break;
                    }
                    let (take, done) = match memchr::memchr(b'\n', avail) {
                        Some(i) => (i + 1, true),
                        None => (avail.len(), false),
                    };
                    self.hasher.update(&avail[..take]);
                    len += take as u64;
                    self.input.consume(take);
                    self.pos += take as u64;
                    if done {
                        consumed_nl = true;
                        break;
                    }
                }
                if consumed_nl {
                    len -= 1;
                }
                return Ok(RawLine::TooLong { len });
            }
            self.buf.extend_from_slice(&avail[..take]);
            self.input.consume(take);
            self.pos += take as u64;
            if done {
                return Ok(RawLine::Line { complete: true });
            }
        }
    }

    /// Hash and consume the held lines, before the input's buffer is refilled.
    fn release(&mut self) -> std::io::Result<()> {
        if self.held > 0 {
            self.hash_held(self.held)?;
            self.input.consume(self.held);
            self.held = 0;
            self.unhashed = 0;
        }
        Ok(())
    }

    /// Hash the held bytes up to `end` (the footer is checked against every byte before it).
    fn hash_held(&mut self, end: usize) -> std::io::Result<()> {
        if end > self.unhashed {
            let avail = self.input.fill_buf()?;
            // `fill_buf` without `consume` returns the same buffer (the `BufRead` contract).
            self.hasher
                .update(avail.get(self.unhashed..end).unwrap_or_default());
            self.unhashed = end;
        }
        Ok(())
    }

    /// Hash the current line: a copied one now, a borrowed one with the held bytes.
    fn hash_line(&mut self) {
        if self.borrowed.is_none() {
            self.hasher.update(&self.buf);
        }
    }

    /// The current line, line end included.
    fn raw_line(&mut self) -> &[u8] {
        match self.borrowed {
            // `fill_buf` without `consume` returns the same buffer (the `BufRead` contract).
            Some((start, end)) => self
                .input
                .fill_buf()
                .ok()
                .and_then(|b| b.get(start..end))
                .unwrap_or_default(),
            None => &self.buf,
        }
    }

    /// The current line's content without its line end.
    fn content(&mut self) -> &[u8] {
        let mut b = self.raw_line();
        if let Some(rest) = b.strip_suffix(b"\n") {
            b = rest;
        }
        if let Some(rest) = b.strip_suffix(b"\r") {
            b = rest;
        }
        b
    }

    fn read_header(&mut self) -> Result<Header, CassetteError> {
        loop {
            let raw = self
                .read_line()
                .map_err(|e| CassetteError::new(&self.path, None, ErrorKind::Io(e)))?;
            match raw {
                RawLine::Eof => {
                    let line = (self.line_no > 0).then_some(self.line_no);
                    return Err(CassetteError::new(&self.path, line, ErrorKind::Empty));
                }
                RawLine::TooLong { len } => {
                    self.line_no += 1;
                    return Err(self.err(ErrorKind::LineTooLong {
                        len,
                        limit: self.max_line,
                    }));
                }
                RawLine::Line { .. } => {
                    self.line_no += 1;
                    if self.content().iter().all(u8::is_ascii_whitespace) {
                        self.hash_line();
                        continue;
                    }
                    let header = parse_header(self.content()).map_err(|k| self.err(k))?;
                    self.hash_line();
                    return Ok(header);
                }
            }
        }
    }

    /// The next record, with the order of its request line (for [`Cassette::load`]).
    pub(crate) fn next_record(&mut self) -> Option<Result<(u64, Record), CassetteError>> {
        loop {
            if self.finished {
                return self.eof_errors.pop().map(Err);
            }
            let raw = match self.read_line() {
                Ok(r) => r,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(CassetteError::new(
                        &self.path,
                        Some(self.line_no + 1),
                        ErrorKind::Io(e),
                    )));
                }
            };
            let complete = match raw {
                RawLine::Eof => {
                    self.at_eof();
                    continue;
                }
                RawLine::TooLong { len } => {
                    self.line_no += 1;
                    return Some(Err(self.err(ErrorKind::LineTooLong {
                        len,
                        limit: self.max_line,
                    })));
                }
                RawLine::Line { complete } => complete,
            };
            self.line_no += 1;
            if self.content().iter().all(u8::is_ascii_whitespace) {
                self.hash_line();
                continue;
            }
            let parsed = parse_line(self.content());
            let line = match parsed {
                Ok(line) => line,
                Err(e) => {
                    if !complete && self.footer.is_none() {
                        // Cut mid-write: the crash-safety contract says this line is lost.
                        self.partial_last_line = true;
                        self.hash_line();
                        continue;
                    }
                    let kind = diagnose(self.content(), e);
                    self.hash_line();
                    if self.footer.is_some() {
                        return Some(Err(self.err(ErrorKind::AfterFooter("non-JSON".into()))));
                    }
                    return Some(Err(self.err(kind)));
                }
            };
            if self.footer.is_some() {
                return Some(Err(self.err(ErrorKind::AfterFooter(line.kind().into()))));
            }
            if let Line::Footer(footer) = line {
                if let Some((start, _)) = self.borrowed {
                    if let Err(e) = self.hash_held(start) {
                        self.finished = true;
                        return Some(Err(self.err(ErrorKind::Io(e))));
                    }
                }
                let errors = self.check_footer(&footer);
                self.hash_line();
                self.footer = Some(footer);
                if !errors.is_empty() {
                    self.eof_errors.extend(errors.into_iter().rev());
                    return self.eof_errors.pop().map(Err);
                }
                continue;
            }
            self.hash_line();
            match self.apply(line) {
                Ok(Some(rec)) => return Some(Ok(rec)),
                Ok(None) => continue,
                Err(kind) => return Some(Err(self.err(kind))),
            }
        }
    }

    fn check_footer(&self, footer: &Footer) -> Vec<CassetteError> {
        let mut errors = Vec::new();
        let lines_before = self.line_no - 1;
        if footer.lines != lines_before {
            errors.push(self.err(ErrorKind::FooterMismatch {
                field: "lines",
                footer: footer.lines.to_string(),
                actual: lines_before.to_string(),
            }));
        }
        if let Err(kind) = self.hasher.verify(footer) {
            errors.push(self.err(kind));
        }
        if footer.interactions != self.requests {
            errors.push(self.err(ErrorKind::FooterMismatch {
                field: "interactions",
                footer: footer.interactions.to_string(),
                actual: self.requests.to_string(),
            }));
        }
        errors
    }

    fn at_eof(&mut self) {
        self.finished = true;
        let open: Vec<u64> = self.pending.keys().copied().collect();
        if self.footer.is_some() {
            let line = self.line_no;
            self.eof_errors.extend(
                open.into_iter().rev().map(|id| {
                    CassetteError::new(&self.path, Some(line), ErrorKind::MissingEnd(id))
                }),
            );
        } else {
            self.truncation = Some(Truncation {
                dropped: open,
                partial_last_line: self.partial_last_line,
                lines: self.line_no,
            });
        }
        self.pending.clear();
        self.open_bytes = 0;
    }

    /// Apply one parsed interaction/tool line to the assembly state.
    fn apply(&mut self, line: Line) -> Result<Option<(u64, Record)>, ErrorKind> {
        match line {
            Line::Header(_) => Err(ErrorKind::DuplicateHeader),
            Line::Footer(_) => unreachable!("footer handled by the caller"),
            Line::Tool(t) => Ok(Some((u64::MAX, Record::Tool(t)))),
            Line::Request(r) => {
                if !self.seen.insert(r.id) {
                    return Err(ErrorKind::DuplicateRequest(r.id));
                }
                let bytes = (self.pos - self.line_start) as usize;
                self.charge_open(bytes)?;
                self.requests += 1;
                self.pending.insert(
                    r.id,
                    Pending {
                        seq: self.requests,
                        line: r,
                        response: None,
                        chunks: Vec::new(),
                        span: BodySpan::default(),
                        bytes,
                    },
                );
                Ok(None)
            }
            Line::Response(r) => {
                let p = self.open_interaction("response", r.id)?;
                if p.response.is_some() {
                    return Err(ErrorKind::OutOfOrder {
                        kind: "response",
                        id: r.id,
                        problem: "twice: one response head per attempt",
                    });
                }
                p.response = Some(r.head);
                Ok(None)
            }
            Line::Chunk(c) => {
                let (id, ms) = (c.id, c.ms);
                let bytes = c.into_bytes()?;
                let p = self.open_interaction("chunk", id)?;
                if p.response.is_none() {
                    return Err(ErrorKind::OutOfOrder {
                        kind: "chunk",
                        id,
                        problem: "before its response: a `response` line must come first",
                    });
                }
                let n = bytes.len();
                self.charge_open(n)?;
                let (start, line, keep) = (self.line_start, self.line_no, self.keep_chunks);
                let p = self.pending.get_mut(&id).expect("checked just above");
                p.bytes += n;
                if p.span.chunks == 0 {
                    p.span.start = start;
                    p.span.line = line;
                }
                p.span.chunks += 1;
                if p.span.first_byte.is_none() {
                    p.span.first_byte = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
                }
                if keep {
                    p.chunks.push(Chunk { ms, bytes });
                }
                Ok(None)
            }
            Line::End(e) => {
                self.open_interaction("end", e.id)?;
                let p = self
                    .pending
                    .shift_remove(&e.id)
                    .expect("open_interaction checked the id");
                self.open_bytes -= p.bytes;
                let mut span = p.span;
                if span.chunks == 0 {
                    span.start = self.line_start;
                    span.line = self.line_no;
                }
                span.end = self.pos;
                self.ended = Some(span);
                Ok(Some((
                    p.seq,
                    Record::Interaction(Interaction {
                        id: e.id,
                        step: p.line.step,
                        attempt: p.line.attempt,
                        request: p.line.request,
                        response: p.response,
                        chunks: p.chunks,
                        end: Some(End {
                            ms: e.ms,
                            outcome: e.outcome,
                        }),
                    }),
                )))
            }
        }
    }

    /// Charge `bytes` more to the open interactions.
    fn charge_open(&mut self, bytes: usize) -> Result<(), ErrorKind> {
        let total = self.open_bytes.saturating_add(bytes);
        OPEN_INTERACTION_LIMITS
            .check_bytes("the interactions open at this line (no `end` yet)", total)
            .map_err(ErrorKind::Limit)?;
        self.open_bytes = total;
        Ok(())
    }

    fn open_interaction(&mut self, kind: &'static str, id: u64) -> Result<&mut Pending, ErrorKind> {
        if !self.pending.contains_key(&id) {
            return Err(if self.seen.contains(&id) {
                ErrorKind::OutOfOrder {
                    kind,
                    id,
                    problem: "after its `end` line",
                }
            } else {
                ErrorKind::Orphan { kind, id }
            });
        }
        Ok(self.pending.get_mut(&id).expect("checked"))
    }
}

impl super::ChunkLine {
    /// The exact body bytes of a `chunk` line: its `data` text, or its `b64` decoded.
    pub(super) fn into_bytes(self) -> Result<Vec<u8>, ErrorKind> {
        match (self.data, self.b64) {
            (Some(d), None) => Ok(d.into_bytes()),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| ErrorKind::BadChunk {
                    id: self.id,
                    problem: format!("has invalid base64 in `b64` ({e})"),
                }),
            (Some(_), Some(_)) => Err(ErrorKind::BadChunk {
                id: self.id,
                problem: "has both `data` and `b64`".into(),
            }),
            (None, None) => Err(ErrorKind::BadChunk {
                id: self.id,
                problem: "has neither `data` nor `b64`".into(),
            }),
        }
    }
}

impl<R: BufRead> CassetteReader<R> {
    /// Read every record to the end: the interactions, each turned into a `T` by `keep` as it
    /// completes (which may ask the reader about it, e.g. [`take_span`](Self::take_span)), in
    /// the order of their `request` lines, and the tool lines. What [`Cassette::load`] and
    /// [`CassetteIndex::open`](super::CassetteIndex::open) both build on.
    pub(crate) fn read_all<T>(
        &mut self,
        mut keep: impl FnMut(&mut Self, Interaction) -> T,
    ) -> Result<(Vec<T>, Vec<ToolRecord>), CassetteError> {
        let mut interactions = Vec::new();
        let mut tools = Vec::new();
        while let Some(rec) = self.next_record() {
            match rec? {
                (seq, Record::Interaction(i)) => interactions.push((seq, keep(self, i))),
                (_, Record::Tool(t)) => tools.push(t),
            }
        }
        interactions.sort_by_key(|(seq, _)| *seq);
        Ok((interactions.into_iter().map(|(_, i)| i).collect(), tools))
    }
}

impl<R: BufRead> Iterator for CassetteReader<R> {
    type Item = Result<Record, CassetteError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().map(|r| r.map(|(_, rec)| rec))
    }
}
/// A whole cassette in memory.
#[derive(Debug, Clone)]
pub struct Cassette {
    pub path: PathBuf,
    pub header: Header,
    /// Complete interactions, in the order of their `request` lines.
    pub interactions: Vec<Interaction>,
    pub tools: Vec<ToolRecord>,
    pub footer: Option<Footer>,
    /// `Some` when the file had no footer (cut short).
    pub truncation: Option<Truncation>,
}

impl Cassette {
    /// Read and validate a cassette file; the first error is returned.
    pub fn load(path: impl AsRef<Path>) -> Result<Cassette, CassetteError> {
        Self::read(CassetteReader::open(path)?)
    }

    /// Read a cassette held in memory; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> Result<Cassette, CassetteError> {
        let plan = HashPlan::of_bytes(bytes);
        Self::read(CassetteReader::with_plan(
            bytes,
            path,
            DEFAULT_MAX_LINE_LEN,
            plan,
        )?)
    }

    fn read<R: BufRead>(mut reader: CassetteReader<R>) -> Result<Cassette, CassetteError> {
        let (interactions, tools) = reader.read_all(|_, i| i)?;
        Ok(Cassette {
            path: reader.path.clone(),
            header: reader.header.clone(),
            interactions,
            tools,
            footer: reader.footer.take(),
            truncation: reader.truncation.take(),
        })
    }

    pub fn is_truncated(&self) -> bool {
        self.truncation.is_some()
    }
}
