//! OpenAI error classification, shared by the Chat Completions and Responses adapters: the
//! error object's fields, opencode's retry rules, and the wait hinted in rate-limit text.

use serde_json::Value;

use crate::event::{ErrorClass, ProviderError};
use crate::http::{self, Headers};

/// OpenRouter's numeric `code` and `metadata.raw`, Groq's `status_code`).
#[derive(Default, Debug)]
pub(crate) struct ErrorFields {
    pub message: Option<String>,
    pub kind: Option<String>,
    pub code: Option<String>,
    /// A numeric code or `status_code` inside the error object (OpenRouter, Groq).
    pub status: Option<u16>,
}

impl ErrorFields {
    /// Read the error object `err` (the value of `"error"`, or a Responses `response.error`).
    pub(crate) fn from_value(err: &Value) -> ErrorFields {
        let Some(obj) = err.as_object() else {
            return ErrorFields {
                message: err.as_str().map(str::to_owned),
                ..Default::default()
            };
        };
        let str_of = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut message = str_of("message");
        // OpenRouter wraps the upstream's own error text in `metadata.raw`; it is the part that
        // says "rate-limited upstream" or "context length exceeded".
        if let Some(raw) = obj
            .get("metadata")
            .and_then(|m| m.get("raw"))
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            message = Some(match message {
                Some(m) if !m.is_empty() => format!("{m}: {raw}"),
                _ => raw.to_owned(),
            });
        }
        let numeric = |v: Option<&Value>| {
            v.and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..600).contains(n))
        };
        let code_value = obj.get("code");
        let status = numeric(obj.get("status_code"))
            .or_else(|| numeric(obj.get("status")))
            .or_else(|| numeric(code_value));
        let code = match code_value {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        ErrorFields {
            message,
            kind: str_of("type").filter(|s| !s.is_empty()),
            code,
            status,
        }
    }

    /// Read an HTTP error body: `{"error":{...}}`, a bare error object, or any text.
    pub(crate) fn from_body(body: &[u8]) -> ErrorFields {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                let inner = v.get("error").filter(|e| !e.is_null()).unwrap_or(&v);
                let mut f = ErrorFields::from_value(inner);
                if f.message.is_none() {
                    f.message = v.get("message").and_then(Value::as_str).map(str::to_owned);
                }
                f
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body).trim().to_owned();
                ErrorFields {
                    message: (!text.is_empty()).then_some(text),
                    ..Default::default()
                }
            }
        }
    }

    fn has(&self, needle: &str) -> bool {
        let hit = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(needle));
        hit(&self.code) || hit(&self.kind)
    }
}

/// Classify an OpenAI-style error. `http_status` is the response status for HTTP errors and
/// `None` for in-stream errors (whose own `status_code`/numeric `code` then stands in for it).
///
/// Follows opencode's `ProviderError` rules (reference §3.1): 413, `context_length_exceeded` or
/// an overflow message → context overflow, never retried; `insufficient_quota`,
/// `usage_not_included`, `invalid_prompt` → never retried; otherwise the AI SDK default
/// (408/409/429/5xx), overridden by an `x-should-retry` header.
pub(crate) fn classify(
    http_status: Option<u16>,
    headers: Option<&Headers>,
    fields: ErrorFields,
    body_empty: bool,
) -> ProviderError {
    let status = http_status.or(fields.status);
    let message = fields.message.clone().unwrap_or_else(|| match status {
        Some(s) => format!("HTTP {s} (no body)"),
        None => "provider error".to_string(),
    });
    let msg_lower = message.to_ascii_lowercase();
    let never_retry = fields.has("insufficient_quota")
        || fields.has("usage_not_included")
        || fields.has("invalid_prompt");
    let class = if status == Some(413)
        || fields.has("context_length_exceeded")
        || http::is_context_overflow_message(&message)
        || (body_empty && status == Some(400))
    {
        ErrorClass::ContextOverflow
    } else if fields.has("insufficient_quota") {
        ErrorClass::RateLimited
    } else if fields.has("content_filter")
        || fields.has("content_policy")
        || fields.has("invalid_prompt")
    {
        ErrorClass::ContentFilter
    } else if status == Some(429) {
        ErrorClass::RateLimited
    } else if fields.has("overloaded")
        || (status.is_none_or(|s| s >= 500) && msg_lower.contains("overloaded"))
    {
        ErrorClass::Overloaded
    } else if fields.has("rate_limit") || fields.has("too_many_requests") {
        ErrorClass::RateLimited
    } else if matches!(status, Some(401 | 403))
        || fields.has("invalid_api_key")
        || fields.has("authentication")
        || fields.has("permission")
    {
        ErrorClass::Auth
    } else if let Some(s) = status {
        http::class_for_status(s)
    } else if fields.has("invalid_request") || fields.has("not_found") {
        ErrorClass::InvalidRequest
    } else {
        // An in-stream error that names nothing more specific is the server's failure
        // (OpenAI's mid-stream `server_error`).
        ErrorClass::Server
    };
    let mut retryable = match status {
        Some(s) => http::status_is_retryable(s),
        None => matches!(
            class,
            ErrorClass::RateLimited | ErrorClass::Overloaded | ErrorClass::Server
        ),
    };
    if let Some(h) = headers.and_then(|h| h.get("x-should-retry")) {
        match h.trim() {
            "true" => retryable = true,
            "false" => retryable = false,
            _ => {}
        }
    }
    if class == ErrorClass::ContextOverflow || never_retry {
        retryable = false;
    }
    let retry_after_ms = headers
        .and_then(|h| http::retry_after_ms(h, None))
        .or_else(|| retry_after_from_text(&message));
    ProviderError {
        class,
        status: http_status,
        message,
        retryable,
        retry_after_ms,
        code: fields.code.or(fields.kind),
    }
}

/// The wait in OpenAI's rate-limit text: "Please try again in 20s", "in 1.5s", "in 300ms",
/// "in 1m12.48s", "in 2 seconds". Rounded up to whole ms.
pub fn retry_after_from_text(message: &str) -> Option<u64> {
    static RE: std::sync::OnceLock<(regex::Regex, regex::Regex)> = std::sync::OnceLock::new();
    let (outer, part) = RE.get_or_init(|| {
        const UNIT: &str = r"(?:ms|milliseconds?|seconds?|secs?|s|minutes?|mins?|m|hours?|h)";
        (
            regex::Regex::new(&format!(
                r"(?i)try again in\s*((?:\d+(?:\.\d+)?\s*{UNIT}\s*)+)"
            ))
            .expect("valid retry regex"),
            regex::Regex::new(&format!(r"(?i)(\d+(?:\.\d+)?)\s*({UNIT})"))
                .expect("valid retry part regex"),
        )
    });
    let span = outer.captures(message)?.get(1)?.as_str();
    let mut total_ms = 0f64;
    for c in part.captures_iter(span) {
        let n: f64 = c.get(1)?.as_str().parse().ok()?;
        let unit = c.get(2)?.as_str().to_ascii_lowercase();
        let factor = if unit.starts_with("ms") || unit.starts_with("milli") {
            1.0
        } else if unit.starts_with('s') {
            1000.0
        } else if unit.starts_with('m') {
            60_000.0
        } else {
            3_600_000.0
        };
        total_ms += n * factor;
    }
    (total_ms.is_finite() && total_ms >= 0.0).then(|| total_ms.ceil() as u64)
}

/// Classify a non-2xx chat-completions response.
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    let body_empty = body.iter().all(u8::is_ascii_whitespace);
    classify(
        Some(status),
        Some(headers),
        ErrorFields::from_body(body),
        body_empty,
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_text_forms() {
        let cases = [
            ("Please try again in 20s.", Some(20_000)),
            ("Please try again in 1.5s", Some(1_500)),
            ("Please try again in 300ms.", Some(300)),
            ("Please try again in 1m12.48s.", Some(72_480)),
            ("try again in 2 seconds", Some(2_000)),
            ("no hint here", None),
        ];
        for (text, want) in cases {
            assert_eq!(retry_after_from_text(text), want, "{text}");
        }
    }
}
