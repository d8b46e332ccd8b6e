//! Gemini error classification: `google.rpc.Status` bodies, in HTTP errors and in the stream.

use super::*;
use crate::event::{ErrorClass, ProviderError};
use crate::http::{self, Headers};
use crate::provider::error::{body_text_message, error_json};

/// Classify a `google.rpc.Status` by its `status` name, then the HTTP status.
pub(super) fn classify(
    http_status: Option<u16>,
    err: GoogleError,
    headers: Option<&Headers>,
) -> ProviderError {
    let status_code = http_status.or_else(|| err.code.and_then(|c| u16::try_from(c).ok()));
    let message = err
        .message
        .clone()
        .unwrap_or_else(|| err.status.clone().unwrap_or_else(|| "error".into()));
    let detail_str = |ty: &str, field: &str| -> Option<String> {
        err.details.iter().find_map(|d| {
            let t = d.get("@type")?.as_str()?;
            if t.ends_with(ty) {
                d.get(field)?.as_str().map(str::to_string)
            } else {
                None
            }
        })
    };
    let reason = detail_str("google.rpc.ErrorInfo", "reason");
    let retry_delay =
        detail_str("google.rpc.RetryInfo", "retryDelay").and_then(|d| http::parse_duration_ms(&d));
    let (class, mut retryable) = match err.status.as_deref() {
        Some("RESOURCE_EXHAUSTED") => (ErrorClass::RateLimited, true),
        Some("UNAVAILABLE") => (ErrorClass::Overloaded, true),
        Some("INTERNAL") | Some("UNKNOWN") | Some("DEADLINE_EXCEEDED") => {
            (ErrorClass::Server, true)
        }
        Some("UNAUTHENTICATED") | Some("PERMISSION_DENIED") => (ErrorClass::Auth, false),
        Some("INVALID_ARGUMENT")
            if matches!(
                reason.as_deref(),
                Some("API_KEY_INVALID") | Some("API_KEY_EXPIRED")
            ) =>
        {
            (ErrorClass::Auth, false)
        }
        Some("INVALID_ARGUMENT")
        | Some("NOT_FOUND")
        | Some("FAILED_PRECONDITION")
        | Some("OUT_OF_RANGE") => (ErrorClass::InvalidRequest, false),
        _ => match status_code {
            Some(s) => (http::class_for_status(s), http::status_is_retryable(s)),
            None => (ErrorClass::Server, true),
        },
    };
    let (class, retryable_final) = if http::is_context_overflow_message(&message) {
        (ErrorClass::ContextOverflow, false)
    } else {
        if let Some(s) = status_code {
            retryable = retryable || (http::status_is_retryable(s) && class != ErrorClass::Auth);
        }
        (class, retryable)
    };
    let header_wait = match (headers, status_code) {
        (Some(h), Some(s)) if s == 429 || s >= 500 => http::retry_after_ms(h, None),
        _ => None,
    };
    ProviderError {
        class,
        status: http_status,
        message,
        retryable: retryable_final,
        retry_after_ms: retry_delay.or(header_wait),
        code: err.status,
    }
}

/// Classify a non-2xx Gemini response. Gemini sends its JSON error under
/// `Content-Type: text/event-stream`, bare; SSE-framed and array-wrapped bodies work too. The
/// `RetryInfo.retryDelay` in the body is the requested wait; a `retry-after` header is the
/// fallback (429/5xx only).
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    let err = error_json(body)
        .and_then(|v| serde_json::from_value::<ErrorEnvelope>(v).ok())
        .and_then(|e| e.error);
    match err {
        Some(err) => classify(Some(status), err, Some(headers)),
        None => {
            let message = body_text_message(status, body);
            classify(
                Some(status),
                GoogleError {
                    message: Some(message),
                    ..GoogleError::default()
                },
                Some(headers),
            )
        }
    }
}
