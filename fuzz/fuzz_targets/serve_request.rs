//! The request handling `serve` and the proxy do before any cassette lookup, without a
//! socket: route the path to an API, parse the body, compute the session key and the canonical
//! body used by strict matching. Input: `path\nheader-value\nbody`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tapeloop::matching::{canonical, session_key, strict_difference};
use tapeloop::provider::wire;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let session = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let _ = wire::route(&path);
    let _ = wire::api_from_uri(&path);
    let _ = wire::sniff(body);
    let mut headers = hyper::HeaderMap::new();
    if let Ok(v) = hyper::header::HeaderValue::from_bytes(session) {
        headers.insert("x-tapeloop-session", v);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let _ = session_key(&headers, &value);
    let c = canonical(&value);
    assert!(strict_difference(&value, &value).is_none());
    let _ = strict_difference(&c, &value);
});
