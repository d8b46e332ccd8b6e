//! The official `openai` and `anthropic` Python SDKs against `tapeloop serve`: they stream the
//! recorded text, reasoning and tool calls exactly as tapeloop's own adapters decode them from
//! the cassette, their built-in retries honour a replayed `retry-after` and then receive the
//! next interaction, and strict mode sees their requests as the recorded ones.
//!
//! Needs `TAPELOOP_TEST_PYTHON` (skipped with a note when unset, failing when `CI` is set).

mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tapeloop::cassette::Cassette;
use tapeloop::net::serve::{Pace, ServeSummary};

use serve_support::*;

struct SdkRun {
    output: Value,
    status: Value,
    summary: ServeSummary,
}

/// Serve `cassette` (strict, instant) and run the SDK client script over its steps.
fn run_sdk(
    python: &Path,
    api: &str,
    cassette_path: &Path,
    session: Option<&str>,
    agent_retries: u32,
) -> SdkRun {
    let cassette = load(cassette_path);
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<&Value> = final_attempts(&cassette)
        .iter()
        .map(|i| i.request.body.value())
        .collect();
    let calls = dir.path().join("calls.json");
    std::fs::write(&calls, serde_json::to_vec(&bodies).unwrap()).unwrap();
    let rt = runtime();
    let server = rt.block_on(start(
        &[cassette_path.to_path_buf()],
        options(Pace::Instant, true),
    ));
    let addr = server.addr();
    let mut cmd = Command::new(python);
    cmd.arg(repo("tests/python/serve_sdk_client.py"))
        .args([api, &format!("http://{addr}"), calls.to_str().unwrap()])
        .args(["--agent-retries", &agent_retries.to_string()])
        // Loopback only: no proxy from the environment, no key or base URL leaking in.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL");
    if let Some(s) = session {
        cmd.args(["--session", s]);
    }
    let out = cmd.output().expect("run the Python SDK client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK client failed:\n{stderr}");
    let output: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("SDK client output is not JSON ({e}):\n{stderr}"));
    let status = rt.block_on(status(addr));
    let summary = rt.block_on(server.shutdown());
    SdkRun {
        output,
        status,
        summary,
    }
}

fn assert_matches_cassette(run: &SdkRun, cassette: &Cassette) {
    assert_calls_match(&run.output, cassette);
}

fn all_ids(cassette: &Cassette) -> Vec<u64> {
    cassette.interactions.iter().map(|i| i.id).collect()
}

/// The one session's served ids, whatever its key.
fn only_session_ids(status: &Value) -> Vec<u64> {
    let sessions = status["sessions"].as_object().unwrap();
    assert_eq!(sessions.len(), 1, "one client, one session: {status}");
    session_ids(status, sessions.keys().next().unwrap())
}

/// A copy of a corpus cassette whose first interaction's response carries `retry-after`.
fn with_retry_after(dir: &Path, name: &str, secs: &str) -> PathBuf {
    let mut lines = lines_without_footer(&corpus(name));
    let head = lines
        .iter_mut()
        .find(|l| l["kind"] == "response" && l["id"] == 1)
        .expect("interaction 1 has a response");
    head["headers"]["retry-after"] = json!(secs);
    write_cassette(dir, name, &lines)
}

#[test]
fn openai_sdk_streams_text_reasoning_and_tool_calls_as_recorded() {
    let Some(py) = python() else { return };
    for (api, name) in [
        ("openai-chat", "call-with-tools.openai-chat.jsonl"),
        ("openai-chat", "reasoning-deepseek.openai-chat.jsonl"),
        ("openai-responses", "call-with-tools.openai-responses.jsonl"),
    ] {
        let path = corpus(name);
        let cassette = load(&path);
        let run = run_sdk(&py, api, &path, Some("sdk"), 0);
        assert!(run.output["sdk"].as_str().unwrap().starts_with("openai "));
        assert_matches_cassette(&run, &cassette);
        assert_eq!(session_ids(&run.status, "header:sdk"), all_ids(&cassette));
        assert!(
            !run.summary.strict_failed(),
            "{name}: the SDK's requests must match the recorded ones: {:?}",
            run.summary.divergences
        );
    }
    // The corpus must actually exercise what this test claims.
    let chat = expected(
        &load(&corpus("call-with-tools.openai-chat.jsonl")).interactions[0],
        tapeloop::provider::Api::OpenAiChat,
    );
    assert_eq!(chat.tool_calls.len(), 2);
    let deepseek = expected(
        &load(&corpus("reasoning-deepseek.openai-chat.jsonl")).interactions[0],
        tapeloop::provider::Api::OpenAiChat,
    );
    assert!(!deepseek.reasoning.is_empty() && !deepseek.text.is_empty());
}

#[test]
fn openai_sdk_retry_honours_replayed_429_retry_after_then_gets_the_next_interaction() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The corpus asks for 7 s; 2 s keeps the test short and still exceeds the SDK's own
    // first backoff (at most 0.5 s without a header), so the wait proves the header was used.
    let path = with_retry_after(dir.path(), "retry-429.openai-chat.jsonl", "2");
    let cassette = load(&path);
    assert_eq!(
        cassette.interactions[0].response.as_ref().unwrap().status,
        429
    );
    // No session header: the SDK's retry and the next step share the conversation-prefix session.
    let run = run_sdk(&py, "openai-chat", &path, None, 0);
    assert_matches_cassette(&run, &cassette);
    let calls = run.output["calls"].as_array().unwrap();
    assert_eq!(
        calls[0]["errors"],
        json!([]),
        "the SDK retried the 429 itself"
    );
    assert!(
        calls[0]["seconds"].as_f64().unwrap() >= 1.9,
        "the SDK waited the replayed retry-after: {}",
        calls[0]
    );
    assert_eq!(only_session_ids(&run.status), vec![1, 2, 3]);
    assert!(!run.summary.strict_failed(), "{:?}", run.summary);
}

#[test]
fn openai_sdk_sees_a_replayed_reset_as_a_failed_stream_and_the_retry_succeeds() {
    let Some(py) = python() else { return };
    let path = corpus("retry-reset.openai-responses.jsonl");
    let cassette = load(&path);
    let run = run_sdk(&py, "openai-responses", &path, Some("reset"), 1);
    assert_matches_cassette(&run, &cassette);
    let errors = run.output["calls"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "one cut stream: {errors:?}");
    assert_eq!(session_ids(&run.status, "header:reset"), vec![1, 2, 3]);
    assert!(!run.summary.strict_failed(), "{:?}", run.summary);
}

#[test]
fn anthropic_sdk_streams_text_thinking_and_tool_calls_as_recorded() {
    let Some(py) = python() else { return };
    for name in [
        "call-with-tools.anthropic.jsonl",
        "reasoning-thinking.anthropic.jsonl",
    ] {
        let path = corpus(name);
        let cassette = load(&path);
        let run = run_sdk(&py, "anthropic", &path, Some("sdk"), 0);
        assert!(run.output["sdk"]
            .as_str()
            .unwrap()
            .starts_with("anthropic "));
        assert_matches_cassette(&run, &cassette);
        assert_eq!(session_ids(&run.status, "header:sdk"), all_ids(&cassette));
        assert!(!run.summary.strict_failed(), "{name}: {:?}", run.summary);
    }
    let thinking = expected(
        &load(&corpus("reasoning-thinking.anthropic.jsonl")).interactions[0],
        tapeloop::provider::Api::Anthropic,
    );
    assert!(!thinking.reasoning.is_empty() && !thinking.tool_calls.is_empty());
}

#[test]
fn anthropic_sdk_retries_replayed_overload_honouring_retry_after_then_an_in_stream_error() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The corpus 529 has `x-should-retry: true` and no retry-after; add one to show the SDK
    // honours it (its own first backoff is at most 1 s with jitter: 2 s is distinguishable).
    let path = with_retry_after(dir.path(), "retry-overloaded.anthropic.jsonl", "2");
    let cassette = load(&path);
    assert_eq!(
        cassette.interactions[0].response.as_ref().unwrap().status,
        529
    );
    let run = run_sdk(&py, "anthropic", &path, None, 1);
    assert_matches_cassette(&run, &cassette);
    let call = &run.output["calls"][0];
    // The 529 was retried by the SDK; the in-stream `event: error` of attempt 2 reached the
    // agent (SDKs do not retry mid-stream), which retried and got attempt 3.
    let errors = call["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded_error"),
        "{errors:?}"
    );
    assert!(call["seconds"].as_f64().unwrap() >= 1.9, "{call}");
    assert_eq!(only_session_ids(&run.status), vec![1, 2, 3, 4]);
    assert!(!run.summary.strict_failed(), "{:?}", run.summary);
}
