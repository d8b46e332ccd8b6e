//! Typed cassette errors: every one names the file and, where there is one, the line.

use std::path::PathBuf;

/// A problem with a cassette, displayed as `path:line: message` (or `path: message`).
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct CassetteError {
    pub path: PathBuf,
    /// 1-based line number; `None` for whole-file problems (I/O, empty file).
    pub line: Option<u64>,
    pub kind: ErrorKind,
}

impl CassetteError {
    pub(crate) fn new(path: impl Into<PathBuf>, line: Option<u64>, kind: ErrorKind) -> Self {
        Self::at(path, line, kind)
    }

    /// An error of `kind` at `path` (and `line`): for checks made outside the reader.
    pub fn at(path: impl Into<PathBuf>, line: Option<u64>, kind: ErrorKind) -> Self {
        CassetteError {
            path: path.into(),
            line,
            kind,
        }
    }

    /// Whether reading cannot sensibly continue past this error (no usable header, I/O
    /// failure). Other errors concern one line, which the reader skips.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Io(_)
                | ErrorKind::Empty
                | ErrorKind::HeaderNotFirst { .. }
                | ErrorKind::NotACassette { .. }
                | ErrorKind::UnknownVersion(_)
                | ErrorKind::NoInteractions
                | ErrorKind::Changed(_)
        )
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("empty file: expected a `header` line")]
    Empty,
    #[error(
        "line is {len}+ bytes, over the {limit}-byte limit: expected one JSON object per line"
    )]
    LineTooLong { len: u64, limit: usize },
    #[error("not UTF-8 text: expected a JSON object with a `kind` field")]
    NotUtf8,
    #[error("not JSON ({detail}): expected a JSON object with a `kind` field")]
    NotJson { detail: String },
    #[error("expected a JSON object with a `kind` field, found {found}")]
    NotAnObject { found: &'static str },
    #[error(
        "unknown kind `{0}`: expected one of header, request, response, chunk, end, tool, footer"
    )]
    UnknownKind(String),
    #[error("invalid `{kind}` line: {detail}")]
    InvalidLine { kind: &'static str, detail: String },
    #[error("the first line must be the `header`, found a `{found}` line")]
    HeaderNotFirst { found: String },
    #[error("not a tapeloop cassette: header format is `{format}`, expected `tapeloop-cassette`")]
    NotACassette { format: String },
    #[error("unknown version {0}: this tapeloop reads version 1")]
    UnknownVersion(u64),
    #[error("a second `header` line: the header comes once, first")]
    DuplicateHeader,
    #[error("duplicate request id {0}: each attempt needs its own id")]
    DuplicateRequest(u64),
    #[error("{kind} for id {id} has no request: the `request` line must come first")]
    Orphan { kind: &'static str, id: u64 },
    #[error("{kind} for id {id} comes {problem}")]
    OutOfOrder {
        kind: &'static str,
        id: u64,
        problem: &'static str,
    },
    #[error("chunk for id {id} {problem}: expected exactly one of `data` and `b64`")]
    BadChunk { id: u64, problem: String },
    #[error("a `{0}` line after the footer: the footer must be the last line")]
    AfterFooter(String),
    #[error("footer says {field} = {footer}, but the file has {actual}: the cassette was modified or corrupted")]
    FooterMismatch {
        field: &'static str,
        footer: String,
        actual: String,
    },
    #[error("interaction {0} has no `end` line although the cassette has a footer")]
    MissingEnd(u64),
    /// What the reader would hold in memory passes a limit ([`crate::limits`]).
    #[error("{0}: split the recording, or raise the limit if the response is genuine")]
    Limit(crate::limits::LimitError),
    /// An interaction's response cannot be decoded within the limits: `run` would refuse it.
    #[error("interaction {id} cannot be decoded: {error}")]
    Undecodable {
        id: u64,
        error: crate::limits::LimitError,
    },
    /// Nothing to replay: a replay of it would score nothing and pass.
    #[error("no usable interaction: the cassette holds no request with its `end` line (recording cut short before the first response finished?); re-record it")]
    NoInteractions,
    /// The file is no longer the one that was indexed ([`super::CassetteIndex`] reads bodies
    /// from it when they are played).
    #[error("the file changed since it was indexed ({0}); restart to serve the new content")]
    Changed(String),
}
