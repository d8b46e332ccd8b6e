//! Secret redaction, applied by [`CassetteWriter`](super::CassetteWriter) to every line before
//! it reaches disk, so no caller can bypass it.
//!
//! Rules (named as in the header's `redacted` list):
//! - `header:<name>`: the whole value of `authorization`, `x-api-key`, `api-key`,
//!   `x-goog-api-key`, `proxy-authorization`, `cookie`, `set-cookie` (any case);
//! - `query:<name>`: the values of URL query parameters named `key`, `api_key`,
//!   `access_token`, `token`, `sig`, `signature`, `secret`, `password`, `auth` (any case;
//!   extend with [`Redactor::query_param`]);
//! - `header:allowlist`: response headers outside [`RESPONSE_HEADER_ALLOWLIST`] (content type,
//!   length and encoding, retry and rate-limit headers, request ids; extend with
//!   [`Redactor::keep_response_header`]) are not stored at all: organisation and project ids,
//!   cookies and tracing headers never reach the cassette;
//! - `body:sk-ant-key`, `body:sk-key`, `body:google-key`, `body:bearer`: key-shaped strings
//!   anywhere in URLs, header values, request bodies, chunk data and tool lines;
//! - `secret:explicit`: values registered with [`Redactor::secret`] (the API key in use),
//!   scrubbed verbatim everywhere.
//!
//! Keys split across body reads: the writer redacts a body on a sliding window
//! ([`Redactor::hold_from`], [`Redactor::span_end`]): a read whose end could still be the
//! start of a secret (a key-shaped prefix reaching the end of what has arrived, or a prefix of
//! a registered secret) is held back, at most [`MAX_HOLD`] bytes, and redacted together with
//! the next read. Key-shaped matching
//! needs a word boundary before the prefix and a minimum length (`sk-` + 20, `sk-ant-` + 16,
//! `AIza` + 30, `Bearer` + 8), which keeps prose such as "task-list" intact.

use std::sync::OnceLock;

use indexmap::IndexSet;
use regex::bytes::Regex as BytesRegex;
use regex::Regex;
use serde_json::Value;

use crate::http::Headers;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

const SECRET_HEADERS: [&str; 10] = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
    "x-goog-user-project",
];
/// Query parameters whose values are secrets (compared case-insensitively).
pub const SECRET_QUERY: [&str; 9] = [
    "key",
    "api_key",
    "access_token",
    "token",
    "sig",
    "signature",
    "secret",
    "password",
    "auth",
];
/// Response headers stored in cassettes; a trailing `*` matches a prefix. Everything a replay
/// or a report uses: the body's type and encoding, retry hints, rate limits, request ids.
pub const RESPONSE_HEADER_ALLOWLIST: [&str; 13] = [
    "content-type",
    "content-length",
    "content-encoding",
    // The encoding of a body stored decoded (net::encoding).
    "x-tapeloop-original-content-encoding",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-*",
    "ratelimit*",
    "anthropic-ratelimit-*",
    "x-request-id",
    "request-id",
    "x-goog-request-id",
];

fn allowlisted(list: &[String], name: &str) -> bool {
    RESPONSE_HEADER_ALLOWLIST
        .iter()
        .copied()
        .chain(list.iter().map(String::as_str))
        .any(|pat| match pat.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pat,
        })
}
const BODY_RULES: [&str; 4] = [
    "body:sk-ant-key",
    "body:sk-key",
    "body:google-key",
    "body:bearer",
];
const PATTERN: &str = concat!(
    r"(?P<ant>\bsk-ant-[A-Za-z0-9_\-]{16,})",
    r"|(?P<sk>\bsk-[A-Za-z0-9_\-]{20,})",
    r"|(?P<google>\bAIza[A-Za-z0-9_\-]{30,})",
    r"|(?P<bearer>\b[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[A-Za-z0-9._~+/=\-]{8,})"
);

/// What could still grow into a [`PATTERN`] match once more bytes arrive: a key-shaped prefix
/// (or a whole match) reaching the end of the bytes seen so far.
const TAIL: &str = concat!(
    r"(?:\b(?:s|sk|sk-[A-Za-z0-9_\-]*)",
    r"|\b(?:A|AI|AIz|AIza[A-Za-z0-9_\-]*)",
    r"|\b(?:[Bb]|[Bb][Ee]|[Bb][Ee][Aa]|[Bb][Ee][Aa][Rr]|[Bb][Ee][Aa][Rr][Ee]",
    r"|[Bb][Ee][Aa][Rr][Ee][Rr][ \t]*[A-Za-z0-9._~+/=\-]*))\z"
);

/// The most bytes of a body the sliding window holds back (or the longest registered secret,
/// when longer): far above any real key, so a key split across reads is redacted whole.
pub const MAX_HOLD: usize = 4096;

fn tail_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    RE.get_or_init(|| BytesRegex::new(TAIL).expect("tail pattern is valid"))
}

fn text_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(PATTERN).expect("redaction pattern is valid"))
}

fn bytes_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    RE.get_or_init(|| BytesRegex::new(PATTERN).expect("redaction pattern is valid"))
}

fn rule_for(names: impl Fn(&str) -> bool) -> (&'static str, &'static str) {
    if names("ant") {
        ("body:sk-ant-key", REDACTED)
    } else if names("sk") {
        ("body:sk-key", REDACTED)
    } else if names("google") {
        ("body:google-key", REDACTED)
    } else {
        ("body:bearer", "Bearer [REDACTED]")
    }
}

/// Removes secrets from cassette lines and remembers which rules fired.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    removed: IndexSet<String>,
    /// Query parameters redacted besides [`SECRET_QUERY`] (lowercase).
    extra_query: Vec<String>,
    /// Response headers kept besides [`RESPONSE_HEADER_ALLOWLIST`] (lowercase).
    extra_headers: Vec<String>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also scrub this exact value everywhere (e.g. the API key in use). Empty values and
    /// values shorter than 4 bytes are ignored: scrubbing them would mangle ordinary text.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        let v = value.into();
        if v.len() >= 4 && !self.secrets.contains(&v) {
            self.secrets.push(v);
            // Longest first, so a secret containing another is removed whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        self
    }

    /// Also redact the query parameter `name` (any case).
    pub fn query_param(mut self, name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        if !SECRET_QUERY.contains(&n.as_str()) && !self.extra_query.contains(&n) {
            self.extra_query.push(n);
        }
        self
    }

    /// Also keep the response header `name` (a trailing `*` matches a prefix).
    pub fn keep_response_header(mut self, name: &str) -> Self {
        self.extra_headers.push(name.to_ascii_lowercase());
        self
    }

    fn secret_query(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        SECRET_QUERY.contains(&n.as_str()) || self.extra_query.contains(&n)
    }

    /// Response headers as stored: only allowlisted names, their values redacted by pattern.
    pub fn response_headers(&mut self, h: &Headers) -> Headers {
        let mut dropped = false;
        let kept = h
            .iter()
            .filter(|(name, _)| {
                let keep = allowlisted(&self.extra_headers, &name.to_ascii_lowercase());
                dropped |= !keep;
                keep
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        if dropped {
            self.note("header:allowlist");
        }
        self.headers(&kept)
    }

    /// The rules in force, for the header's `redacted` list.
    pub fn rules(&self) -> Vec<String> {
        let mut rules: Vec<String> = SECRET_HEADERS
            .iter()
            .map(|h| format!("header:{h}"))
            .collect();
        rules.extend(SECRET_QUERY.iter().map(|q| format!("query:{q}")));
        rules.extend(self.extra_query.iter().map(|q| format!("query:{q}")));
        rules.push("header:allowlist".into());
        rules.extend(BODY_RULES.iter().map(|r| r.to_string()));
        if !self.secrets.is_empty() {
            rules.push("secret:explicit".into());
        }
        rules
    }

    /// The rules that removed something so far, in first-seen order.
    pub fn removed(&self) -> Vec<String> {
        self.removed.iter().cloned().collect()
    }

    fn note(&mut self, rule: &str) {
        if !self.removed.contains(rule) {
            self.removed.insert(rule.to_string());
        }
    }

    /// Where to cut `buf` (body bytes not written yet) for the sliding window: `buf[..cut]`
    /// can be redacted and written now, `buf[cut..]` could still be part of a secret that
    /// continues in the next read and is held back (at most [`MAX_HOLD`] bytes or the longest
    /// registered secret). The cut never falls inside a secret found in `buf`, nor inside a
    /// UTF-8 character.
    pub fn hold_from(&self, buf: &[u8]) -> usize {
        let len = buf.len();
        let mut cut = len;
        for secret in &self.secrets {
            let s = secret.as_bytes();
            if let Some(k) = (1..s.len()).rev().find(|&k| buf.ends_with(&s[..k])) {
                cut = cut.min(len - k);
            }
        }
        if let Some(m) = tail_re().find(buf) {
            cut = cut.min(m.start());
        }
        while let Some((start, _)) = self.spans(buf).find(|&(s, e)| s < cut && cut < e) {
            cut = start;
        }
        let max_hold = self.secrets.first().map_or(0, String::len).max(MAX_HOLD);
        cut = cut.max(len.saturating_sub(max_hold));
        while cut > 0 && cut < len && buf[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        cut
    }

    /// Where a secret found in `buf` that spans position `at` ends (the furthest such end),
    /// or `at` when none does: the writer ends a held read there, so the secret is redacted
    /// whole in one line.
    pub fn span_end(&self, buf: &[u8], at: usize) -> usize {
        self.spans(buf)
            .filter(|&(s, e)| s < at && at < e)
            .map(|(_, e)| e)
            .max()
            .unwrap_or(at)
    }

    /// The byte ranges of every secret in `buf`: key-shaped matches and registered secrets.
    fn spans<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
        bytes_re()
            .find_iter(buf)
            .map(|m| (m.start(), m.end()))
            .chain(self.secrets.iter().flat_map(move |s| {
                memchr::memmem::find_iter(buf, s.as_bytes()).map(move |i| (i, i + s.len()))
            }))
    }

    /// Redact a string: explicit secrets, then key-shaped strings.
    pub fn text(&mut self, s: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(s);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(secret.as_str(), REDACTED));
                if !self.removed.contains("secret:explicit") {
                    self.removed.insert("secret:explicit".into());
                }
            }
        }
        let re = text_re();
        if !re.is_match(&out) {
            return out.into_owned();
        }
        let mut fired = Vec::new();
        let replaced = re
            .replace_all(&out, |caps: &regex::Captures| {
                let (rule, with) = rule_for(|n| caps.name(n).is_some());
                fired.push(rule);
                with.to_string()
            })
            .into_owned();
        for r in fired {
            self.note(r);
        }
        replaced
    }

    /// Redact raw bytes (chunk data that is not UTF-8).
    pub fn bytes(&mut self, b: &[u8]) -> Vec<u8> {
        if let Ok(s) = std::str::from_utf8(b) {
            return self.text(s).into_bytes();
        }
        let mut out = b.to_vec();
        for secret in &self.secrets {
            let needle = secret.as_bytes();
            if memchr::memmem::find(&out, needle).is_some() {
                let mut next = Vec::with_capacity(out.len());
                let mut rest = out.as_slice();
                while let Some(i) = memchr::memmem::find(rest, needle) {
                    next.extend_from_slice(&rest[..i]);
                    next.extend_from_slice(REDACTED.as_bytes());
                    rest = &rest[i + needle.len()..];
                }
                next.extend_from_slice(rest);
                out = next;
                if !self.removed.contains("secret:explicit") {
                    self.removed.insert("secret:explicit".into());
                }
            }
        }
        let mut fired = Vec::new();
        let replaced = bytes_re()
            .replace_all(&out, |caps: &regex::bytes::Captures| {
                let (rule, with) = rule_for(|n| caps.name(n).is_some());
                fired.push(rule);
                with.as_bytes().to_vec()
            })
            .into_owned();
        for r in fired {
            self.note(r);
        }
        replaced
    }

    /// Redact every string (not the keys) inside a JSON value.
    pub fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), self.value(x))).collect())
            }
            other => other.clone(),
        }
    }

    /// Redact header values: secret headers wholly, others by pattern.
    pub fn headers(&mut self, h: &Headers) -> Headers {
        h.iter()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                if SECRET_HEADERS.contains(&lower.as_str()) {
                    if value != REDACTED {
                        self.note(&format!("header:{lower}"));
                    }
                    (name.clone(), REDACTED.to_string())
                } else {
                    (name.clone(), self.text(value))
                }
            })
            .collect()
    }

    /// Redact a URL: `key`/`api_key` query values, then patterns in the whole string. The rest
    /// of the URL is kept byte for byte (no re-encoding).
    pub fn url(&mut self, url: &str) -> String {
        let (before_frag, frag) = match url.find('#') {
            Some(i) => (&url[..i], Some(&url[i..])),
            None => (url, None),
        };
        let mut out = match before_frag.find('?') {
            None => before_frag.to_string(),
            Some(q) => {
                let (base, query) = (&before_frag[..q], &before_frag[q + 1..]);
                let parts: Vec<String> = query
                    .split('&')
                    .map(|pair| {
                        let (name, value) = match pair.find('=') {
                            Some(i) => (&pair[..i], Some(&pair[i + 1..])),
                            None => (pair, None),
                        };
                        let decoded = name
                            .replace("%5F", "_")
                            .replace("%5f", "_")
                            .to_ascii_lowercase();
                        match value {
                            Some(v) if self.secret_query(&decoded) && v != REDACTED => {
                                self.note(&format!("query:{decoded}"));
                                format!("{name}={REDACTED}")
                            }
                            _ => pair.to_string(),
                        }
                    })
                    .collect();
                format!("{base}?{}", parts.join("&"))
            }
        };
        if let Some(f) = frag {
            out.push_str(f);
        }
        self.text(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_rules() {
        let mut r = Redactor::new().secret("hunter2-secret");
        let s = r.text(
            "use sk-proj-abcdefghijklmnopqrstuvwxyz0123 or sk-ant-api03-abcdefghijklmnop, \
             AIzaSyA1234567890abcdefghijklmnopqrstu and Bearer eyJhbGciOi.xyz, hunter2-secret; \
             but keep task-management-and-planning and Bearer [REDACTED]",
        );
        assert!(!s.contains("sk-proj") && !s.contains("sk-ant-api03") && !s.contains("AIzaSy"));
        assert!(!s.contains("eyJhbGciOi") && !s.contains("hunter2"));
        assert!(s.contains("task-management-and-planning"));
        assert_eq!(
            r.removed(),
            [
                "secret:explicit",
                "body:sk-key",
                "body:sk-ant-key",
                "body:google-key",
                "body:bearer"
            ]
        );
        // Idempotent: redacting redacted text changes nothing.
        assert_eq!(r.text(&s), s);
    }

    #[test]
    fn urls_keep_their_shape() {
        let mut r = Redactor::new();
        assert_eq!(
            r.url("https://g.example/v1beta/models/m:streamGenerateContent?alt=sse&key=abc123#x"),
            "https://g.example/v1beta/models/m:streamGenerateContent?alt=sse&key=[REDACTED]#x"
        );
        assert_eq!(
            r.url("https://x/y?api_key=zz&keys=1"),
            "https://x/y?api_key=[REDACTED]&keys=1"
        );
        assert_eq!(r.removed(), ["query:key", "query:api_key"]);
        let mut r = Redactor::new().query_param("X-Amz-Credential");
        assert_eq!(
            r.url("https://x/y?Access_Token=t0k&SIG=s&password=p&x-amz-credential=c&q=1"),
            "https://x/y?Access_Token=[REDACTED]&SIG=[REDACTED]&password=[REDACTED]&x-amz-credential=[REDACTED]&q=1"
        );
    }

    #[test]
    fn only_allowlisted_response_headers_are_kept() {
        let mut r = Redactor::new().keep_response_header("x-custom-*");
        let h: Headers = [
            ("Content-Type", "text/event-stream"),
            ("openai-organization", "org-123"),
            ("x-ratelimit-remaining-requests", "9"),
            ("set-cookie", "a=b"),
            ("x-custom-thing", "1"),
            ("request-id", "req_1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let kept = r.response_headers(&h);
        let names: Vec<&str> = kept.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "x-ratelimit-remaining-requests",
                "x-custom-thing",
                "request-id"
            ]
        );
        assert_eq!(r.removed(), ["header:allowlist"]);
    }

    #[test]
    fn the_window_holds_back_what_could_still_be_a_secret() {
        let r = Redactor::new().secret("hunter2-very-secret");
        let cut = |s: &str| r.hold_from(s.as_bytes());
        assert_eq!(cut("data: plain text\n\n"), 18);
        assert_eq!(cut("key: sk-proj-abc"), 5);
        assert_eq!(cut("key: sk-proj-abcdefghijklmnopqrstuvwxyz"), 5);
        assert_eq!(cut("auth Bearer"), 5);
        assert_eq!(cut("pw hunter2-ve"), 3);
        assert_eq!(cut("sk-abcdefghijklmnopqrstuvwxyz done"), 34);
        assert_eq!(r.span_end(b"a sk-abcdefghijklmnopqrstuvwxyz b", 10), 31);
        assert_eq!(r.span_end(b"a sk-abcdefghijklmnopqrstuvwxyz b", 32), 32);
        // Never more than the window.
        let long = format!("x sk-{}", "a".repeat(2 * MAX_HOLD));
        assert_eq!(cut(&long), long.len() - MAX_HOLD);
    }

    #[test]
    fn non_utf8_bytes_are_redacted_too() {
        let mut r = Redactor::new().secret("topsecretvalue");
        let mut input = b"\xff\xfe topsecretvalue sk-abcdefghijklmnopqrstuvwxyz \xc3".to_vec();
        input.push(0);
        let out = r.bytes(&input);
        assert!(memchr::memmem::find(&out, b"topsecret").is_none());
        assert!(memchr::memmem::find(&out, b"sk-abc").is_none());
        assert!(out.starts_with(b"\xff\xfe "));
    }
}
