//! Fuzz-style properties: truncated and corrupted cassettes and YAML inputs give errors (or
//! fewer interactions), never a panic or a hang.

use std::path::Path;

use proptest::prelude::*;
use tapeloop::cassette::import::import_yaml;
use tapeloop::cassette::{Cassette, CassetteReader, Redactor};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/read-loop.openai.jsonl"
);
const YAML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams/cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/google_gemini_2_5_flash/stream.yaml"
);

fn corrupt(mut bytes: Vec<u8>, cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    bytes.truncate(cut.min(bytes.len()));
    if !bytes.is_empty() {
        for &(pos, val) in flips {
            let n = bytes.len();
            bytes[pos % n] = val;
        }
    }
    bytes
}

/// Read every record the streaming reader yields; it must end.
fn drain(bytes: &[u8]) -> usize {
    match CassetteReader::new(bytes, "fuzz.jsonl") {
        Err(_) => 0,
        Ok(r) => {
            let mut n = 0;
            for item in r {
                n += 1;
                assert!(n < 10_000, "reader does not terminate");
                if let Err(e) = item {
                    assert!(e.to_string().starts_with("fuzz.jsonl"), "{e}");
                }
            }
            n
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn corrupted_cassettes_never_panic(
        cut in 0usize..4000,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let original = std::fs::read(FIXTURE).unwrap();
        let bytes = corrupt(original.clone(), cut, &flips);
        if let Ok(c) = Cassette::from_bytes(&bytes, "fuzz.jsonl") {
            prop_assert!(c.interactions.len() <= 2);
            // Changed bytes never pass as a verified, complete cassette.
            if c.footer.is_some() {
                prop_assert!(original.starts_with(&bytes), "corruption passed the footer check");
            }
        }
        drain(&bytes);
    }

    #[test]
    fn arbitrary_lines_after_a_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = br#"{"kind":"header","format":"tapeloop-cassette","version":1,"api":"gemini"}"#.to_vec();
        bytes.push(b'\n');
        bytes.extend_from_slice(&body);
        let _ = Cassette::from_bytes(&bytes, "fuzz.jsonl");
        drain(&bytes);
    }

    #[test]
    fn corrupted_yaml_never_panics(
        cut in 0usize..6000,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
    ) {
        let original = std::fs::read(YAML).unwrap();
        let bytes = corrupt(original, cut, &flips);
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(imported) = import_yaml(&text, Path::new("fuzz.yaml")) {
            // Whatever imports must write a cassette that reads back completely.
            let out = imported.write(Vec::new(), Redactor::new()).unwrap();
            let c = Cassette::from_bytes(&out, "out.jsonl").unwrap();
            prop_assert_eq!(c.interactions.len(), imported.interactions().count());
            prop_assert!(c.footer.is_some());
        }
    }
}

#[test]
fn single_byte_flips_in_a_verified_cassette_are_always_detected() {
    // Every byte position: flipping it either breaks parsing or the footer hash catches it.
    let original = std::fs::read(FIXTURE).unwrap();
    for pos in 0..original.len() {
        let mut bytes = original.clone();
        bytes[pos] ^= 0x01;
        if let Ok(c) = Cassette::from_bytes(&bytes, "flip.jsonl") {
            // Only a change that removes the footer can pass, and then it reports truncation.
            assert!(c.is_truncated(), "flip at byte {pos} went unnoticed");
        }
    }
}
