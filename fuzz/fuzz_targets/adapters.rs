//! Each adapter's stream decoding (framing included: SSE or Gemini's JSON array) on arbitrary
//! bodies: the first byte picks the API and the read size. Never a panic; a body ends in a
//! terminal event or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tapeloop::event::{EndOutcome, StreamEvent};
use tapeloop::http::Headers;
use tapeloop::provider::{decode_response, Api};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let api = Api::ALL[usize::from(sel) % Api::ALL.len()];
    let step = usize::from(sel / 4).max(1);
    let events = decode_response(
        api,
        200,
        &Headers::new(),
        body.chunks(step),
        EndOutcome::Complete,
    );
    assert!(matches!(events.first(), Some(StreamEvent::StartStep)));
    // Error responses classify any body.
    let _ = decode_response(api, 400 + u16::from(sel), &Headers::new(), [body], EndOutcome::Complete);
});
