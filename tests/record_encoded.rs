//! Issue 16, defects 4 and 5: encoded response bodies are stored decoded and redacted (and
//! replay), a secret split across body reads never reaches disk, and the recording proxy
//! records request bodies that are gzip-encoded or not JSON. The client of the proxy reads
//! exactly the bytes the upstream sent.

mod support_fake;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};
use support_fake::{assert_no_secrets, FakeProvider, Reply, API_KEY, BODY_SECRET};
use tapeloop::cassette::Cassette;
use tapeloop::net::proxy::{self, ProxyOptions};

const BIN: &str = env!("CARGO_BIN_EXE_tapeloop");
const ORIGINAL: &str = "x-tapeloop-original-content-encoding";

/// An OpenAI chat stream whose text carries `BODY_SECRET`.
fn secret_stream() -> Vec<u8> {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut s = chunk(
        json!({"role": "assistant", "content": format!("the key is {BODY_SECRET}.")}),
        Value::Null,
    );
    s.push_str(&chunk(json!({}), json!("stop")));
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// The stream as a cassette must hold it: the secret redacted.
fn redacted_stream() -> Vec<u8> {
    String::from_utf8(secret_stream())
        .unwrap()
        .replace(BODY_SECRET, "[REDACTED]")
        .into_bytes()
}

async fn start_proxy(upstream: String, out_dir: &Path) -> proxy::ProxyHandle {
    proxy::start(ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        out_dir: out_dir.to_path_buf(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        provider: Some("fake".into()),
        mode: proxy::ProxyMode::All,
        conn: tapeloop::net::listener::ConnLimits::DEFAULT,
    })
    .await
    .expect("proxy starts")
}

/// Send through the proxy; the status and the body bytes exactly as the client reads them.
async fn send(rb: reqwest::RequestBuilder) -> (u16, Vec<u8>) {
    let resp = rb.send().await.expect("the proxy answers");
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(item) = stream.next().await {
        body.extend_from_slice(&item.expect("the body completes"));
    }
    (status, body)
}

fn cassettes(dir: &Path) -> Vec<PathBuf> {
    support_fake::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect()
}

/// `tapeloop check` accepts the cassette: it decodes as `run` would replay it.
fn assert_checks(path: &Path) {
    let out = std::process::Command::new(BIN)
        .arg("check")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_and_split_responses_are_stored_decoded_and_redacted_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let gzip = Reply::sse(secret_stream(), 1).encoded("gzip", 3);
    let zstd = Reply::sse(secret_stream(), 2).encoded("zstd", 2);
    // Plain, but the key is split across two HTTP chunks.
    let mut split = Reply::sse(secret_stream(), 3);
    let plain = secret_stream();
    let at = memchr::memmem::find(&plain, BODY_SECRET.as_bytes()).unwrap() + 10;
    split.chunks = vec![(5, plain[..at].to_vec()), (20, plain[at..].to_vec())];
    let script = vec![gzip.clone(), zstd.clone(), split.clone()];
    let fake = FakeProvider::start(script.clone()).await;
    let proxy = start_proxy(fake.url(), dir.path()).await;
    let client = reqwest::Client::new();
    for (i, served) in script.iter().enumerate() {
        let (status, body) = send(
            client
                .post(format!("http://{}/v1/chat/completions", proxy.addr()))
                .bearer_auth(API_KEY)
                .header("x-tapeloop-session", format!("s{i}"))
                .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            served.body(),
            "reply {i}: the client reads the upstream's bytes"
        );
    }
    fake.stop().await;
    let written = proxy.shutdown().await.unwrap();
    assert_eq!(written.len(), 3);
    assert_no_secrets(dir.path());
    for (path, encoding) in cassettes(dir.path()).iter().zip(["gzip", "zstd", ""]) {
        let c = Cassette::load(path).unwrap();
        let inter = &c.interactions[0];
        assert_eq!(inter.body(), redacted_stream(), "{}", path.display());
        let head = inter.response.as_ref().unwrap();
        assert_eq!(head.headers.get("content-encoding"), None);
        assert_eq!(
            head.headers.get(ORIGINAL),
            (!encoding.is_empty()).then_some(encoding)
        );
        assert_checks(path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_records_gzip_and_non_json_request_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let a = Reply::sse(secret_stream(), 4);
    let b = Reply::sse(secret_stream(), 5);
    let fake = FakeProvider::start(vec![a.clone(), b.clone()]).await;
    let proxy = start_proxy(fake.url(), dir.path()).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/chat/completions", proxy.addr());

    let request = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "zipped"}]});
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(request.to_string().as_bytes()).unwrap();
    let zipped = e.finish().unwrap();
    let (status, body) = send(
        client
            .post(&url)
            .header("x-tapeloop-session", "zipped")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(zipped.clone()),
    )
    .await;
    assert_eq!((status, body), (200, a.body()));

    let text = format!("not json at all, key {BODY_SECRET}");
    let (status, body) = send(
        client
            .post(&url)
            .header("x-tapeloop-session", "text")
            .header("content-type", "text/plain")
            .body(text.clone()),
    )
    .await;
    assert_eq!((status, body), (200, b.body()));

    let received = fake.received();
    assert_eq!(
        received[0].body, zipped,
        "the upstream gets the bytes as sent"
    );
    assert_eq!(received[1].body, text.as_bytes());
    fake.stop().await;
    assert_eq!(proxy.shutdown().await.unwrap().len(), 2);
    assert_no_secrets(dir.path());

    let by_session = |name: &str| {
        let path = dir.path().join(format!("header-{name}.jsonl"));
        let text = std::fs::read_to_string(&path).unwrap();
        let line: Value = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|l| l["kind"] == "request")
            .unwrap_or_else(|| panic!("no request line in {}", path.display()));
        (path, line)
    };
    let (path, line) = by_session("zipped");
    assert_eq!(line["body"], request);
    assert_eq!(line["headers"][ORIGINAL], "gzip");
    assert!(line["headers"].get("content-encoding").is_none());
    assert_checks(&path);
    let (path, line) = by_session("text");
    assert_eq!(line["body"], Value::Null);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(line["body_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b"not json at all, key [REDACTED]");
    assert_checks(&path);
}
