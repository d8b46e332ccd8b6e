//! The footer's content hash (FORMATS.md, "Footer hash"): writers put a BLAKE3 of every byte
//! before the footer (`blake3`, fast on every CPU); readers verify `blake3` when present, else
//! the `sha256` of cassettes written before BLAKE3; [`rewrite_footer`] turns an old footer into
//! a BLAKE3 one.
//!
//! A streaming reader has to know which hash to compute before it reaches the footer, so it
//! looks at the end of the file first ([`HashPlan`]); a source it cannot look ahead in is
//! hashed both ways.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{CassetteError, CassetteReader, ErrorKind, Footer, Line};

/// Which hash a footer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterHash {
    Blake3,
    /// The older form, still valid in version 1.
    Sha256,
}

impl FooterHash {
    /// The footer field name.
    pub fn as_str(self) -> &'static str {
        match self {
            FooterHash::Blake3 => "blake3",
            FooterHash::Sha256 => "sha256",
        }
    }
}

impl Footer {
    /// The hash this footer is verified by, and its hex value: `blake3` when present, else
    /// `sha256`; `None` when it has neither (the reader rejects such a footer).
    pub fn hash(&self) -> Option<(FooterHash, &str)> {
        match (&self.blake3, &self.sha256) {
            (Some(b), _) => Some((FooterHash::Blake3, b)),
            (None, Some(s)) => Some((FooterHash::Sha256, s)),
            (None, None) => None,
        }
    }
}

/// The hashes a reader computes while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashPlan {
    Blake3,
    Sha256,
    /// The footer is not known in advance (no footer at the end, or a source that cannot be
    /// looked ahead in): compute both so any footer can be verified.
    Both,
}

/// How far from the end the footer is looked for. A footer is about 150 bytes.
const TAIL: usize = 4096;

impl HashPlan {
    /// The plan for a cassette whose last bytes are `tail`; `whole` says `tail` is the whole
    /// file (so its first line starts at the beginning of `tail`).
    pub(crate) fn from_tail(tail: &[u8], whole: bool) -> HashPlan {
        let end = tail
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let body = &tail[..end];
        let line = match memchr::memrchr(b'\n', body) {
            Some(i) => &body[i + 1..],
            None if whole => body,
            None => return HashPlan::Both,
        };
        match serde_json::from_slice::<Line>(line) {
            Ok(Line::Footer(f)) => match f.hash() {
                Some((FooterHash::Blake3, _)) => HashPlan::Blake3,
                Some((FooterHash::Sha256, _)) => HashPlan::Sha256,
                None => HashPlan::Both,
            },
            _ => HashPlan::Both,
        }
    }

    /// The plan for a cassette held in memory.
    pub(crate) fn of_bytes(bytes: &[u8]) -> HashPlan {
        let start = bytes.len().saturating_sub(TAIL);
        HashPlan::from_tail(&bytes[start..], start == 0)
    }

    /// The plan for a file, read from its end; the file is left at its start.
    pub(crate) fn of_file(file: &mut File) -> io::Result<HashPlan> {
        let len = file.seek(SeekFrom::End(0))?;
        let start = len.saturating_sub(TAIL as u64);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::with_capacity(TAIL);
        file.take(TAIL as u64).read_to_end(&mut tail)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(HashPlan::from_tail(&tail, start == 0))
    }
}

/// Bytes are handed to BLAKE3 in batches of this size: its SIMD code hashes many 1 KiB chunks
/// at once only when one update spans them, and cassette lines are mostly shorter.
const BATCH: usize = 16 * 1024;

/// Hashes every byte before the footer according to a [`HashPlan`].
pub(crate) struct ContentHasher {
    blake3: Option<Box<blake3::Hasher>>,
    /// `ring`'s assembly SHA-256 (already linked for TLS): much faster than the portable `sha2`
    /// on CPUs without SHA extensions.
    sha256: Option<ring::digest::Context>,
    pending: Vec<u8>,
}

impl ContentHasher {
    pub(crate) fn new(plan: HashPlan) -> Self {
        let b3 = matches!(plan, HashPlan::Blake3 | HashPlan::Both);
        let sha = matches!(plan, HashPlan::Sha256 | HashPlan::Both);
        ContentHasher {
            blake3: b3.then(|| Box::new(blake3::Hasher::new())),
            sha256: sha.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
            pending: Vec::with_capacity(if b3 { BATCH } else { 0 }),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if let Some(sha) = &mut self.sha256 {
            sha.update(bytes);
        }
        let Some(b3) = &mut self.blake3 else {
            return;
        };
        if self.pending.len() + bytes.len() > BATCH {
            b3.update(&self.pending);
            self.pending.clear();
        }
        if bytes.len() >= BATCH {
            b3.update(bytes);
        } else {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// The hex digest of everything so far, or `None` when the plan did not compute `kind`.
    pub(crate) fn hex(&self, kind: FooterHash) -> Option<String> {
        match kind {
            FooterHash::Blake3 => self.blake3.as_ref().map(|b3| {
                let mut b3 = b3.as_ref().clone();
                b3.update(&self.pending);
                b3.finalize().to_hex().to_string()
            }),
            FooterHash::Sha256 => self
                .sha256
                .as_ref()
                .map(|sha| hex::encode(sha.clone().finish())),
        }
    }

    /// Check `footer`'s hash against the bytes hashed so far.
    pub(crate) fn verify(&self, footer: &Footer) -> Result<(), ErrorKind> {
        let Some((kind, want)) = footer.hash() else {
            return Err(ErrorKind::InvalidLine {
                kind: "footer",
                detail: "it has neither `blake3` nor `sha256`: expected the hash of every \
                         byte before the footer"
                    .into(),
            });
        };
        let actual = self
            .hex(kind)
            .unwrap_or_else(|| "a different footer (the file changed while it was read)".into());
        if want.eq_ignore_ascii_case(&actual) {
            Ok(())
        } else {
            Err(ErrorKind::FooterMismatch {
                field: kind.as_str(),
                footer: want.to_string(),
                actual,
            })
        }
    }
}

/// What [`rewrite_footer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// The `sha256` footer was replaced by a `blake3` one.
    Rewritten,
    /// The footer already carries `blake3`: the file is unchanged.
    AlreadyBlake3,
    /// The cassette has no footer (cut short): the file is unchanged.
    Truncated,
}

/// Replace an old `sha256` footer with a `blake3` one, in place. The cassette is verified in
/// full first (its old hash included), so a damaged cassette is never given a fresh, valid
/// hash: the first problem is returned and the file is not touched. Every byte before the
/// footer, the footer's other fields and their order are kept; the new file replaces the old
/// by rename, so an interruption leaves one or the other. Memory stays flat in file size.
pub fn rewrite_footer(path: impl AsRef<Path>) -> Result<Rewrite, CassetteError> {
    let path = path.as_ref();
    let io_err = |e: io::Error| CassetteError::new(path, None, ErrorKind::Io(e));
    let mut reader = CassetteReader::open(path)?;
    if let Some(e) = reader.by_ref().find_map(Result::err) {
        return Err(e);
    }
    let Some(footer) = reader.footer() else {
        return Ok(Rewrite::Truncated);
    };
    if footer.blake3.is_some() {
        return Ok(Rewrite::AlreadyBlake3);
    }
    let before = footer.lines;
    let footer_line = before + 1;

    let tmp = tmp_path(path);
    let result = (|| -> io::Result<()> {
        let mut input = BufReader::new(File::open(path)?);
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        let mut hasher = ContentHasher::new(HashPlan::Blake3);
        let mut line = Vec::new();
        for _ in 0..before {
            line.clear();
            input.read_until(b'\n', &mut line)?;
            hasher.update(&line);
            out.write_all(&line)?;
        }
        line.clear();
        input.read_until(b'\n', &mut line)?;
        let hex = hasher.hex(FooterHash::Blake3).expect("planned");
        out.write_all(&footer_with_blake3(&line, &hex)?)?;
        io::copy(&mut input, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e.kind() {
            io::ErrorKind::InvalidData => {
                CassetteError::new(path, Some(footer_line), ErrorKind::Io(e))
            }
            _ => io_err(e),
        });
    }
    Ok(Rewrite::Rewritten)
}

/// The footer line `line` (with its line end) with `sha256` replaced by `blake3` in place.
fn footer_with_blake3(line: &[u8], hex: &str) -> io::Result<Vec<u8>> {
    let text = line.trim_ascii_end();
    let ending = &line[text.len()..];
    let obj: Map<String, Value> = serde_json::from_slice(text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("footer: {e}")))?;
    let mut out = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "sha256" => {
                out.insert("blake3".into(), Value::from(hex));
            }
            "blake3" => {}
            _ => {
                out.insert(k, v);
            }
        }
    }
    let mut bytes = serde_json::to_vec(&out)?;
    bytes.extend_from_slice(if ending.is_empty() { b"\n" } else { ending });
    Ok(bytes)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tapeloop-rewrite");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_blake3_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut h = ContentHasher::new(HashPlan::Both);
        for piece in data.chunks(777).chain([&data[..0]]) {
            h.update(piece);
        }
        h.update(&data[..BATCH + 3]);
        let mut all = data.clone();
        all.extend_from_slice(&data[..BATCH + 3]);
        assert_eq!(
            h.hex(FooterHash::Blake3).unwrap(),
            blake3::hash(&all).to_hex().to_string()
        );
        let sha = ring::digest::digest(&ring::digest::SHA256, &all);
        assert_eq!(h.hex(FooterHash::Sha256).unwrap(), hex::encode(sha));
        assert!(ContentHasher::new(HashPlan::Blake3)
            .hex(FooterHash::Sha256)
            .is_none());
    }

    #[test]
    fn plan_reads_the_footer_at_the_end() {
        let head = b"{\"kind\":\"header\"}\n";
        let b3 = b"{\"kind\":\"footer\",\"interactions\":0,\"lines\":1,\"blake3\":\"ab\"}\n\n";
        let sha = b"{\"kind\":\"footer\",\"interactions\":0,\"lines\":1,\"sha256\":\"ab\"}";
        let neither = b"{\"kind\":\"footer\",\"interactions\":0,\"lines\":1}\n";
        let join = |a: &[u8], b: &[u8]| [a, b].concat();
        assert_eq!(HashPlan::of_bytes(&join(head, b3)), HashPlan::Blake3);
        assert_eq!(HashPlan::of_bytes(&join(head, sha)), HashPlan::Sha256);
        assert_eq!(HashPlan::of_bytes(&join(head, neither)), HashPlan::Both);
        assert_eq!(HashPlan::of_bytes(head), HashPlan::Both);
        assert_eq!(HashPlan::of_bytes(b""), HashPlan::Both);
        // A footer-like tail that does not start a line is not taken for the footer.
        assert_eq!(HashPlan::from_tail(&b3[1..], false), HashPlan::Both);
        assert_eq!(HashPlan::from_tail(b3, true), HashPlan::Blake3);
    }

    #[test]
    fn footer_rewrite_keeps_other_fields_in_order() {
        let line = b"{\"kind\":\"footer\",\"interactions\":2,\"lines\":9,\"sha256\":\"00\",\"redacted\":[],\"x\":1}\r\n";
        let out = footer_with_blake3(line, "ff").unwrap();
        assert_eq!(
            out,
            b"{\"kind\":\"footer\",\"interactions\":2,\"lines\":9,\"blake3\":\"ff\",\"redacted\":[],\"x\":1}\r\n"
        );
    }
}
