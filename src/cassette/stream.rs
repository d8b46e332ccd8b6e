//! A cassette read while a replay consumes it, so memory is bounded by what is in flight rather
//! than by the file: a 1 GB cassette replays in the memory of one interaction.
//!
//! [`CassetteStream`] yields interactions in the order of their `request` lines, exactly as
//! [`Cassette::load`](super::Cassette::load) orders them, reading only as far as needed: an
//! interaction is handed out once no interaction with an earlier `request` line is still open.
//! `tool` lines may come anywhere in the file, and the replay answers a tool call by `call_id`
//! first; when the lines read so far hold no such `call_id`, the stream reads on to the next
//! complete interaction (a recorder writes a tool's line right after the interaction that
//! called it), and only if the line is not there either scans the rest of the file for `tool`
//! lines alone (a second, light pass that keeps only those), so tool lookup sees exactly the
//! list `Cassette::load` would build. [`finish`](CassetteStream::finish)
//! reads the rest of the file, so the footer check, the unused-interaction count and the
//! truncation report are the same as for a whole load; the first error ends the stream and is
//! returned there.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::footer::HashPlan;
use super::reader::{CassetteReader, Record, Truncation, DEFAULT_MAX_LINE_LEN};
use super::{CassetteError, ErrorKind, Header, Interaction, Line, ToolRecord};

/// Where the bytes come from; kept so the `tool` scan can read them a second time.
#[derive(Clone)]
enum Source {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

impl Source {
    fn open(&self, path: &Path) -> Result<Box<dyn BufRead + Send>, CassetteError> {
        Ok(self.open_planned(path, false)?.0)
    }

    /// Open for reading; with `plan`, also look at the footer first to know which hash to
    /// compute ([`HashPlan`]).
    fn open_planned(
        &self,
        path: &Path,
        plan: bool,
    ) -> Result<(Box<dyn BufRead + Send>, HashPlan), CassetteError> {
        Ok(match self {
            Source::File(p) => {
                let io_err = |e| CassetteError::new(path, None, ErrorKind::Io(e));
                let mut file = File::open(p).map_err(io_err)?;
                let plan = match plan {
                    true => HashPlan::of_file(&mut file).map_err(io_err)?,
                    false => HashPlan::Both,
                };
                (Box::new(BufReader::with_capacity(64 * 1024, file)), plan)
            }
            Source::Bytes(b) => {
                let plan = match plan {
                    true => HashPlan::of_bytes(b),
                    false => HashPlan::Both,
                };
                (Box::new(std::io::Cursor::new(Arc::clone(b))), plan)
            }
        })
    }
}

/// How the whole file read, once [`CassetteStream::finish`] has read it to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// Complete interactions in the file.
    pub interactions: usize,
    /// Interactions handed out by [`CassetteStream::next_interaction`].
    pub served: usize,
    /// `Some` when the file had no footer.
    pub truncation: Option<Truncation>,
}

/// A cassette read incrementally for one replay (module docs).
pub struct CassetteStream {
    reader: CassetteReader<Box<dyn BufRead + Send>>,
    source: Source,
    header: Header,
    /// Complete interactions not yet handed out, by the order of their `request` line.
    ready: BTreeMap<u64, Interaction>,
    /// `tool` lines in file order: those read so far, or every one after a scan.
    tools: Vec<ToolRecord>,
    tools_complete: bool,
    complete: usize,
    served: usize,
    error: Option<CassetteError>,
    eof: bool,
}

impl CassetteStream {
    /// Open a cassette file and read its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        Self::new(Source::File(path.to_path_buf()), path)
    }

    /// Stream a cassette held in memory; `path` names it in errors.
    pub fn from_bytes(
        bytes: impl Into<Arc<[u8]>>,
        path: impl AsRef<Path>,
    ) -> Result<Self, CassetteError> {
        Self::new(Source::Bytes(bytes.into()), path.as_ref())
    }

    fn new(source: Source, path: &Path) -> Result<Self, CassetteError> {
        let (input, plan) = source.open_planned(path, true)?;
        let reader = CassetteReader::with_plan(input, path, DEFAULT_MAX_LINE_LEN, plan)?;
        Ok(CassetteStream {
            header: reader.header().clone(),
            reader,
            source,
            ready: BTreeMap::new(),
            tools: Vec::new(),
            tools_complete: false,
            complete: 0,
            served: 0,
            error: None,
            eof: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    /// Interactions handed out so far.
    pub fn served(&self) -> usize {
        self.served
    }

    /// The next interaction in request order; `None` at the end of the file or after an error
    /// (which [`finish`](Self::finish) returns).
    pub fn next_interaction(&mut self) -> Option<Interaction> {
        loop {
            if let Some((&seq, _)) = self.ready.first_key_value() {
                // An interaction still open with an earlier request line comes first.
                if self.reader.oldest_open().is_none_or(|open| open > seq) {
                    self.served += 1;
                    return self.ready.pop_first().map(|(_, i)| i);
                }
            }
            if !self.pull() {
                return None;
            }
        }
    }

    /// Read one record. Returns false when nothing more can be read.
    fn pull(&mut self) -> bool {
        if self.eof || self.error.is_some() {
            return false;
        }
        match self.reader.next_record() {
            None => self.eof = true,
            Some(Err(e)) => self.error = Some(e),
            Some(Ok((seq, Record::Interaction(i)))) => {
                self.complete += 1;
                self.ready.insert(seq, i);
            }
            Some(Ok((_, Record::Tool(t)))) => {
                if !self.tools_complete {
                    self.tools.push(t);
                }
            }
        }
        true
    }

    /// The `tool` lines read so far, in file order: a prefix of the file's.
    pub fn tool_lines(&self) -> &[ToolRecord] {
        &self.tools
    }

    /// Read on until a `tool` line that `wanted` accepts, the next complete interaction or the
    /// end of the file, whichever comes first; true if such a `tool` line was read. A recorder
    /// writes a tool's line right after the interaction that called it, so this usually finds
    /// the answer without the whole-file scan of [`all_tool_lines`](Self::all_tool_lines),
    /// while holding at most one interaction more than the replay asked for.
    pub fn read_tools_ahead(&mut self, wanted: impl Fn(&ToolRecord) -> bool) -> bool {
        if self.tools_complete {
            return false;
        }
        loop {
            let (tools, complete) = (self.tools.len(), self.complete);
            if !self.pull() {
                return false;
            }
            if self.tools[tools..].iter().any(&wanted) {
                return true;
            }
            if self.complete > complete {
                return false;
            }
        }
    }

    /// Every `tool` line of the file, in file order (scanning the rest of the file for them
    /// the first time). Indices into [`tool_lines`](Self::tool_lines) stay valid.
    pub fn all_tool_lines(&mut self) -> &[ToolRecord] {
        if !self.tools_complete {
            self.scan_tools();
        }
        &self.tools
    }

    /// Collect every `tool` line of the file in a second pass that parses nothing else.
    /// Unreadable lines are skipped here: the main pass reports them.
    fn scan_tools(&mut self) {
        self.tools_complete = true;
        if self.eof || self.error.is_some() {
            // The main pass has already seen every line.
            return;
        }
        let Ok(mut input) = self.source.open(self.reader.path()) else {
            return;
        };
        let mut tools = Vec::with_capacity(self.tools.len());
        let mut line = Vec::new();
        while read_capped_line(&mut input, &mut line, DEFAULT_MAX_LINE_LEN) {
            if is_tool_line(&line) {
                if let Ok(Line::Tool(t)) = serde_json::from_slice::<Line>(&line) {
                    tools.push(t);
                }
            }
        }
        self.tools = tools;
    }

    /// Read the rest of the file (checking it, footer included) and say how it ended; the first
    /// error anywhere in the file is returned instead.
    pub fn finish(mut self) -> Result<StreamEnd, CassetteError> {
        while self.pull() {
            // Interactions no replay asked for are dropped as they complete.
            self.ready.clear();
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(StreamEnd {
            interactions: self.complete,
            served: self.served,
            truncation: self.reader.truncation().cloned(),
        })
    }
}

/// Whether a line is a `tool` line, deciding cheaply for lines written `kind` first.
fn is_tool_line(line: &[u8]) -> bool {
    if let Some(rest) = line.strip_prefix(br#"{"kind":""#) {
        return rest.starts_with(br#"tool""#);
    }
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Cow<'a, str>,
    }
    serde_json::from_slice::<Kind>(line).is_ok_and(|k| k.kind == "tool")
}

/// Read one line into `buf` (without its line end); a line over `limit` bytes is skipped
/// without being held. Returns false at the end of the input or on a read error.
fn read_capped_line(input: &mut dyn BufRead, buf: &mut Vec<u8>, limit: usize) -> bool {
    buf.clear();
    let mut too_long = false;
    loop {
        let avail = match input.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        if avail.is_empty() {
            return !buf.is_empty() || too_long;
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !too_long {
            if buf.len() + take > limit.saturating_add(2) {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&avail[..take]);
            }
        }
        input.consume(take);
        if done {
            if too_long {
                buf.clear();
            }
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            return true;
        }
    }
}
