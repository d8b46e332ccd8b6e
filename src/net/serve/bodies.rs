//! Bodies kept in memory once read. Under `--pace instant` a complete body that fits one read
//! batch is played from here the next time it is asked for: no file read, no chunk-line parse,
//! no hop to the blocking pool. Many agents replaying the same cassette (a CI matrix, a load
//! test) ask for the same few bodies over and over.
//!
//! The bytes kept are bounded in all ([`KEEP_BYTES`]): the first bodies read stay and later
//! ones are read from the file as before, so memory does not grow with the cassette.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

/// At most this many body bytes are kept, over every cassette served.
pub(super) const KEEP_BYTES: usize = 32 * 1024 * 1024;

/// The kept bodies, by (cassette, interaction index) in the [`super::pick::Catalog`].
#[derive(Default)]
pub(super) struct Bodies {
    inner: RwLock<Kept>,
}

#[derive(Default)]
struct Kept {
    bodies: HashMap<(usize, usize), Arc<[Bytes]>>,
    bytes: usize,
}

impl Bodies {
    /// The chunks of a body kept before.
    pub fn get(&self, key: (usize, usize)) -> Option<Arc<[Bytes]>> {
        let kept = self.inner.read().unwrap_or_else(|e| e.into_inner());
        kept.bodies.get(&key).cloned()
    }

    /// Keep `chunks` for `key` if there is room; the chunks to play either way.
    pub fn keep(&self, key: (usize, usize), chunks: Vec<Bytes>) -> Arc<[Bytes]> {
        let chunks: Arc<[Bytes]> = chunks.into();
        let size: usize = chunks.iter().map(Bytes::len).sum();
        let mut kept = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if kept.bytes + size <= KEEP_BYTES && !kept.bodies.contains_key(&key) {
            kept.bytes += size;
            kept.bodies.insert(key, Arc::clone(&chunks));
        }
        chunks
    }

    /// Body bytes kept now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.read().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(len: usize) -> Vec<Bytes> {
        vec![
            Bytes::from(vec![b'x'; len / 2]),
            Bytes::from(vec![b'y'; len - len / 2]),
        ]
    }

    #[test]
    fn a_kept_body_is_played_again_with_the_same_chunks() {
        let b = Bodies::default();
        assert!(b.get((0, 1)).is_none());
        let played = b.keep((0, 1), body(10));
        assert_eq!(played.len(), 2);
        let again = b.get((0, 1)).expect("kept");
        assert_eq!(&again[..], &played[..]);
        assert!(
            b.get((1, 0)).is_none(),
            "keys are per cassette and interaction"
        );
        assert_eq!(b.bytes(), 10);
    }

    #[test]
    fn keeping_stops_at_the_budget_but_still_plays_the_body() {
        let b = Bodies::default();
        b.keep((0, 0), body(KEEP_BYTES - 5));
        let played = b.keep((0, 1), body(10));
        assert_eq!(played.iter().map(Bytes::len).sum::<usize>(), 10);
        assert!(b.get((0, 1)).is_none(), "over the budget: not kept");
        b.keep((0, 2), body(5));
        assert!(b.get((0, 2)).is_some(), "what still fits is kept");
        assert_eq!(b.bytes(), KEEP_BYTES);
    }

    #[test]
    fn a_body_kept_twice_counts_once() {
        let b = Bodies::default();
        b.keep((0, 0), body(10));
        b.keep((0, 0), body(10));
        assert_eq!(b.bytes(), 10);
    }
}
