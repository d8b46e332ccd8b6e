//! Incremental Server-Sent Events decoder (WHATWG HTML §9.2 "event stream interpretation").
//!
//! Bytes may arrive in any chunking: one byte at a time, split mid-line, between `\r` and `\n`,
//! or inside a multi-byte UTF-8 character. Line ends are LF, CRLF or CR; a leading BOM is
//! dropped; `:` lines are comments; several `data:` lines join with `\n`. Unlike a browser, the
//! decoder dispatches a final event that lacks its trailing blank line when the stream ends
//! ([`SseDecoder::finish`]), because providers (Gemini, Groq errors) end streams that way.
//!
//! Line splitting works on bytes: `\r` and `\n` never occur inside a UTF-8 multi-byte sequence,
//! so a line is only decoded once it is complete and a split character cannot be corrupted.
//!
//! A line or an event's data longer than [`Limits::max_bytes`] stops the decoder: nothing more
//! is buffered or dispatched, and [`SseDecoder::limit_exceeded`] says which limit was hit.

use std::borrow::Cow;

use serde::Serialize;

use crate::limits::{LimitError, Limits};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SseEvent {
    /// The `event:` field, `None` when the event had none (the spec's default `message`).
    pub event: Option<String>,
    /// The joined `data:` lines, without the final newline.
    pub data: String,
    /// The last event id in force when this event was dispatched.
    pub id: Option<String>,
}

impl SseEvent {
    /// The event type, `message` when none was given.
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// One dispatched event, borrowed from the decoder's buffers: what
/// [`feed_ref`](SseDecoder::feed_ref) hands its sink, so the common case (valid UTF-8) costs no
/// allocation per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The `event:` field, `None` when the event had none.
    pub event: Option<&'a str>,
    /// The joined `data:` lines, without the final newline.
    pub data: &'a str,
    /// The last event id in force when this event was dispatched.
    pub id: Option<&'a str>,
}

impl SseEventRef<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_owned),
            data: self.data.to_owned(),
            id: self.id.map(str::to_owned),
        }
    }
}

/// Streaming SSE decoder. Feed bytes with [`feed`](Self::feed), end with
/// [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next chunk belongs to it.
    after_cr: bool,
    /// How many bytes of a potential leading BOM have been seen (0..=3), or `None` once the
    /// start of the stream has been passed.
    bom_seen: Option<u8>,
    /// The data buffer as raw bytes (each `data:` line followed by `\n`), decoded once per
    /// event at dispatch. Lossy UTF-8 decoding commutes with joining on `\n` (an ASCII byte
    /// always ends an invalid sequence), so this equals decoding line by line. Reused across
    /// events.
    data: Vec<u8>,
    has_data: bool,
    /// The raw value of the last `event:` line of the current event (reused buffer).
    event: Vec<u8>,
    has_event: bool,
    last_id: Option<String>,
    retry_ms: Option<u64>,
    /// Comment lines seen (keep-alives such as `: OPENROUTER PROCESSING`).
    comments: u64,
    limits: Limits,
    /// The limit that stopped decoding, if one did.
    limit: Option<LimitError>,
}

/// `bytes` as text: borrowed when valid UTF-8 (the common case, checked with the fast
/// validator), replaced lossily otherwise.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What the limits name in their errors.
const LINE: &str = "an SSE line";
const DATA: &str = "the data of one SSE event";

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A decoder whose lines and event data may each take at most `limits.max_bytes`.
    pub fn with_limits(limits: Limits) -> Self {
        SseDecoder {
            bom_seen: Some(0),
            limits,
            ..Default::default()
        }
    }

    /// The limit that stopped decoding, if one did.
    pub fn limit_exceeded(&self) -> Option<&LimitError> {
        self.limit.as_ref()
    }

    /// Record that a buffer would grow to `len` bytes; `false` (and the decoder stopped) when
    /// that passes the limit.
    fn within(&mut self, what: &'static str, len: usize) -> bool {
        if self.limit.is_some() {
            return false;
        }
        match self.limits.check_bytes(what, len) {
            Ok(()) => true,
            Err(e) => {
                self.limit = Some(e);
                self.line = Vec::new();
                self.data = Vec::new();
                self.has_data = false;
                false
            }
        }
    }

    /// The reconnection time from the last valid `retry:` field.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Number of comment lines seen so far.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Decode a chunk, appending every event it completes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        self.feed_ref(bytes, &mut |ev| out.push(ev.to_owned_event()));
    }

    /// Decode a chunk, handing each completed event to `sink` (no intermediate Vec).
    pub fn feed_with(&mut self, bytes: &[u8], sink: &mut impl FnMut(SseEvent)) {
        self.feed_ref(bytes, &mut |ev| sink(ev.to_owned_event()));
    }

    /// Decode a chunk, lending each completed event to `sink`: nothing is allocated per event
    /// unless the data is not valid UTF-8.
    pub fn feed_ref(&mut self, bytes: &[u8], sink: &mut impl FnMut(SseEventRef<'_>)) {
        if self.limit.is_some() {
            return;
        }
        let mut input: &[u8] = bytes;
        // Strip a leading BOM, which may itself arrive split over chunks.
        while let Some(seen) = self.bom_seen {
            let Some(&b) = input.first() else {
                return;
            };
            if b == BOM[seen as usize] {
                input = &input[1..];
                if seen == 2 {
                    self.bom_seen = None;
                } else {
                    self.bom_seen = Some(seen + 1);
                }
            } else {
                // Not a BOM after all: the bytes matched so far are content.
                self.line.extend_from_slice(&BOM[..seen as usize]);
                self.bom_seen = None;
            }
        }
        if self.after_cr {
            if let Some(b'\n') = input.first() {
                input = &input[1..];
            }
            self.after_cr = false;
        }
        while !input.is_empty() {
            match memchr::memchr2(b'\n', b'\r', input) {
                None => {
                    if self.within(LINE, self.line.len() + input.len()) {
                        self.line.extend_from_slice(input);
                    }
                    break;
                }
                Some(pos) => {
                    let is_cr = input[pos] == b'\r';
                    if !self.within(LINE, self.line.len() + pos) {
                        return;
                    }
                    if self.line.is_empty() {
                        self.process_line(&input[..pos], sink);
                    } else {
                        self.line.extend_from_slice(&input[..pos]);
                        let line = std::mem::take(&mut self.line);
                        self.process_line(&line, sink);
                        self.line = line;
                        self.line.clear();
                    }
                    if self.limit.is_some() {
                        return;
                    }
                    input = &input[pos + 1..];
                    if is_cr {
                        match input.first() {
                            Some(b'\n') => input = &input[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
            }
        }
    }

    /// The stream ended: process an unterminated last line and dispatch a pending event.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        self.finish_ref(&mut |ev| out.push(ev.to_owned_event()));
    }

    /// The connection was cut (reset, timeout, abort): an unterminated last line is a fragment
    /// of a line that never arrived and is dropped; a pending event made of complete lines is
    /// dispatched.
    pub fn finish_cut(&mut self, out: &mut Vec<SseEvent>) {
        self.finish_cut_ref(&mut |ev| out.push(ev.to_owned_event()));
    }

    /// [`finish_cut`](Self::finish_cut) with a borrowing sink.
    pub fn finish_cut_ref(&mut self, sink: &mut impl FnMut(SseEventRef<'_>)) {
        if self.limit.is_some() {
            return;
        }
        self.line.clear();
        self.bom_seen = None;
        self.dispatch(sink);
        self.after_cr = false;
    }

    /// [`finish`](Self::finish) with a sink.
    pub fn finish_with(&mut self, sink: &mut impl FnMut(SseEvent)) {
        self.finish_ref(&mut |ev| sink(ev.to_owned_event()));
    }

    /// [`finish`](Self::finish) with a borrowing sink.
    pub fn finish_ref(&mut self, sink: &mut impl FnMut(SseEventRef<'_>)) {
        if self.limit.is_some() {
            return;
        }
        if let Some(seen) = self.bom_seen.take() {
            // The whole stream was a BOM prefix: those bytes are content.
            self.line.extend_from_slice(&BOM[..seen as usize]);
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, sink);
            self.line = line;
            self.line.clear();
        }
        self.dispatch(sink);
        self.after_cr = false;
    }

    fn process_line(&mut self, line: &[u8], sink: &mut impl FnMut(SseEventRef<'_>)) {
        if line.is_empty() {
            self.dispatch(sink);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if !self.within(DATA, self.data.len() + value.len() + 1) {
                    return;
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event = true;
            }
            b"id" if !value.contains(&0) => {
                self.last_id = Some(utf8(value).into_owned());
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All ASCII digits, so valid UTF-8; overflow leaves the old value.
                if let Ok(ms) = utf8(value).parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, sink: &mut impl FnMut(SseEventRef<'_>)) {
        if self.has_data {
            self.has_data = false;
            // Every data line appended a `\n`; the last one is not part of the data.
            let bytes = self.data.strip_suffix(b"\n").unwrap_or(&self.data);
            let data = utf8(bytes);
            let event = self.has_event.then(|| utf8(&self.event));
            sink(SseEventRef {
                event: event.as_deref(),
                data: &data,
                id: self.last_id.as_deref(),
            });
        }
        // Per spec: no data means no event; either way the data and event type buffers are
        // reset.
        self.data.clear();
        self.event.clear();
        self.has_event = false;
    }
}

/// Decode a whole body in one go.
pub fn decode_all(bytes: &[u8]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    d.feed(bytes, &mut out);
    d.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_or_event_past_the_limit_stops_the_decoder() {
        let lim = Limits {
            max_depth: 8,
            max_bytes: 16,
        };
        // An endless line fed in pieces never grows past the limit.
        let mut d = SseDecoder::with_limits(lim);
        let mut out = Vec::new();
        d.feed(b"data: ok\n\n", &mut out);
        for _ in 0..1000 {
            d.feed(b"data: xxxxxxxx", &mut out);
        }
        d.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert!(d.line.capacity() <= 32, "{}", d.line.capacity());
        let err = d.limit_exceeded().expect("limit hit").to_string();
        assert_eq!(err, "an SSE line exceeds the 16-byte limit");
        // Many short data lines in one event: the data limit.
        let mut d = SseDecoder::with_limits(lim);
        d.feed(&b"data: abc\n".repeat(100), &mut out);
        d.feed(b"\n", &mut out);
        assert_eq!(out.len(), 1, "the oversized event is not dispatched");
        assert!(d
            .limit_exceeded()
            .unwrap()
            .to_string()
            .contains("data of one SSE event"));
    }

    fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
            id: id.map(str::to_string),
        }
    }

    fn split_everywhere(input: &[u8]) {
        let whole = decode_all(input);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut d = SseDecoder::new();
                let mut out = Vec::new();
                d.feed(&input[..i], &mut out);
                d.feed(&input[i..j], &mut out);
                d.feed(&input[j..], &mut out);
                d.finish(&mut out);
                assert_eq!(
                    out,
                    whole,
                    "split at {i},{j} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn basic_fields() {
        let out = decode_all(b"event: ping\ndata: {\"a\":1}\nid: 7\n\ndata: x\n\n");
        assert_eq!(
            out,
            vec![
                ev(Some("ping"), "{\"a\":1}", Some("7")),
                ev(None, "x", Some("7"))
            ]
        );
        assert_eq!(out[1].event_type(), "message");
    }

    #[test]
    fn line_endings_lf_crlf_cr() {
        let lf = decode_all(b"data: a\n\ndata: b\n\n");
        let crlf = decode_all(b"data: a\r\n\r\ndata: b\r\n\r\n");
        let cr = decode_all(b"data: a\r\rdata: b\r\r");
        let mixed = decode_all(b"data: a\r\n\ndata: b\r\r\n");
        assert_eq!(lf, vec![ev(None, "a", None), ev(None, "b", None)]);
        assert_eq!(crlf, lf);
        assert_eq!(cr, lf);
        assert_eq!(mixed, lf);
    }

    #[test]
    fn comments_and_multiline_data() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(
            b": OPENROUTER PROCESSING\n\ndata: one\ndata:two\ndata\n\n",
            &mut out,
        );
        assert_eq!(out, vec![ev(None, "one\ntwo\n", None)]);
        assert_eq!(d.comments(), 1);
    }

    #[test]
    fn field_without_colon_and_unknown_fields() {
        let out = decode_all(b"data\nfoo: bar\n\n");
        assert_eq!(out, vec![ev(None, "", None)]);
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        assert_eq!(decode_all(b"data:  two\n\n")[0].data, " two");
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_resets_type() {
        let out = decode_all(b"event: x\n\ndata: y\n\n");
        assert_eq!(out, vec![ev(None, "y", None)]);
    }

    #[test]
    fn retry_field_needs_digits() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"retry: 3000\n\nretry: soon\n\n", &mut out);
        assert_eq!(d.retry_ms(), Some(3000));
        assert!(out.is_empty());
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let out = decode_all(b"id: a\0b\ndata: x\n\n");
        assert_eq!(out[0].id, None);
    }

    #[test]
    fn bom_is_dropped_once_even_when_split() {
        let input = b"\xEF\xBB\xBFdata: a\n\n";
        split_everywhere(input);
        assert_eq!(decode_all(input), vec![ev(None, "a", None)]);
        // A second BOM is content (it makes the field name unknown).
        assert!(decode_all(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n").is_empty());
        // A partial BOM followed by other bytes is content, not dropped.
        let out = decode_all(b"\xEF\xBBdata: a\n\n");
        assert!(out.is_empty());
    }

    #[test]
    fn final_event_without_blank_line_is_dispatched_at_finish() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"data: {\"last\":true}", &mut out);
        assert!(out.is_empty());
        d.finish(&mut out);
        assert_eq!(out, vec![ev(None, "{\"last\":true}", None)]);
    }

    #[test]
    fn a_cut_stream_drops_its_unterminated_line() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(
            b"data: {\"a\":1}\n\ndata: {\"b\":2}\ndata: {\"half",
            &mut out,
        );
        d.finish_cut(&mut out);
        assert_eq!(
            out,
            vec![ev(None, "{\"a\":1}", None), ev(None, "{\"b\":2}", None)]
        );
    }

    #[test]
    fn split_invariance_on_tricky_input() {
        split_everywhere(
            "data: héllo wörld 🎉\r\n\r\n: c\revent: e\rdata: a\r\n\r\ndata: z".as_bytes(),
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let out = decode_all(b"data: \xff\xfe ok\n\n");
        assert_eq!(out[0].data, "\u{fffd}\u{fffd} ok");
    }

    /// Invalid bytes at the end of one `data:` line and the start of the next decode as if
    /// each line were decoded on its own (the data buffer is decoded once, at dispatch).
    #[test]
    fn invalid_utf8_across_data_lines_is_replaced_per_line() {
        let input = b"event: e\xff\ndata: \xe6\x97\ndata: \xa5x\n\n";
        let out = decode_all(input);
        assert_eq!(
            out,
            vec![ev(Some("e\u{fffd}"), "\u{fffd}\n\u{fffd}x", None)]
        );
        split_everywhere(input);
    }

    proptest::proptest! {
        /// What decoding the data buffer once at dispatch relies on: lossy UTF-8 decoding of
        /// lines joined with `\n` equals the lossy decodings of each line, joined.
        #[test]
        fn lossy_decoding_commutes_with_newline_joins(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
        ) {
            let a: Vec<u8> = a.into_iter().filter(|&x| x != b'\n').collect();
            let b: Vec<u8> = b.into_iter().filter(|&x| x != b'\n').collect();
            let joined = [&a[..], b"\n", &b[..]].concat();
            let per_line = format!(
                "{}\n{}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
            proptest::prop_assert_eq!(utf8(&joined).into_owned(), per_line);
        }
    }

    /// The borrowing API yields exactly what the owning one does, whatever the chunking.
    #[test]
    fn feed_ref_matches_feed() {
        let input =
            "id: 1\nevent: a\ndata: x\r\n\r\n: c\ndata: é\ndata\n\nevent: b\n\ndata: z".as_bytes();
        let whole = decode_all(input);
        for i in 0..=input.len() {
            let mut d = SseDecoder::new();
            let mut out = Vec::new();
            let mut sink = |e: SseEventRef<'_>| out.push(e.to_owned_event());
            d.feed_ref(&input[..i], &mut sink);
            d.feed_ref(&input[i..], &mut sink);
            d.finish_ref(&mut sink);
            assert_eq!(out, whole, "split at {i}");
        }
        assert_eq!(
            whole,
            vec![
                ev(Some("a"), "x", Some("1")),
                ev(None, "é\n", Some("1")),
                ev(None, "z", Some("1")),
            ]
        );
    }

    #[test]
    fn byte_at_a_time() {
        let input = "event: message_start\ndata: {\"t\":\"日本\"}\r\n\r\n".as_bytes();
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for b in input {
            d.feed(std::slice::from_ref(b), &mut out);
        }
        d.finish(&mut out);
        assert_eq!(out, decode_all(input));
        assert_eq!(out[0].data, "{\"t\":\"日本\"}");
    }
}
