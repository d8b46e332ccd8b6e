//! `--retry-after-scale F`: the waits a served error asks for, multiplied by F, so a retry
//! test of a real agent takes milliseconds instead of the recorded outage.
//!
//! Rewritten in responses with status >= 400: the `retry-after` header (seconds, or an HTTP
//! date taken relative to the response's recorded `date` header, else to the cassette's
//! `recorded_at`; served as seconds with up to three decimals, which the OpenAI and Anthropic
//! SDKs read as a float), `retry-after-ms`, and Gemini's `retryDelay` (`"34s"`) in a
//! `google.rpc.RetryInfo` detail anywhere in a JSON body. Each change is returned so the
//! request log can show the recorded and the served value.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::http::Headers;

/// One rewritten value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryChange {
    /// `retry-after`, `retry-after-ms` or `retryDelay`.
    pub field: String,
    pub recorded: String,
    pub served: String,
}

/// Seconds as the shortest decimal with at most three places (`0.07`, `7`).
fn seconds_text(secs: f64) -> String {
    let s = format!("{:.3}", secs.max(0.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// The wait a `retry-after` value asks for: seconds, or an HTTP date after `reference`.
fn retry_after_wait(value: &str, reference: Option<SystemTime>) -> Option<f64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return secs.is_finite().then_some(secs.max(0.0));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let from = reference?;
    Some(
        at.duration_since(from)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64(),
    )
}

/// Scale the retry headers of `headers` by `factor`. `recorded_at` is the cassette's
/// recording time (RFC 3339), the fallback reference of an HTTP-date `retry-after`.
pub fn scale_headers(
    headers: &mut Headers,
    factor: f64,
    recorded_at: Option<&str>,
) -> Vec<RetryChange> {
    let mut changes = Vec::new();
    let reference = headers
        .get("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .or_else(|| {
            let t = time::OffsetDateTime::parse(
                recorded_at?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(t.unix_timestamp().max(0) as u64))
        });
    if let Some(v) = headers.get("retry-after").map(str::to_string) {
        if let Some(wait) = retry_after_wait(&v, reference) {
            let served = seconds_text(wait * factor);
            replace(headers, "retry-after", &served);
            changes.push(RetryChange {
                field: "retry-after".into(),
                recorded: v,
                served,
            });
        }
    }
    if let Some(v) = headers.get("retry-after-ms").map(str::to_string) {
        if let Ok(ms) = v.trim().parse::<f64>() {
            if ms.is_finite() {
                let served = format!("{}", (ms.max(0.0) * factor).round() as u64);
                replace(headers, "retry-after-ms", &served);
                changes.push(RetryChange {
                    field: "retry-after-ms".into(),
                    recorded: v,
                    served,
                });
            }
        }
    }
    changes
}

/// Set the value of the header `name` (any case) where it is.
fn replace(headers: &mut Headers, name: &str, value: &str) {
    if let Some((_, v)) = headers
        .0
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        *v = value.to_string();
    }
}

/// Scale every `RetryInfo.retryDelay` in a JSON body; `None` when the body is not JSON or
/// holds none (then it is served as recorded, byte for byte).
pub fn scale_body(body: &[u8], factor: f64) -> Option<(Vec<u8>, Vec<RetryChange>)> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let mut changes = Vec::new();
    walk(&mut v, factor, &mut changes);
    if changes.is_empty() {
        return None;
    }
    Some((serde_json::to_vec(&v).ok()?, changes))
}

fn walk(v: &mut Value, factor: f64, changes: &mut Vec<RetryChange>) {
    match v {
        Value::Object(m) => {
            let is_retry_info = m
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
            if is_retry_info {
                if let Some(Value::String(d)) = m.get_mut("retryDelay") {
                    if let Some(secs) = d
                        .strip_suffix('s')
                        .and_then(|n| n.trim().parse::<f64>().ok())
                        .filter(|n| n.is_finite())
                    {
                        let served = format!("{}s", seconds_text(secs * factor));
                        changes.push(RetryChange {
                            field: "retryDelay".into(),
                            recorded: d.clone(),
                            served: served.clone(),
                        });
                        *d = served;
                    }
                }
            }
            m.values_mut().for_each(|x| walk(x, factor, changes));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| walk(x, factor, changes)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_ms_headers_scale() {
        let mut h = Headers::new();
        h.insert("Retry-After", "7");
        h.insert("retry-after-ms", "7000");
        let changes = scale_headers(&mut h, 0.01, None);
        assert_eq!(h.get("retry-after"), Some("0.07"));
        assert_eq!(h.get("retry-after-ms"), Some("70"));
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].recorded, "7");
        assert_eq!(seconds_text(0.0001), "0");
        assert_eq!(seconds_text(34.0), "34");
    }

    #[test]
    fn http_date_is_relative_to_the_recorded_date() {
        let mut h = Headers::new();
        h.insert("date", "Wed, 21 Oct 2026 07:28:00 GMT");
        h.insert("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT");
        scale_headers(&mut h, 0.1, None);
        assert_eq!(h.get("retry-after"), Some("3"));
        let mut h = Headers::new();
        h.insert("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT");
        scale_headers(&mut h, 0.5, Some("2026-10-21T07:28:00Z"));
        assert_eq!(h.get("retry-after"), Some("15"));
        // No reference, or garbage: left as recorded.
        for v in ["Wed, 21 Oct 2026 07:28:30 GMT", "soon", "NaN", "inf"] {
            let mut h = Headers::new();
            h.insert("retry-after", v);
            assert!(scale_headers(&mut h, 0.5, None).is_empty(), "{v}");
            assert_eq!(h.get("retry-after"), Some(v));
        }
    }

    #[test]
    fn gemini_retry_delay_scales_anywhere_in_the_body() {
        let body = br#"[{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34s"}]}}]"#;
        let (out, changes) = scale_body(body, 0.01).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["error"]["details"][0]["retryDelay"], "0.34s");
        assert_eq!(changes[0].recorded, "34s");
        assert!(scale_body(b"not json", 0.01).is_none());
        assert!(scale_body(br#"{"retryDelay":"3s"}"#, 0.01).is_none());
        assert!(scale_body(
            br#"{"@type":"x.google.rpc.RetryInfo","retryDelay":"xs"}"#,
            0.5
        )
        .is_none());
    }
}
