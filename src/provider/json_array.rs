//! Incremental splitter for a streamed JSON array (`[{…}\n,\r\n{…}]`), the body Gemini's
//! `streamGenerateContent` sends without `alt=sse`. It yields each top-level element's text as
//! soon as the element closes, so decoding stays incremental. An element longer than
//! [`Limits::max_bytes`] or nested deeper than [`Limits::max_depth`] stops the splitter
//! ([`JsonArraySplitter::limit_exceeded`]).

use crate::limits::{LimitError, Limits};

/// Splits a JSON array body into its top-level elements.
#[derive(Debug, Default)]
pub struct JsonArraySplitter {
    /// Bytes of the element being read.
    elem: Vec<u8>,
    /// Nesting depth inside the current element (0 = between elements).
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The opening `[` has been seen.
    opened: bool,
    /// The closing `]` has been seen.
    closed: bool,
    limits: Limits,
    /// The limit that stopped splitting, if one did.
    limit: Option<LimitError>,
}

impl JsonArraySplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; `sink` receives each complete element's text.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut impl FnMut(&str)) {
        for &b in bytes {
            if self.closed || self.limit.is_some() {
                return;
            }
            if !self.opened {
                if b == b'[' {
                    self.opened = true;
                }
                continue;
            }
            if self.depth == 0 {
                match b {
                    b'{' | b'[' => {
                        self.depth = 1;
                        self.elem.clear();
                        self.elem.push(b);
                    }
                    b']' => self.closed = true,
                    _ => {} // separators and whitespace
                }
                continue;
            }
            if let Err(e) = self
                .limits
                .check_bytes("one element of a JSON-array stream", self.elem.len() + 1)
            {
                self.stop(e);
                return;
            }
            self.elem.push(b);
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if let Err(e) = self
                        .limits
                        .check_depth("one element of a JSON-array stream", self.depth as usize)
                    {
                        self.stop(e);
                        return;
                    }
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        // The fast validator first: lossy replacement only for invalid bytes.
                        match std::str::from_utf8(&self.elem) {
                            Ok(text) => sink(text),
                            Err(_) => sink(&String::from_utf8_lossy(&self.elem)),
                        }
                        self.elem.clear();
                    }
                }
                _ => {}
            }
        }
    }

    /// The body ended. An unfinished element is dropped (the adapter reports the cut-off).
    pub fn finish(&mut self, _sink: &mut impl FnMut(&str)) {
        self.elem.clear();
    }

    /// The limit that stopped splitting, if one did.
    pub fn limit_exceeded(&self) -> Option<&LimitError> {
        self.limit.as_ref()
    }

    fn stop(&mut self, e: LimitError) {
        self.limit = Some(e);
        self.elem = Vec::new();
    }

    /// Whether the closing `]` was seen.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_long_elements_stop_at_the_limit() {
        let mut s = JsonArraySplitter::new();
        let mut n = 0;
        s.feed(&[b'['; 10_000], &mut |_| n += 1);
        assert_eq!(n, 0);
        assert!(s
            .limit_exceeded()
            .unwrap()
            .to_string()
            .contains("128-level"));
        let mut s = JsonArraySplitter {
            limits: Limits {
                max_depth: 4,
                max_bytes: 8,
            },
            ..Default::default()
        };
        s.feed(b"[{\"a\":1},{\"long\":\"xxxxxxxxx\"}]", &mut |_| n += 1);
        assert_eq!(n, 1, "the short element is split, the long one refused");
        assert!(s.limit_exceeded().unwrap().to_string().contains("8-byte"));
    }

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = JsonArraySplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |e| out.push(e.to_string()));
        }
        s.finish(&mut |e| out.push(e.to_string()));
        out
    }

    #[test]
    fn splits_elements_with_nested_brackets_and_strings() {
        let body = b"[{\"a\": \"x]}\\\"\", \"b\": [1, {\"c\": 2}]}\n,\r\n{\"d\": 3}\n]";
        let whole = split(&[body]);
        assert_eq!(
            whole,
            vec![r#"{"a": "x]}\"", "b": [1, {"c": 2}]}"#, r#"{"d": 3}"#]
        );
        for i in 0..body.len() {
            assert_eq!(split(&[&body[..i], &body[i..]]), whole, "split at {i}");
        }
    }

    #[test]
    fn truncated_element_is_dropped() {
        assert_eq!(split(&[b"[{\"a\": 1}, {\"b\": "]), vec![r#"{"a": 1}"#]);
    }

    #[test]
    fn invalid_utf8_in_an_element_is_replaced() {
        assert_eq!(
            split(&[b"[{\"a\": \"\xff\xe6\x97\"}, {\"b\": \"\xe6\x97\xa5\"}]"]),
            vec!["{\"a\": \"\u{fffd}\u{fffd}\"}", "{\"b\": \"\u{65e5}\"}"]
        );
    }
}
