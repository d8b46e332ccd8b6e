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

/// A JSON unsigned integer that fits `u64` (no sign, fraction, exponent or leading zero: those
/// go to serde, which rejects or converts them as it always has).
fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let (num, rest) = bytes.split_at(digits);
    if num.is_empty() || (num.len() > 1 && num[0] == b'0') {
        return None;
    }
    if matches!(rest.first(), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in num {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((n, rest))
}

/// Bytes that end a run of plain string bytes: the closing quote, a backslash, and the control
/// characters JSON forbids raw.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// One bit (the top of its byte) per byte of `w` that ends a plain run: `"`, `\\` or below
/// 0x20, the word tricks `serde_json` uses too. Bits above the lowest may be spurious
/// (borrows), so only the lowest counts.
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    has_zero(w ^ (ONES * u64::from(b'"')))
        | has_zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// Copy the plain bytes at `bytes[i..]` to `out` and return the index of the first byte that
/// is not plain (or the end). Eight bytes at a time: each word is stored whole and the output
/// cut back to the first special byte, so short runs between escapes (SSE text escapes every
/// quote) cost a store instead of a `memcpy` call. `out` never grows past `bytes.len()`:
/// unescaping only shrinks, and a word is stored only where eight input bytes remain.
fn copy_plain(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        out.extend_from_slice(&word);
        let special = special_bytes(u64::from_le_bytes(word));
        if special != 0 {
            let keep = (special.trailing_zeros() / 8) as usize;
            out.truncate(out.len() - 8 + keep);
            return i + keep;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if SPECIAL[usize::from(b)] {
            break;
        }
        out.push(b);
        i += 1;
    }
    i
}

/// The body of a JSON string (after its opening quote), unescaped; returns it and the bytes
/// after the closing quote. `None` on a raw control character, an unknown escape, a lone
/// surrogate or invalid UTF-8 (serde then reports it).
fn string(bytes: &[u8]) -> Option<(String, &[u8])> {
    // Unescaping only shrinks, so one allocation of the input's size always suffices.
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    loop {
        i = copy_plain(bytes, i, &mut out);
        match bytes.get(i)? {
            b'"' => break,
            b'\\' => {
                let esc = *bytes.get(i + 1)?;
                i += 2;
                let byte = match esc {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        let (c, used) = unicode_escape(&bytes[i..])?;
                        i += used;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        continue;
                    }
                    _ => return None,
                };
                out.push(byte);
            }
            _ => return None,
        }
    }
    let text = String::from_utf8(out).ok()?;
    Some((text, &bytes[i + 1..]))
}

/// The character of a `\u` escape whose four hex digits start `bytes` (a surrogate pair takes
/// a second `\uXXXX`), and how many bytes it used.
fn unicode_escape(bytes: &[u8]) -> Option<(char, usize)> {
    let hi = hex4(bytes)?;
    if !(0xD800..0xE000).contains(&hi) {
        return Some((char::from_u32(hi)?, 4));
    }
    if hi >= 0xDC00 {
        return None;
    }
    let lo = hex4(bytes.get(4..)?.strip_prefix(b"\\u")?)?;
    if !(0xDC00..0xE000).contains(&lo) {
        return None;
    }
    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    Some((char::from_u32(c)?, 10))
}

fn hex4(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.get(..4)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(acc << 4 | v)
    })
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
