//! The `chunk` line as tapeloop writes it, parsed without a general JSON parser.
//!
//! Chunk lines are most of a cassette's bytes, and their `data` is SSE text whose every quote
//! is escaped (JSON inside JSON), so they are where a replay spends its parsing time. Written by
//! tapeloop they always have one shape, `{"kind":"chunk","id":N,"ms":N,"data":"…"}` (or `b64`
//! instead of `data`). [`parse`] accepts exactly that shape and unescapes the string in one
//! pass straight into its final, right-sized buffer: no scratch buffer grown per line, no copy
//! from scratch to `String`, no serde visitor. Anything else, including every malformed,
//! unusual or merely differently formatted line, returns `None` and takes the serde path, which
//! decides (and words the errors) exactly as before; a unit test proves the two agree.

use super::ChunkLine;
use crate::json_scan::{number, string};

/// Parse a canonical chunk line; `None` for anything else (the caller falls back to serde).
pub(super) fn parse(bytes: &[u8]) -> Option<ChunkLine> {
    let rest = bytes.strip_prefix(br#"{"kind":"chunk","id":"#)?;
    let (id, rest) = number(rest)?;
    let rest = rest.strip_prefix(br#","ms":"#)?;
    let (ms, rest) = number(rest)?;
    let (is_data, rest) = match rest.strip_prefix(br#","data":""#) {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix(br#","b64":""#)?),
    };
    let (text, rest) = string(rest)?;
    if rest != b"}" {
        return None;
    }
    let (data, b64) = match is_data {
        true => (Some(text), None),
        false => (None, Some(text)),
    };
    Some(ChunkLine { id, ms, data, b64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(line: &str) -> Option<String> {
        parse(line.as_bytes()).and_then(|c| c.data)
    }

    #[test]
    fn canonical_lines_parse_and_unescape() {
        let c = parse(br#"{"kind":"chunk","id":7,"ms":0,"data":"data: {\"a\":\"\u00e9\ud83d\ude00\\n\"}\n\n"}"#)
            .unwrap();
        assert_eq!((c.id, c.ms, c.b64), (7, 0, None));
        assert_eq!(c.data.as_deref(), Some("data: {\"a\":\"é😀\\n\"}\n\n"));
        let c = parse(br#"{"kind":"chunk","id":1,"ms":2,"b64":"eA=="}"#).unwrap();
        assert_eq!((c.data, c.b64.as_deref()), (None, Some("eA==")));
        assert_eq!(
            data(r#"{"kind":"chunk","id":1,"ms":2,"data":"\b\f\r\t\/"}"#).as_deref(),
            Some("\u{8}\u{c}\r\t/")
        );
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for line in [
            r#"{"kind":"chunk","id":1,"ms":2,"data":"lone \ud800 surrogate"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"lone \udc00 low"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"\q"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"\u12"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"tab	raw"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"unterminated}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"a"} "#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":"a","x":1}"#,
            r#"{"kind":"chunk","id":01,"ms":2,"data":"a"}"#,
            r#"{"kind":"chunk","id":1.0,"ms":2,"data":"a"}"#,
            r#"{"kind":"chunk","id":1e3,"ms":2,"data":"a"}"#,
            r#"{"kind":"chunk","id":-1,"ms":2,"data":"a"}"#,
            r#"{"kind":"chunk","id":18446744073709551616,"ms":2,"data":"a"}"#,
            r#"{"kind":"chunk","ms":2,"id":1,"data":"a"}"#,
            r#"{"kind":"chunk","id":1,"ms":2,"data":null}"#,
            r#"{"kind":"chunk", "id":1,"ms":2,"data":"a"}"#,
        ] {
            assert!(parse(line.as_bytes()).is_none(), "{line}");
        }
        assert!(parse(b"{\"kind\":\"chunk\",\"id\":1,\"ms\":2,\"data\":\"\xff\"}").is_none());
        assert_eq!(
            parse(br#"{"kind":"chunk","id":18446744073709551615,"ms":0,"data":""}"#).map(|c| c.id),
            Some(u64::MAX)
        );
    }

    /// Whatever serde_json writes for a chunk line (every escape it produces), this parser
    /// reads back to the same text.
    #[test]
    fn reads_back_what_serde_writes() {
        let mut texts: Vec<String> = (0u32..0x800)
            .chain([0xFFFD, 0xFFFF, 0x1F600, 0x10FFFF])
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b\\\"{c}"))
            .collect();
        texts.push(String::new());
        texts.push("data: {\"x\":\"line\\nbreak \\\"q\\\"\"}\n\n".into());
        for (i, text) in texts.into_iter().enumerate() {
            let line = super::super::Line::Chunk(ChunkLine {
                id: i as u64,
                ms: 3,
                data: Some(text),
                b64: None,
            });
            let json = serde_json::to_string(&line).unwrap();
            let parsed = parse(json.as_bytes()).map(super::super::Line::Chunk);
            assert_eq!(parsed.as_ref(), Some(&line), "{json}");
        }
    }

    proptest::proptest! {
        /// On arbitrary string bodies (dense in quotes, backslashes, `u`, hex digits, control
        /// and non-ASCII bytes) this parser either declines or agrees with serde exactly.
        #[test]
        fn never_disagrees_with_serde(body in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::sample::select(b"\\\"u0123456789abcdefABCDEFdD/bfnrt ".to_vec()),
            ],
            0..48,
        )) {
            let mut line = br#"{"kind":"chunk","id":5,"ms":6,"data":""#.to_vec();
            line.extend_from_slice(&body);
            line.extend_from_slice(br#""}"#);
            if let Some(fast) = parse(&line) {
                let generic = serde_json::from_slice::<super::super::Line>(&line);
                proptest::prop_assert_eq!(generic.ok(), Some(super::super::Line::Chunk(fast)));
            }
        }
    }
}
