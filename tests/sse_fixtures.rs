//! Every real `.sse` fixture decodes to the same events however its bytes are split.

use std::path::{Path, PathBuf};

use tapeloop::sse::{SseDecoder, SseEvent};

const STREAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams"
);

fn find_sse(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            find_sse(&p, out);
        } else if p.extension().is_some_and(|e| e == "sse") {
            out.push(p);
        }
    }
}

/// Decode `bytes` fed as the pieces between `cuts` (sorted positions).
fn decode(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        d.feed(&bytes[start..c], &mut out);
        start = c;
    }
    d.finish(&mut out);
    out
}

/// xorshift64*: deterministic, seeded per file.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn any_split_gives_the_same_events_as_one_read() {
    let mut files = Vec::new();
    find_sse(Path::new(STREAMS), &mut files);
    files.sort();
    assert!(
        files.len() > 30,
        "only {} .sse fixtures found under {STREAMS}",
        files.len()
    );
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let whole = decode(&bytes, &[]);
        assert!(!whole.is_empty(), "{}: no events at all", path.display());
        let name = path.display();
        if bytes.len() <= 16 * 1024 {
            for cut in 1..bytes.len() {
                assert!(
                    decode(&bytes, &[cut]) == whole,
                    "{name}: differs when split at byte {cut}"
                );
            }
        } else {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ bytes.len() as u64);
            for pattern in 0..200 {
                let n = 1 + (rng.next() % 64) as usize;
                let mut cuts: Vec<usize> = (0..n)
                    .map(|_| 1 + (rng.next() as usize) % (bytes.len() - 1))
                    .collect();
                cuts.sort_unstable();
                cuts.dedup();
                assert!(
                    decode(&bytes, &cuts) == whole,
                    "{name}: differs for random split pattern {pattern}: {cuts:?}"
                );
            }
            let every: Vec<usize> = (1..bytes.len()).collect();
            assert!(
                decode(&bytes, &every) == whole,
                "{name}: differs byte at a time"
            );
        }
    }
}
