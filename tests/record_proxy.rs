//! `tapeloop record --proxy` in front of the in-process fake provider: the client sees the
//! upstream's bytes unchanged, each session becomes a replayable cassette, errors and resets are
//! recorded faithfully, secrets never reach disk, and SIGINT / shutdown write every footer.

mod support_fake;
mod support_python;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};
use support_fake::{
    assert_no_secrets, Ending, FakeProvider, Reply, API_KEY, BODY_SECRET, QUERY_KEY,
};
use tapeloop::cassette::{Cassette, REDACTED};
use tapeloop::event::{EndOutcome, StreamEvent, ToolCall};
use tapeloop::net::proxy::{self, ProxyOptions};
use tapeloop::provider::Api;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_tapeloop");
const CHAT_TURN1: &str = "openai-chat/mirascope__parallel_tool_calls.turn1.sse";

fn cassettes_in(dir: &Path) -> Vec<PathBuf> {
    support_fake::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect()
}

async fn start_proxy(upstream: String, out_dir: &Path) -> proxy::ProxyHandle {
    proxy::start(ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        out_dir: out_dir.to_path_buf(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        provider: Some("fake".into()),
        mode: proxy::ProxyMode::Once,
        conn: tapeloop::net::listener::ConnLimits::DEFAULT,
    })
    .await
    .expect("proxy starts")
}

/// Send one request through the proxy and read the body read by read, as a client would.
async fn send(
    rb: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>, Option<String>) {
    let resp = rb.send().await.expect("the proxy answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => body.extend_from_slice(&b),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    (status, headers, body, error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_unchanged_and_records_errors_resets_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let gemini = Reply::fixture("gemini/mirascope__parallel_function_calls.turn1.sse", 81);
    let reset = Reply::fixture(CHAT_TURN1, 82).cut(4, Ending::Reset);
    let limited = Reply::json(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
        &[
            ("retry-after", "1"),
            ("anthropic-ratelimit-requests-remaining", "0"),
        ],
    );
    let script = vec![gemini.clone(), reset.clone(), limited.clone()];
    let fake = FakeProvider::start(script).await;
    let proxy = start_proxy(fake.url(), dir.path()).await;
    let base = format!("http://{}", proxy.addr());
    let client = reqwest::Client::new();

    // Gemini, key in the query, a key-shaped secret in the body.
    let gemini_body = json!({"contents": [{"role": "user", "parts": [{"text": format!("hello {BODY_SECRET}")}]}]});
    let (status, headers, body, err) = send(
        client
            .post(format!(
                "{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={QUERY_KEY}"
            ))
            .json(&gemini_body),
    )
    .await;
    assert_eq!((status, err), (200, None));
    assert_eq!(body, gemini.body(), "the client reads the upstream's bytes");
    assert_eq!(headers["x-request-id"], "req_fake_81");

    // OpenAI chat, bearer key, the connection drops mid-stream: the client sees it too.
    let chat_body =
        json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, body, err) = send(
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(API_KEY)
            .json(&chat_body),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, reset.body());
    assert!(err.is_some(), "the reset reaches the client as an error");

    // Anthropic 429 with its headers; an explicit session header.
    let (status, headers, body, err) = send(
        client
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", API_KEY)
            .header("x-tapeloop-session", "agent-7")
            .json(&json!({"model": "claude-sonnet-4-20250514", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!((status, err), (429, None));
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body, limited.body());

    // Upstream got every request unchanged (key, query, body).
    let received = fake.received();
    assert_eq!(received.len(), 3);
    assert!(received[0].target.ends_with(&format!("&key={QUERY_KEY}")));
    assert_eq!(
        serde_json::from_slice::<Value>(&received[0].body).unwrap(),
        gemini_body
    );
    assert_eq!(
        received[1].header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(received[2].header("x-api-key"), Some(API_KEY));

    let mut paths = proxy.shutdown().await.expect("footers written");
    fake.stop().await;
    paths.sort();
    assert_eq!(paths.len(), 3, "one cassette per session");
    assert!(paths.iter().any(|p| p.ends_with("header-agent-7.jsonl")));
    let cassettes: Vec<Cassette> = paths.iter().map(|p| Cassette::load(p).unwrap()).collect();
    for c in &cassettes {
        assert!(c.footer.is_some(), "{}", c.path.display());
        assert_eq!(c.interactions.len(), 1);
    }
    let by_api = |api: Api| {
        cassettes
            .iter()
            .find(|c| c.header.api == api)
            .expect("a cassette for the api")
    };
    let g = by_api(Api::Gemini);
    assert_eq!(g.header.model.as_deref(), Some("gemini-2.5-flash"));
    let gi = &g.interactions[0];
    assert!(
        gi.request.url.contains(&format!("key={REDACTED}"))
            || gi.request.url.contains("key=%5BREDACTED%5D")
    );
    let got: Vec<&[u8]> = gi.chunks.iter().map(|c| c.bytes.as_slice()).collect();
    let want: Vec<&[u8]> = gemini.chunks.iter().map(|(_, b)| b.as_slice()).collect();
    assert_eq!(got, want, "chunk by chunk");
    for (i, c) in gi.chunks.iter().enumerate() {
        assert!(c.ms >= gemini.delay_until(i));
    }
    assert!(gi
        .decode(Api::Gemini)
        .iter()
        .any(|e| matches!(e, StreamEvent::ToolCall(ToolCall { .. }))));

    let r = &by_api(Api::OpenAiChat).interactions[0];
    assert_eq!(r.end.unwrap().outcome, EndOutcome::Reset);
    assert_eq!(r.body(), reset.body());
    assert_eq!(
        r.request
            .headers
            .get("authorization")
            .map(|v| v.contains(REDACTED)),
        Some(true)
    );

    let a = &by_api(Api::Anthropic).interactions[0];
    let head = a.response.as_ref().unwrap();
    assert_eq!(head.status, 429);
    assert_eq!(head.headers.get("retry-after"), Some("1"));
    assert_eq!(a.body(), limited.body());
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_an_in_flight_stream_as_aborted_and_writes_the_footer() {
    let dir = tempfile::tempdir().unwrap();
    let stalled = Reply::fixture(CHAT_TURN1, 91).cut(2, Ending::Stall);
    let fake = FakeProvider::start(vec![stalled.clone()]).await;
    let proxy = start_proxy(fake.url(), dir.path()).await;
    let url = format!("http://{}/v1/chat/completions", proxy.addr());
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(API_KEY)
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while got.len() < stalled.body().len() {
        let b = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("chunks arrive")
            .expect("not ended")
            .expect("no error");
        got.extend_from_slice(&b);
    }
    assert_eq!(got, stalled.body());
    let paths = tokio::time::timeout(Duration::from_secs(30), proxy.shutdown())
        .await
        .expect("shutdown is bounded")
        .expect("footers written");
    drop(stream);
    fake.stop().await;
    assert_eq!(paths.len(), 1);
    let c = Cassette::load(&paths[0]).expect("reads with its footer");
    assert!(c.footer.is_some());
    assert_eq!(c.interactions.len(), 1);
    assert_eq!(c.interactions[0].end.unwrap().outcome, EndOutcome::Aborted);
    assert_eq!(c.interactions[0].body(), stalled.body());
    assert_no_secrets(dir.path());
}

/// The proxy binary on an ephemeral port; returns the child and its address.
async fn spawn_proxy_cli(upstream: &str, out: &Path) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "record",
            "--proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
        ])
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the proxy");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the proxy announces itself")
        .unwrap()
        .expect("a first stderr line");
    // "tapeloop record --proxy: http://127.0.0.1:PORT → ..."
    let addr = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// The data payloads of an SSE body (no `[DONE]`), parsed.
fn sse_payloads(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_streams_tool_calls_through_the_proxy_binary() {
    let Some(python) = support_python::python("the openai SDK proxy test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("proxy");
    let first = Reply::fixture(CHAT_TURN1, 101);
    let second = Reply::fixture(CHAT_TURN1, 102);
    let fake = FakeProvider::start(vec![first.clone(), second.clone()]).await;
    let (mut child, addr) = spawn_proxy_cli(&fake.url(), &out).await;

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/proxy_openai_stream.py"
    );
    let run = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(script)
            .arg(format!("{addr}/v1"))
            .arg(API_KEY)
            .env_remove("OPENAI_BASE_URL")
            .output(),
    )
    .await
    .expect("the SDK script finishes")
    .expect("python runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_slice(&run.stdout).expect("the script prints JSON");

    // The raw bytes the SDK's HTTP client read are the upstream's.
    assert_eq!(seen["raw"].as_str().unwrap().as_bytes(), first.body());
    // The SDK parsed exactly the chunks the upstream served, in order.
    let served = sse_payloads(&second.body());
    let parsed = seen["chunks"].as_array().unwrap();
    assert_eq!(parsed.len(), served.len());
    for (p, s) in parsed.iter().zip(&served) {
        assert_eq!(p["id"], s["id"]);
        assert_eq!(p["choices"], s["choices"], "chunk {}", s["id"]);
    }
    let calls = &seen["tool_calls"];
    assert_eq!(calls["0"]["name"], "secret_retrieval_tool");
    assert_eq!(
        serde_json::from_str::<Value>(calls["0"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"password": "mellon"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(calls["1"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"password": "radiance"})
    );
    assert_eq!(
        fake.received()[0].header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );

    // Ctrl-C: the proxy exits cleanly and writes the footer.
    let pid = child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the proxy exits after SIGINT")
        .unwrap();
    assert!(status.success(), "{status:?}");
    fake.stop().await;

    let paths = cassettes_in(&out);
    assert_eq!(paths.len(), 1, "one session: {paths:?}");
    let c = Cassette::load(&paths[0]).unwrap();
    assert!(c.footer.is_some(), "SIGINT wrote the footer");
    assert_eq!(c.interactions.len(), 2);
    // The identical second request is recorded as a retry of step 1.
    assert_eq!(
        c.interactions
            .iter()
            .map(|i| (i.step, i.attempt))
            .collect::<Vec<_>>(),
        vec![(1, 1), (1, 2)]
    );
    for (inter, served) in c.interactions.iter().zip([&first, &second]) {
        let got: Vec<&[u8]> = inter.chunks.iter().map(|c| c.bytes.as_slice()).collect();
        let want: Vec<&[u8]> = served.chunks.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(got, want);
        assert_eq!(inter.end.unwrap().outcome, EndOutcome::Complete);
    }

    // `tapeloop events` replays it into the two tool calls.
    let events = tokio::process::Command::new(BIN)
        .arg("events")
        .arg(&paths[0])
        .output()
        .await
        .unwrap();
    assert!(
        events.status.success(),
        "{}",
        String::from_utf8_lossy(&events.stderr)
    );
    let text = String::from_utf8_lossy(&events.stdout);
    assert!(
        text.contains("mellon") && text.contains("radiance"),
        "{text}"
    );
    assert_no_secrets(dir.path());
}

// Issue 16, defects 4 and 5: encoded response bodies are stored decoded and redacted (and
// replay), a secret split across body reads never reaches disk, and request bodies that are
// gzip-encoded or not JSON are recorded. The client reads exactly the bytes the upstream sent.

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
        let (status, _, body, err) = send(
            client
                .post(format!("http://{}/v1/chat/completions", proxy.addr()))
                .bearer_auth(API_KEY)
                .header("x-tapeloop-session", format!("s{i}"))
                .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
        assert_eq!((status, err), (200, None));
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
    for (path, encoding) in cassettes_in(dir.path()).iter().zip(["gzip", "zstd", ""]) {
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
    let (status, _, body, _) = send(
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
    let (status, _, body, _) = send(
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
