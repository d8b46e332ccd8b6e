//! The one limit type every decoder of untrusted bytes obeys: how deep a decoded structure may
//! nest and how many bytes it may reach.
//!
//! A 15 KB cassette once built a 100 000-level JSON value (a stack overflow on drop) and a
//! 20 KB one grew to 3 GB; input size alone bounds nothing when a decoder amplifies. So each
//! decoder (SSE lines and events, the JSON-array splitter, the adapters, the cassette reader,
//! the scenario loader, vcrpy import, content-encoding decoding) charges what it builds against
//! a [`Limits`] and stops with a [`LimitError`] that names the limit it hit, instead of
//! allocating further. `serde_json`, `toml` and `serde_yaml` already refuse nesting past 128
//! levels while parsing; these limits cover what is built after parsing and what is buffered
//! before it.

/// Bounds on one decoded structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting a decoded structure may reach (JSON levels, JSON-path segments).
    pub max_depth: usize,
    /// Most bytes one decoded item may take in memory: an SSE line or event, a JSON-array
    /// element, one response's assembled tool arguments, one cassette line or interaction, a
    /// scenario or vcrpy file, one decompressed body.
    pub max_bytes: usize,
}

/// The limits used everywhere unless a caller passes its own: 128 levels (what `serde_json`
/// enforces while parsing) and 64 MiB (the cassette line limit, far above any real response).
pub const DEFAULT: Limits = Limits {
    max_depth: 128,
    max_bytes: 64 << 20,
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULT
    }
}

/// A decoder stopped because its input would exceed a limit. The message states the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{what} nests deeper than the {limit}-level limit")]
    Depth { what: &'static str, limit: usize },
    #[error("{what} exceeds the {limit}-byte limit")]
    Size { what: &'static str, limit: usize },
}

impl Limits {
    /// `Err` when `depth` is over [`max_depth`](Self::max_depth).
    pub fn check_depth(&self, what: &'static str, depth: usize) -> Result<(), LimitError> {
        let limit = self.max_depth;
        (depth <= limit)
            .then_some(())
            .ok_or(LimitError::Depth { what, limit })
    }

    /// `Err` when `bytes` is over [`max_bytes`](Self::max_bytes).
    pub fn check_bytes(&self, what: &'static str, bytes: usize) -> Result<(), LimitError> {
        let limit = self.max_bytes;
        (bytes <= limit)
            .then_some(())
            .ok_or(LimitError::Size { what, limit })
    }

    /// A running byte budget of [`max_bytes`](Self::max_bytes) for `what`.
    pub fn budget(&self, what: &'static str) -> Budget {
        Budget {
            what,
            used: 0,
            limits: *self,
        }
    }
}

/// Bytes charged so far against one limit: for structures built piece by piece.
#[derive(Debug, Clone)]
pub struct Budget {
    what: &'static str,
    used: usize,
    limits: Limits,
}

impl Budget {
    /// Charge `bytes`; `Err` (and nothing charged) when the total would pass the limit.
    pub fn charge(&mut self, bytes: usize) -> Result<(), LimitError> {
        let total = self.used.saturating_add(bytes);
        self.limits.check_bytes(self.what, total)?;
        self.used = total;
        Ok(())
    }

    /// Bytes charged so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The limits this budget draws on.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Read at most `limits.max_bytes` from `reader` into memory: the whole-file read of the
/// scenario loader and vcrpy import, and the output of a decompressor.
pub fn read_bounded(
    reader: impl std::io::Read,
    limits: &Limits,
    what: &'static str,
) -> std::io::Result<Result<Vec<u8>, LimitError>> {
    use std::io::Read;
    let mut out = Vec::new();
    reader
        .take(limits.max_bytes as u64 + 1)
        .read_to_end(&mut out)?;
    Ok(limits.check_bytes(what, out.len()).map(|()| out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_the_limit_and_keeps_its_total() {
        let lim = Limits {
            max_depth: 4,
            max_bytes: 10,
        };
        let mut b = lim.budget("test data");
        b.charge(6).unwrap();
        let err = b.charge(5).unwrap_err();
        assert_eq!(err.to_string(), "test data exceeds the 10-byte limit");
        assert_eq!(b.used(), 6);
        b.charge(4).unwrap();
        assert!(lim.check_depth("a path", 4).is_ok());
        assert_eq!(
            lim.check_depth("a path", 5).unwrap_err().to_string(),
            "a path nests deeper than the 4-level limit"
        );
    }

    #[test]
    fn read_bounded_stops_one_byte_past_the_limit() {
        let lim = Limits {
            max_depth: 1,
            max_bytes: 3,
        };
        assert_eq!(
            read_bounded(&b"abc"[..], &lim, "f").unwrap().unwrap(),
            b"abc"
        );
        assert!(read_bounded(&b"abcd"[..], &lim, "f").unwrap().is_err());
        // An endless reader is not read to its end.
        let endless = std::io::repeat(b'x');
        assert!(read_bounded(endless, &lim, "f").unwrap().is_err());
    }
}
