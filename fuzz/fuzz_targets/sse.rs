//! The SSE decoder on arbitrary bytes, fed in arbitrary pieces (the first byte picks the
//! piece size), must never panic and must agree with one-shot decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tapeloop::sse::{decode_all, SseDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(step.max(1));
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for piece in body.chunks(step) {
        d.feed(piece, &mut out);
    }
    d.finish(&mut out);
    assert_eq!(out, decode_all(body), "chunking changed the events");
});
