//! Error helpers every adapter shares: the errors a stream itself produces (an undecodable
//! payload, a cut-off body) and reading the JSON out of an HTTP error body. Per-API
//! classification stays in each adapter; this module depends on none of them, so no adapter
//! has to import another for these.

use serde_json::Value;

use crate::event::{EndOutcome, ErrorClass, ProviderError};

/// An error raised by the stream rather than an HTTP status: no status, no retry hint.
pub(crate) fn stream_error(class: ErrorClass, message: String, retryable: bool) -> ProviderError {
    ProviderError {
        class,
        status: None,
        message,
        retryable,
        retry_after_ms: None,
        code: None,
    }
}

/// A payload that is not the provider's JSON; never retryable. The message quotes the first
/// 120 characters of `data`, followed by `cut_marker` when that cut something off (the OpenAI
/// adapters mark it with `…`, Anthropic and Gemini with nothing).
pub(crate) fn protocol_error(
    err: &serde_json::Error,
    data: &str,
    cut_marker: &str,
) -> ProviderError {
    let mut preview: String = data.chars().take(120).collect();
    if preview.len() < data.len() {
        preview.push_str(cut_marker);
    }
    stream_error(
        ErrorClass::Protocol,
        format!("undecodable stream payload ({err}): {preview}"),
        false,
    )
}

/// A decoder stopped at a limit ([`crate::limits`]); the message states the limit. Never
/// retryable: the same bytes hit the same limit.
pub(crate) fn limit_error(err: &crate::limits::LimitError) -> ProviderError {
    stream_error(
        ErrorClass::Protocol,
        format!("stream refused: {err}"),
        false,
    )
}

/// A stream cut off before its terminal event (Anthropic and Gemini wording: the caller writes
/// the message); always retryable.
pub(crate) fn network_error(message: String) -> ProviderError {
    stream_error(ErrorClass::Network, message, true)
}

/// A stream that ended before `terminal`, or whose connection failed (the OpenAI adapters'
/// wording); retryable unless the client aborted it.
pub(crate) fn cut_off_error(outcome: EndOutcome, terminal: &str) -> ProviderError {
    let message = match outcome {
        EndOutcome::Complete => format!("stream ended before {terminal}"),
        EndOutcome::Reset => "connection reset before the response completed".to_string(),
        EndOutcome::Timeout => "read timeout before the response completed".to_string(),
        EndOutcome::Aborted => "request aborted before the response completed".to_string(),
    };
    stream_error(ErrorClass::Network, message, outcome != EndOutcome::Aborted)
}

/// The JSON object inside an error body that may be bare, SSE-framed (`data: {…}`), or wrapped
/// in a JSON array (`[{…}]`, Gemini's non-`alt=sse` framing).
pub(crate) fn error_json(body: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}').trim();
    let parsed = serde_json::from_str::<Value>(text).ok().or_else(|| {
        // SSE framing: join the data lines of the first event that has any.
        let mut data = String::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            } else if line.is_empty() && !data.is_empty() {
                break;
            }
        }
        serde_json::from_str::<Value>(&data).ok()
    })?;
    match parsed {
        Value::Array(items) => items.into_iter().find(Value::is_object),
        v @ Value::Object(_) => Some(v),
        _ => None,
    }
}

/// The message of an error body that names none: its text (at most 2,000 characters), or
/// `HTTP {status}` when it is empty.
pub(crate) fn body_text_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text.chars().take(2000).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_error_marks_a_cut_preview() {
        let err = serde_json::from_str::<Value>("x").unwrap_err();
        let long = "x".repeat(130);
        assert!(protocol_error(&err, &long, "…").message.ends_with("x…"));
        assert!(protocol_error(&err, &long, "").message.ends_with('x'));
        assert!(protocol_error(&err, "xy", "…").message.ends_with(": xy"));
    }

    #[test]
    fn error_json_unwraps_framings() {
        let want = Some(serde_json::json!({"error": {"code": 1}}));
        assert_eq!(error_json(br#"{"error":{"code":1}}"#), want);
        assert_eq!(error_json(b"data: {\"error\":{\"code\":1}}\n\n"), want);
        assert_eq!(error_json(br#"[{"error":{"code":1}}]"#), want);
        assert_eq!(error_json(b"oops"), None);
    }

    #[test]
    fn body_text_messages() {
        assert_eq!(body_text_message(502, b"  "), "HTTP 502");
        assert_eq!(body_text_message(502, b" bad gateway\n"), "bad gateway");
    }
}
