//! Helpers shared by the `tapeloop serve` tests: corpus paths, hand-built cassettes with a
//! valid footer, an in-process server on a loopback port, a proxy-free HTTP client, raw TCP
//! exchanges, and the Python interpreter used for the real SDK clients.
#![allow(dead_code)]

#[path = "../support_python/mod.rs"]
mod support_python;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::Digest;
use std::process::Command;
use tapeloop::cassette::{Cassette, CassetteIndex, Interaction};
use tapeloop::event::{StreamEvent, ToolCall};
pub use tapeloop::matching::ServeMatch;
use tapeloop::net::serve::{self, Pace, ServeOptions, ServerHandle};
use tapeloop::provider::Api;

/// Upper bound for any single network exchange in these tests: a hang guard, never an
/// assertion about speed.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn corpus(name: &str) -> PathBuf {
    repo(&format!("recordings/{name}"))
}

pub fn load(path: &Path) -> Cassette {
    Cassette::load(path).unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

/// The lines of a cassette file without its footer, as JSON values.
pub fn lines_without_footer(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("cassette line is JSON"))
        .filter(|v| v["kind"] != "footer")
        .collect()
}

/// Write `lines` as a cassette with a correct footer (count and sha256 of the bytes before it).
pub fn write_cassette(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let mut text = String::new();
    for l in lines {
        text.push_str(&serde_json::to_string(l).expect("serialize line"));
        text.push('\n');
    }
    let interactions = lines.iter().filter(|l| l["kind"] == "request").count();
    let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let footer = json!({"kind": "footer", "interactions": interactions, "lines": lines.len(), "sha256": sha});
    text.push_str(&footer.to_string());
    text.push('\n');
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write cassette");
    // Fail here, not in the server, when a hand-built cassette is malformed.
    load(&path);
    path
}

/// A hand-written interaction for [`synthetic_cassette`].
pub struct Synth {
    pub body: Value,
    /// `None`: the connection failed before the response head.
    pub status: Option<u16>,
    pub headers: Value,
    pub chunks: Vec<(u64, &'static str)>,
    pub end: (u64, &'static str),
}

/// Header + interactions in cassette line form.
pub fn synthetic_cassette(api: &str, model: &str, inters: &[Synth]) -> Vec<Value> {
    let mut lines = vec![
        json!({"kind": "header", "format": "tapeloop-cassette", "version": 1,
        "api": api, "provider": "test", "model": model, "recorder": "serve tests", "redacted": []}),
    ];
    for (i, s) in inters.iter().enumerate() {
        let id = i + 1;
        lines.push(
            json!({"kind": "request", "id": id, "step": 1, "attempt": id, "method": "POST",
            "url": "https://example.invalid/", "headers": {}, "body": s.body}),
        );
        if let Some(status) = s.status {
            lines.push(
                json!({"kind": "response", "id": id, "status": status, "headers": s.headers,
                "ms": s.chunks.first().map(|c| c.0.saturating_sub(1)).unwrap_or(0)}),
            );
        }
        for (ms, data) in &s.chunks {
            lines.push(json!({"kind": "chunk", "id": id, "ms": ms, "data": data}));
        }
        lines.push(json!({"kind": "end", "id": id, "ms": s.end.0, "outcome": s.end.1}));
    }
    lines
}

/// A multi-threaded runtime sized for the two shared cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Loopback, port 0, in recorded order per session (`strict` or `sequence`).
pub fn options(pace: Pace, strict: bool) -> ServeOptions {
    options_matching(
        pace,
        if strict {
            ServeMatch::Strict
        } else {
            ServeMatch::Sequence
        },
    )
}

/// Loopback, port 0, the given match mode.
pub fn options_matching(pace: Pace, matching: ServeMatch) -> ServeOptions {
    ServeOptions {
        pace,
        matching,
        ..ServeOptions::new("127.0.0.1:0".parse().expect("loopback address"))
    }
}

/// Start an in-process server on a free loopback port.
pub async fn start(paths: &[PathBuf], opts: ServeOptions) -> ServerHandle {
    assert!(opts.listen.ip().is_loopback(), "tests bind loopback only");
    let cassettes = paths
        .iter()
        .map(|p| CassetteIndex::open(p).unwrap_or_else(|e| panic!("index {}: {e}", p.display())))
        .collect();
    serve::start(cassettes, opts).await.expect("start server")
}

/// An HTTP client that never goes through a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(HANG_GUARD)
        .build()
        .expect("reqwest client")
}

/// POST `body` as JSON to `path` and return the response (a send error fails the test).
pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url(addr, path))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// POST `body` as JSON to the Chat Completions path as session `session`
/// (`x-tapeloop-session`) and return the response (a send error fails the test).
pub async fn post_as(addr: SocketAddr, session: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url(addr, "/v1/chat/completions"))
        .header("x-tapeloop-session", session)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST as {session}: {e}"))
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The endpoint path of an API for the cassette's model.
pub fn endpoint(api: Api, model: &str) -> String {
    match api {
        Api::OpenAiChat => "/v1/chat/completions".into(),
        Api::OpenAiResponses => "/v1/responses".into(),
        Api::Anthropic => "/v1/messages".into(),
        Api::Gemini => format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
    }
}

pub async fn status(addr: SocketAddr) -> Value {
    client()
        .get(url(addr, "/_tapeloop/status"))
        .send()
        .await
        .expect("status request")
        .json()
        .await
        .expect("status JSON")
}

/// The interaction ids one session was served, from `/_tapeloop/status`.
pub fn session_ids(status: &Value, session: &str) -> Vec<u64> {
    status["sessions"][session]["interactions"]
        .as_array()
        .map(|a| a.iter().map(|p| p["id"].as_u64().expect("id")).collect())
        .unwrap_or_default()
}

/// Send raw bytes over a fresh TCP connection and read until the server closes it.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    s.write_all(request).expect("write request");
    let mut out = Vec::new();
    // A reset after the response is fine: keep what arrived.
    let _ = s.read_to_end(&mut out);
    out
}

/// What a client should see from an interaction, decoded by tapeloop's own adapter.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    pub text: String,
    pub reasoning: String,
    /// (call id, tool name, parsed arguments), in stream order.
    pub tool_calls: Vec<(String, String, Value)>,
}

pub fn expected(inter: &Interaction, api: Api) -> Seen {
    let mut seen = Seen::default();
    for ev in inter.decode(api) {
        match ev {
            StreamEvent::TextDelta { text, .. } => seen.text.push_str(&text),
            StreamEvent::ReasoningDelta { text, .. } => seen.reasoning.push_str(&text),
            StreamEvent::ToolCall(ToolCall {
                id, tool, input, ..
            }) => seen.tool_calls.push((id, tool, input)),
            _ => {}
        }
    }
    seen
}

/// The Python interpreter with the SDKs (`TAPELOOP_TEST_PYTHON`). Unset: `None` with a note,
/// or a failure when `CI` is set (CI must run these tests).
pub fn python() -> Option<PathBuf> {
    support_python::python("the Python SDK test")
}

/// The last attempt of every step: what an agent finally receives for that step.
pub fn final_attempts(cassette: &Cassette) -> Vec<&Interaction> {
    let mut out: Vec<&Interaction> = Vec::new();
    for inter in &cassette.interactions {
        match out.last_mut() {
            Some(last) if last.step == inter.step => *last = inter,
            _ => out.push(inter),
        }
    }
    out
}

/// Write the request bodies of a cassette's final attempts (one per agent step) as the
/// `CALLS_JSON` of `tests/python/serve_sdk_client.py`.
pub fn calls_file(dir: &Path, name: &str, cassette: &Cassette) -> PathBuf {
    let bodies: Vec<&Value> = final_attempts(cassette)
        .iter()
        .map(|i| i.request.body.value())
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(&bodies).expect("bodies")).expect("write calls");
    path
}

/// The SDK client script for `api` against `base` (no proxy, no key or base URL from the
/// environment: loopback only).
pub fn sdk_command(python: &Path, api: Api, base: &str, calls: &Path, model: &str) -> Command {
    let api_name = match api {
        Api::OpenAiChat => "openai-chat",
        Api::OpenAiResponses => "openai-responses",
        Api::Anthropic => "anthropic",
        Api::Gemini => "gemini",
    };
    let mut cmd = Command::new(python);
    cmd.arg(repo("tests/python/serve_sdk_client.py"))
        .args([api_name, base, calls.to_str().expect("UTF-8 path")])
        .args(["--model", model])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Run a prepared SDK command to success and return its JSON output.
pub fn sdk_output(mut cmd: Command) -> Value {
    let out = cmd.output().expect("run the Python SDK client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK client failed:\n{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("SDK client output is not JSON ({e}):\n{stderr}"))
}

/// Every step's SDK result (`output["calls"]`) equals what tapeloop decodes from the step's
/// final interaction.
pub fn assert_calls_match(output: &Value, cassette: &Cassette) {
    let api = cassette.header.api;
    let calls = output["calls"].as_array().expect("calls");
    let finals = final_attempts(cassette);
    assert_eq!(calls.len(), finals.len());
    for (call, inter) in calls.iter().zip(finals) {
        let want = expected(inter, api);
        let ctx = format!(
            "{} {} interaction {}: {call}",
            output["sdk"],
            cassette.path.display(),
            inter.id
        );
        assert_eq!(call["text"].as_str(), Some(want.text.as_str()), "{ctx}");
        assert_eq!(
            call["reasoning"].as_str(),
            Some(want.reasoning.as_str()),
            "{ctx}"
        );
        let got: Vec<(String, Value)> = call["tool_calls"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: no tool_calls"))
            .iter()
            .map(|t| {
                let args = t["arguments"].as_str().unwrap();
                (
                    t["name"].as_str().unwrap().to_string(),
                    serde_json::from_str(if args.is_empty() { "{}" } else { args })
                        .expect("SDK tool arguments are JSON"),
                )
            })
            .collect();
        let want_calls: Vec<(String, Value)> = want
            .tool_calls
            .iter()
            .map(|(_, name, input)| (name.clone(), input.clone()))
            .collect();
        assert_eq!(got, want_calls, "{ctx}");
        // Ids are compared where the API has them (Gemini's are often absent).
        for (t, (id, _, _)) in call["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&want.tool_calls)
        {
            if let Some(got_id) = t["id"].as_str() {
                assert_eq!(got_id, id, "{ctx}");
            }
        }
    }
}

/// The request log (`GET /_tapeloop/requests`) as JSON values.
pub async fn request_log(addr: SocketAddr) -> Vec<Value> {
    let r = client()
        .get(url(addr, "/_tapeloop/requests"))
        .send()
        .await
        .expect("requests");
    assert_eq!(
        r.headers()["content-type"],
        "application/x-ndjson",
        "JSON lines"
    );
    r.text()
        .await
        .expect("log text")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a log line is JSON"))
        .collect()
}
