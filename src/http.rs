//! HTTP facts shared by every wire API: response headers, server-requested retry waits and the
//! default classification of a status code.

use indexmap::IndexMap;
use std::time::{Duration, SystemTime};

use crate::event::ErrorClass;

/// Header map as stored in cassettes: names as recorded, values as strings. Lookups are
/// case-insensitive because HTTP header names are.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Headers(pub IndexMap<String, String>);

impl Headers {
    pub fn new() -> Self {
        Headers(IndexMap::new())
    }

    /// The first value whose name matches `name` ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Headers(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The wait a server asked for, in ms, from `retry-after-ms` (float ms) or `retry-after`
/// (seconds, or an HTTP-date measured against the response's own `date` header, else `now`).
///
/// Mirrors opencode's `SessionRetry.delay` header handling: `retry-after-ms` wins, seconds are
/// rounded up, a date in the past is ignored.
pub fn retry_after_ms(headers: &Headers, now: Option<SystemTime>) -> Option<u64> {
    if let Some(v) = headers.get("retry-after-ms") {
        if let Ok(ms) = v.trim().parse::<f64>() {
            if ms.is_finite() && ms >= 0.0 {
                return Some(ms.ceil() as u64);
            }
        }
    }
    let v = headers.get("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some((secs * 1000.0).ceil() as u64);
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    let reference = headers
        .get("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .or(now)?;
    let delta = when.duration_since(reference).ok()?;
    if delta == Duration::ZERO {
        return None;
    }
    Some(delta.as_millis().min(u64::MAX as u128) as u64)
}

/// Parse a protobuf-JSON duration such as Gemini's `RetryInfo.retryDelay` (`"34.4s"`) into ms.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let num = s.trim().strip_suffix('s')?;
    let secs: f64 = num.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some((secs * 1000.0).ceil() as u64)
}

/// The class an HTTP status has when its body says nothing more specific.
pub fn class_for_status(status: u16) -> ErrorClass {
    match status {
        401 | 403 => ErrorClass::Auth,
        413 => ErrorClass::ContextOverflow,
        429 => ErrorClass::RateLimited,
        503 | 529 => ErrorClass::Overloaded,
        500..=599 => ErrorClass::Server,
        _ => ErrorClass::InvalidRequest,
    }
}

/// The AI SDK's default `APICallError.isRetryable`: 408, 409, 429 or any 5xx.
pub fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// Whether an error message says the prompt did not fit the context window (opencode's
/// `ProviderError` overflow patterns, provider/error.ts).
pub fn is_context_overflow_message(message: &str) -> bool {
    static PATTERNS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = PATTERNS.get_or_init(|| {
        regex::Regex::new(concat!(
            r"(?i)prompt is too long|input is too long for requested model|",
            r"exceeds the context window|input token count.*exceeds the maximum|",
            r"maximum prompt length is \d+|reduce the length of the messages|",
            r"maximum context length is \d+ tokens|exceeds the limit of \d+|",
            r"exceeds the available context size|greater than the context length|",
            r"context window exceeds limit|exceeded model token limit|",
            r"context[_ ]length[_ ]exceeded|request entity too large|",
            r"context length is only \d+ tokens|input length.*exceeds.*context length"
        ))
        .expect("overflow patterns are valid")
    });
    re.is_match(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn retry_after_ms_header_wins_and_is_rounded_up() {
        let hs = h(&[("Retry-After-Ms", "1500.2"), ("retry-after", "9")]);
        assert_eq!(retry_after_ms(&hs, None), Some(1501));
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            retry_after_ms(&h(&[("retry-after", "11")]), None),
            Some(11_000)
        );
        assert_eq!(
            retry_after_ms(&h(&[("retry-after", "0.5")]), None),
            Some(500)
        );
        assert_eq!(retry_after_ms(&h(&[("retry-after", "-3")]), None), None);
        assert_eq!(retry_after_ms(&h(&[("retry-after", "soon")]), None), None);
    }

    #[test]
    fn retry_after_http_date_against_response_date() {
        let hs = h(&[
            ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
            ("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT"),
        ]);
        assert_eq!(retry_after_ms(&hs, None), Some(30_000));
        // A date in the past asks for no wait.
        let past = h(&[
            ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
            ("retry-after", "Wed, 21 Oct 2026 07:27:00 GMT"),
        ]);
        assert_eq!(retry_after_ms(&past, None), None);
        // Without a date header the caller's clock is the reference; without either, nothing.
        let no_date = h(&[("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT")]);
        assert_eq!(retry_after_ms(&no_date, None), None);
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:20 GMT").unwrap();
        assert_eq!(retry_after_ms(&no_date, Some(now)), Some(10_000));
    }

    #[test]
    fn protobuf_durations() {
        assert_eq!(parse_duration_ms("34.4s"), Some(34_400));
        assert_eq!(parse_duration_ms("0s"), Some(0));
        assert_eq!(parse_duration_ms("34.4"), None);
        assert_eq!(parse_duration_ms("-1s"), None);
    }

    #[test]
    fn overflow_messages() {
        assert!(is_context_overflow_message(
            "This model's maximum context length is 128000 tokens. However, you requested 130000"
        ));
        assert!(is_context_overflow_message(
            "prompt is too long: 210000 tokens > 200000 maximum"
        ));
        assert!(is_context_overflow_message(
            "The input token count (1200000) exceeds the maximum"
        ));
        assert!(!is_context_overflow_message(
            "Rate limit reached for gpt-4o"
        ));
    }

    #[test]
    fn status_defaults() {
        assert_eq!(class_for_status(429), ErrorClass::RateLimited);
        assert_eq!(class_for_status(529), ErrorClass::Overloaded);
        assert_eq!(class_for_status(502), ErrorClass::Server);
        assert_eq!(class_for_status(401), ErrorClass::Auth);
        assert_eq!(class_for_status(404), ErrorClass::InvalidRequest);
        assert!(status_is_retryable(408) && status_is_retryable(500) && !status_is_retryable(400));
    }
}
