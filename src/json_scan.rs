//! JSON read by hand, for the two hot shapes a replay parses millions of times: the cassette's
//! `chunk` lines ([`crate::cassette`]) and OpenAI Chat stream payloads
//! ([`crate::provider::openai_chat`]).
//!
//! These are building blocks for *fast paths*, not a parser: every function returns `None` on
//! anything unusual (a raw control character, an unknown escape, a lone surrogate, a number
//! with a sign where none is expected, nesting deeper than [`MAX_SKIP_DEPTH`]), and the caller
//! then falls back to `serde_json`, which accepts, rejects and words errors exactly as it
//! always has. A fast path may only decline or agree with serde; each has a test proving it.

use std::borrow::Cow;

/// How deep [`Cursor::skip_value`] follows nested objects and arrays before declining.
pub const MAX_SKIP_DEPTH: u32 = 16;

/// A JSON unsigned integer that fits `u64` (no sign, fraction, exponent or leading zero: those
/// go to serde, which rejects or converts them as it always has).
pub fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
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

/// The index of the first byte at or after `i` that is not plain (or the end), eight bytes at
/// a time.
fn plain_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let special = special_bytes(u64::from_le_bytes(word));
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(|&b| !SPECIAL[usize::from(b)]) {
        i += 1;
    }
    i
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

/// The body of a JSON string (after its opening quote), unescaped into one buffer of the
/// input's size; returns it and the bytes after the closing quote. `None` on a raw control
/// character, an unknown escape, a lone surrogate or invalid UTF-8 (serde then reports it).
pub fn string(bytes: &[u8]) -> Option<(String, &[u8])> {
    // Unescaping only shrinks, so one allocation of the input's size always suffices.
    let mut out = Vec::with_capacity(bytes.len());
    let end = unescape(bytes, 0, &mut out)?;
    let text = String::from_utf8(out).ok()?;
    Some((text, &bytes[end..]))
}

/// Unescape the string body starting at `bytes[i..]` into `out`; returns the index just past
/// the closing quote.
fn unescape(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        i = copy_plain(bytes, i, out);
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
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

/// A position in a JSON text being read by hand. Every method returns `None` where the text
/// is not what a fast path handles; whitespace is skipped before each token.
pub struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn ws(&mut self) {
        while matches!(
            self.bytes().get(self.at),
            Some(b' ' | b'\t' | b'\n' | b'\r')
        ) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.at).copied()
    }

    /// Consume `b` (after whitespace).
    pub fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// Only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consume `literal` (`null`, `true`, `false`).
    fn literal(&mut self, literal: &str) -> Option<()> {
        self.ws();
        let rest = self.bytes().get(self.at..)?;
        rest.starts_with(literal.as_bytes())
            .then(|| self.at += literal.len())
    }

    /// `null` is next: consume it and say so.
    pub fn null(&mut self) -> bool {
        self.literal("null").is_some()
    }

    /// A string, borrowed from the text when it has no escapes.
    pub fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let bytes = self.bytes();
        let end = plain_end(bytes, start);
        if *bytes.get(end)? == b'"' {
            self.at = end + 1;
            // The quotes are ASCII, so both ends are character boundaries.
            return self.text.get(start..end).map(Cow::Borrowed);
        }
        let mut out = Vec::with_capacity(end - start + 16);
        out.extend_from_slice(&bytes[start..end]);
        self.at = unescape(bytes, end, &mut out)?;
        String::from_utf8(out).ok().map(Cow::Owned)
    }

    /// An object key: borrowed, and declined when it has escapes (no key a fast path knows
    /// has any).
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = plain_end(self.bytes(), start);
        (*self.bytes().get(end)? == b'"').then_some(())?;
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// Step over a string without keeping it.
    fn skip_string(&mut self) -> Option<()> {
        let start = self.at;
        self.eat(b'"')?;
        let end = plain_end(self.bytes(), self.at);
        if *self.bytes().get(end)? == b'"' {
            self.at = end + 1;
            return Some(());
        }
        self.at = start;
        self.string().map(drop)
    }

    /// An unsigned integer that fits `u32` (anything else declines; see [`number`]).
    pub fn u32(&mut self) -> Option<u32> {
        self.ws();
        let (n, rest) = number(self.bytes().get(self.at..)?)?;
        self.at = self.bytes().len() - rest.len();
        u32::try_from(n).ok()
    }

    /// The members of an object: `member` is called with each key, the cursor at its value,
    /// and must consume the value.
    pub fn object(&mut self, mut member: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The elements of an array: `element` is called with the cursor at each and must consume
    /// it.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Step over any value, checking it is well formed (serde checks what it ignores too).
    pub fn skip_value(&mut self) -> Option<()> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' if depth < MAX_SKIP_DEPTH => self.object(|c, _| c.skip_nested(depth + 1)),
            b'[' if depth < MAX_SKIP_DEPTH => self.array(|c| c.skip_nested(depth + 1)),
            b'n' => self.literal("null"),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// A number in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn skip_number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let mut i = self.at;
        let digits = |i: &mut usize| {
            let start = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > start
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        if !digits(&mut i) || (bytes[int_start] == b'0' && i - int_start > 1) {
            return None;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.at = i;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(text: &str) -> bool {
        let mut c = Cursor::new(text);
        c.skip_value().is_some() && c.at_end()
    }

    #[test]
    fn skip_value_accepts_what_serde_accepts_and_declines_the_rest() {
        for ok in [
            "0",
            "-0",
            "12",
            "-1.5e+3",
            "2E9",
            "1.25",
            " null ",
            "true",
            "false",
            r#""a\"b\u00e9""#,
            r#"{"a":[1,{"b":null}],"c":"d"}"#,
            "[]",
            "{}",
            "[ 1 , 2 ]",
        ] {
            assert!(skips(ok), "{ok}");
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "nul",
            "[1,]",
            "{\"a\"1}",
            "{\"a\":1,}",
            "[1 2]",
            "\"\\q\"",
            "\"raw\ttab\"",
            "{1:2}",
        ] {
            assert!(!skips(bad), "{bad}");
        }
        let deep = "[".repeat(20) + &"]".repeat(20);
        assert!(!skips(&deep), "deeper than MAX_SKIP_DEPTH declines");
    }

    #[test]
    fn strings_borrow_without_escapes_and_unescape_with_them() {
        let mut c = Cursor::new(r#""plain text" "a\nb\u00e9\ud83d\ude00""#);
        assert!(matches!(c.string(), Some(Cow::Borrowed("plain text"))));
        assert_eq!(c.string().as_deref(), Some("a\nbé😀"));
        assert!(c.at_end());
        for bad in [r#""\ud800""#, r#""\x""#, "\"open", "\"ctl\u{1}\""] {
            assert!(Cursor::new(bad).string().is_none(), "{bad}");
        }
    }

    #[test]
    fn every_one_character_escape_reads_as_serde_reads_it() {
        for b in 0x20..0x7f_u8 {
            let text = format!("\"a\\{}b\"", char::from(b));
            let serde = serde_json::from_str::<String>(&text).ok();
            let ours = string(&text.as_bytes()[1..]).map(|(s, _)| s);
            // `\u` without four hex digits is an error to both.
            assert_eq!(ours, serde, "escape {:?}", char::from(b));
        }
    }
}
