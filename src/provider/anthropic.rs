//! (adapter under construction: replaced by the adapter implementation)

use serde_json::Value;

use crate::conversation::{Conversation, RequestOptions};
use crate::event::{EndOutcome, ErrorClass, ProviderError, StreamEvent};
use crate::http::{self, Headers};

pub struct Decoder;

impl Decoder {
    pub fn new() -> Self {
        Decoder
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl super::PayloadDecoder for Decoder {
    fn payload(&mut self, _event: Option<&str>, _data: &str, _out: &mut Vec<StreamEvent>) {}
    fn end(&mut self, _outcome: EndOutcome, _out: &mut Vec<StreamEvent>) {}
}

pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    let class = http::class_for_status(status);
    ProviderError {
        class,
        status: Some(status),
        message: String::from_utf8_lossy(body).into_owned(),
        retryable: http::status_is_retryable(status) && class != ErrorClass::ContextOverflow,
        retry_after_ms: http::retry_after_ms(headers, None),
        code: None,
    }
}

pub fn request_body(_conv: &Conversation, opts: &RequestOptions) -> Value {
    serde_json::json!({"model": opts.model, "stream": opts.stream})
}
