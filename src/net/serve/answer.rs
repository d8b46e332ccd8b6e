//! The server's own answers (not replayed ones): JSON bodies, and errors in the shape the
//! client's SDK parses — the OpenAI/Anthropic envelope `{"type":"error","error":{"type",
//! "message"}}`, or for Gemini routes the Google API error `{"error":{"code","message",
//! "status","details"}}` with tapeloop's error kind as the `ErrorInfo` reason.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::Body;
use crate::provider::Api;

/// A body of `bytes`, sent at once.
pub(super) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// `value` as an `application/json` response.
pub(super) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    with_type(status, value.to_string(), "application/json")
}

/// `text` with `content_type`.
pub(super) fn with_type(
    status: StatusCode,
    text: impl Into<Bytes>,
    content_type: &'static str,
) -> Response<Body> {
    let mut r = Response::new(full(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// The error shape a client of `api` expects; `api` is `None` for a path no API claims,
/// where a `/v1beta/` path still gets the Gemini shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    OpenAiAnthropic,
    Gemini,
}

impl Shape {
    pub(super) fn of(api: Option<Api>, path: &str) -> Shape {
        match api {
            Some(Api::Gemini) => Shape::Gemini,
            Some(_) => Shape::OpenAiAnthropic,
            None if path.starts_with("/v1beta/") => Shape::Gemini,
            None => Shape::OpenAiAnthropic,
        }
    }
}

/// The Google RPC status name of an HTTP status, as the Gemini API pairs them.
fn google_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// An error of kind `kind` (`invalid_request_error`, `not_found`, `tapeloop_no_match`...),
/// with `extra` fields (the differing path, the closest interaction) merged into the error
/// object.
pub(super) fn error(
    shape: Shape,
    status: StatusCode,
    kind: &str,
    message: &str,
    extra: Option<Value>,
) -> Response<Body> {
    let mut err = match shape {
        Shape::OpenAiAnthropic => json!({"type": kind, "message": message}),
        Shape::Gemini => json!({
            "code": status.as_u16(),
            "message": message,
            "status": google_status(status),
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": kind,
                "domain": "tapeloop",
            }],
        }),
    };
    if let (Value::Object(e), Some(Value::Object(x))) = (&mut err, extra) {
        e.extend(x);
    }
    let body = match shape {
        Shape::OpenAiAnthropic => json!({"type": "error", "error": err}),
        Shape::Gemini => json!({ "error": err }),
    };
    json_response(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_errors_carry_code_message_status() {
        assert_eq!(Shape::of(None, "/v1beta/x"), Shape::Gemini);
        assert_eq!(
            Shape::of(Some(Api::Anthropic), "/v1/messages"),
            Shape::OpenAiAnthropic
        );
        assert_eq!(
            google_status(StatusCode::TOO_MANY_REQUESTS),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(google_status(StatusCode::IM_A_TEAPOT), "UNKNOWN");
    }
}
