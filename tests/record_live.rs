//! `tapeloop record` (live) against the in-process fake provider: byte-exact chunks, monotonic
//! timing, faithful errors (non-2xx, mid-stream error events, resets, read timeouts), the same
//! verdict on replay, crash safety under SIGKILL, record modes, and no secret on disk.

mod support_fake;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support_fake::{assert_no_secrets, Ending, FakeProvider, Reply, API_KEY, BODY_SECRET};
use tapeloop::cassette::{Cassette, Interaction, REDACTED};
use tapeloop::event::EndOutcome;
use tapeloop::processor::Outcome;
use tapeloop::provider::Api;
use tapeloop::record::{self, LiveOptions, RecordMode};
use tapeloop::report::RunRecord;
use tapeloop::runner::{self, RunOptions};
use tapeloop::scenario::{self, LoadOptions, Scenario};

const BIN: &str = env!("CARGO_BIN_EXE_tapeloop");
const KEY_VAR: &str = "TAPELOOP_TEST_FAKE_KEY";

fn model_of(api: Api) -> &'static str {
    match api {
        Api::OpenAiChat | Api::OpenAiResponses => "gpt-4o",
        Api::Anthropic => "claude-sonnet-4-20250514",
        Api::Gemini => "gemini-2.5-flash",
    }
}

/// The mirascope "retrieve two secrets" task (the real streams' conversation), with a
/// key-shaped string in the prompt so the request body carries a secret.
fn write_scenario(dir: &Path, api: Api) -> PathBuf {
    let path = dir.join("secrets.toml");
    let toml = format!(
        r#"name = "secrets"
api = "{api}"
model = "{model}"
cassettes = ["secrets.jsonl"]
system = "Use parallel tool calling."
prompt = "Please retrieve the secrets associated with each of these passwords: mellon,radiance (my token is {BODY_SECRET})"

[limits]
max_steps = 20
max_retries = 10

[policy]
doom_loop = ["opencode", "seed", "fanout:3"]
doom_action = "ask-reject"
retry = "opencode"
seed = 7

[[tools]]
name = "secret_retrieval_tool"
description = "A tool that requires a password to retrieve a secret."
schema = {{ type = "object", properties = {{ password = {{ type = "string" }} }}, required = ["password"] }}

[[tools.results]]
when = {{ password = "mellon" }}
output = "Welcome to Moria!"

[[tools.results]]
when = {{ password = "radiance" }}
output = "Life before Death"
"#,
        api = api.as_str(),
        model = model_of(api),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn load_scenario(path: &Path) -> Scenario {
    scenario::load(
        path,
        &LoadOptions {
            check_cassettes: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn options(api: Api, base_url: String) -> LiveOptions {
    LiveOptions {
        api,
        model: model_of(api).to_string(),
        provider: "fake".to_string(),
        base_url,
        api_key: Some(API_KEY.to_string()),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
    }
}

async fn record_in_process(
    api: Api,
    script: Vec<Reply>,
    dir: &Path,
) -> (Outcome, Cassette, Vec<Reply>, FakeProvider) {
    let sc = load_scenario(&write_scenario(dir, api));
    let fake = FakeProvider::start(script.clone()).await;
    let opts = options(api, fake.url());
    let out = dir.join("secrets.jsonl");
    let cfg = runner::processor_config(&sc, &RunOptions::default(), Some("fake"));
    let outcome = record::record_scenario(&sc, cfg, &opts, &out, RecordMode::Once, &|_| {})
        .await
        .expect("recording succeeds");
    let cassette = Cassette::load(&out).expect("the cassette reads");
    (outcome, cassette, script, fake)
}

fn replay(dir: &Path, cassette: &Cassette) -> RunRecord {
    let sc = load_scenario(&dir.join("secrets.toml"));
    runner::replay(&sc, cassette, &cassette.path, &RunOptions::default())
        .expect("replayable cassette")
}

/// The live verdict and the replayed one agree on everything the report scores.
fn assert_same_verdict(live: &Outcome, replayed: &RunRecord) {
    let finish = live.termination.expect("the live run ended").as_str();
    assert_eq!(replayed.finish.as_str(), finish, "finish");
    assert_eq!(replayed.steps as usize, live.steps.len(), "steps");
    assert_eq!(replayed.tool_calls, live.tool_calls, "tool calls");
    let live_retries: Vec<_> = live
        .retries
        .iter()
        .map(|r| (r.step, r.attempt, r.status, r.delay_ms))
        .collect();
    let replay_retries: Vec<_> = replayed
        .retries
        .iter()
        .map(|r| (r.step, r.attempt, r.status, r.delay_ms))
        .collect();
    assert_eq!(replay_retries, live_retries, "retries");
    let live_doom = live
        .doom_loop
        .as_ref()
        .map(|d| (d.step, d.tool.clone(), d.detector.to_string()));
    let replay_doom = replayed
        .doom_loop
        .as_ref()
        .map(|d| (d.step, d.tool.clone(), d.detector.clone()));
    assert_eq!(replay_doom, live_doom, "doom loop");
    assert_eq!(replayed.tokens, live.usage, "tokens");
}

/// Each interaction holds exactly what the fake served for it: status, headers, every chunk
/// byte-exact and at its own boundary, `ms` monotonic and no earlier than the served delays.
fn assert_faithful(inter: &Interaction, served: &Reply) {
    let head = inter.response.as_ref().expect("a response head");
    assert_eq!(head.status, served.status, "interaction {}", inter.id);
    for (k, v) in &served.headers {
        assert_eq!(head.headers.get(k), Some(v.as_str()), "header {k}");
    }
    let end = inter.end.expect("an end line");
    let got: Vec<&[u8]> = inter.chunks.iter().map(|c| c.bytes.as_slice()).collect();
    let want: Vec<&[u8]> = served.chunks.iter().map(|(_, b)| b.as_slice()).collect();
    if end.outcome == EndOutcome::Aborted {
        // The loop stopped mid-stream: what was read is a prefix of what was served.
        assert!(got.len() <= want.len());
        assert_eq!(got, want[..got.len()], "interaction {}", inter.id);
    } else if served.chunked {
        assert_eq!(got, want, "interaction {}: chunks", inter.id);
    } else {
        assert_eq!(
            inter.body(),
            served.body(),
            "interaction {}: body",
            inter.id
        );
    }
    let mut last = head.ms;
    for (i, c) in inter.chunks.iter().enumerate() {
        assert!(c.ms >= last, "interaction {}: ms not monotonic", inter.id);
        if served.chunked {
            assert!(
                c.ms >= served.delay_until(i),
                "interaction {} chunk {i}: ms {} before the served delay {}",
                inter.id,
                c.ms,
                served.delay_until(i)
            );
        }
        last = c.ms;
    }
    assert!(end.ms >= last);
}

fn assert_request_redacted(cassette: &Cassette, auth_header: &str) {
    for inter in &cassette.interactions {
        let h = inter.request.headers.get(auth_header);
        assert!(
            h.is_some_and(|v| v.contains(REDACTED)),
            "{auth_header} is {h:?}"
        );
        let body = inter.request.body.to_string();
        assert!(body.contains(REDACTED), "the body secret was not replaced");
    }
}

/// The SSE events of `body` (split after each blank line), first `n` of them.
fn first_events(body: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mut out = String::new();
    for ev in text.split_inclusive("\n\n").take(n) {
        out.push_str(ev);
    }
    out.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_429_retry_after_then_fanout_doom_loop() {
    let dir = tempfile::tempdir().unwrap();
    let turn1 = "openai-chat/mirascope__parallel_tool_calls.turn1.sse";
    let script = vec![
        Reply::json(
            429,
            r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            &[
                ("retry-after", "1"),
                ("x-ratelimit-remaining-requests", "0"),
            ],
        ),
        Reply::fixture(turn1, 11),
        Reply::fixture(turn1, 12),
        Reply::fixture(turn1, 13),
    ];
    let (live, cassette, script, fake) =
        record_in_process(Api::OpenAiChat, script, dir.path()).await;
    // The key went out, and the live loop made the expected decisions.
    let received = fake.received();
    assert_eq!(received.len(), 4);
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(received[0].target, "/v1/chat/completions");
    fake.stop().await;
    assert_eq!(live.termination.unwrap().as_str(), "doom-loop");
    assert_eq!(live.retries.len(), 1);
    assert_eq!(live.retries[0].status, Some(429));
    assert_eq!(live.retries[0].delay_ms, 1000, "retry-after: 1 honoured");

    assert!(cassette.footer.is_some() && !cassette.is_truncated());
    assert_eq!(cassette.interactions.len(), 4);
    for (inter, served) in cassette.interactions.iter().zip(&script) {
        assert_faithful(inter, served);
    }
    let first = &cassette.interactions[0];
    assert_eq!(
        (first.step, first.attempt, cassette.interactions[1].attempt),
        (1, 1, 2)
    );
    assert_eq!(first.body(), script[0].body(), "the 429 body");
    assert_eq!(first.end.unwrap().outcome, EndOutcome::Complete);
    assert!(!cassette.tools.is_empty(), "tool lines recorded");
    assert_request_redacted(&cassette, "authorization");

    let replayed = replay(dir.path(), &cassette);
    assert_same_verdict(&live, &replayed);
    assert_eq!(
        replayed
            .doom_loop
            .as_ref()
            .map(|d| (d.step, d.detector.as_str())),
        Some((3, "fanout:3"))
    );
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_overloaded_midstream_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    let turn1 = support_fake::stream("anthropic/mirascope__parallel_tool_use.turn1.sse");
    let mut partial = first_events(&turn1, 6);
    partial.extend_from_slice(
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let script = vec![
        Reply::sse(partial, 21),
        Reply::sse(turn1, 22),
        Reply::fixture("anthropic/mirascope__parallel_tool_use.turn2.sse", 23),
    ];
    let (live, cassette, script, fake) =
        record_in_process(Api::Anthropic, script, dir.path()).await;
    let received = fake.received();
    assert_eq!(received[0].header("x-api-key"), Some(API_KEY));
    assert_eq!(received[0].target, "/v1/messages");
    fake.stop().await;
    assert_eq!(live.termination.unwrap().as_str(), "completed");
    assert_eq!(live.retries.len(), 1);
    assert_eq!(live.retries[0].status, None, "an in-stream error");
    assert_eq!(cassette.interactions.len(), 3);
    for (inter, served) in cassette.interactions.iter().zip(&script) {
        assert_faithful(inter, served);
    }
    assert_request_redacted(&cassette, "x-api-key");
    assert_same_verdict(&live, &replay(dir.path(), &cassette));
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_429_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    let script = vec![
        Reply::json(
            429,
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
            &[("retry-after", "1")],
        ),
        Reply::fixture("gemini/mirascope__parallel_function_calls.turn1.sse", 31),
        Reply::fixture("gemini/mirascope__parallel_function_calls.turn2.sse", 32),
    ];
    let (live, cassette, script, fake) = record_in_process(Api::Gemini, script, dir.path()).await;
    let received = fake.received();
    assert_eq!(received[0].header("x-goog-api-key"), Some(API_KEY));
    assert!(received[0]
        .target
        .contains(":streamGenerateContent?alt=sse"));
    fake.stop().await;
    assert_eq!(live.termination.unwrap().as_str(), "completed");
    assert_eq!(live.retries.len(), 1);
    assert_eq!(cassette.interactions.len(), 3);
    for (inter, served) in cassette.interactions.iter().zip(&script) {
        assert_faithful(inter, served);
    }
    assert_request_redacted(&cassette, "x-goog-api-key");
    assert_same_verdict(&live, &replay(dir.path(), &cassette));
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_responses_reset_midstream_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    let turn1 = support_fake::stream("openai-responses/mirascope__parallel_function_calls.sse");
    // The connection drops after five whole events. (A drop inside a `data:` line is recorded
    // just as faithfully, but the adapter then reports the truncated payload as a
    // non-retryable protocol error instead of the reset; see the report.)
    let script = vec![
        Reply::sse(first_events(&turn1, 5), 41).cut(usize::MAX, Ending::Reset),
        Reply::sse(turn1, 42),
        Reply::fixture("openai-responses/pydantic-ai__function_call.turn2.sse", 43),
    ];
    let (live, cassette, script, fake) =
        record_in_process(Api::OpenAiResponses, script, dir.path()).await;
    assert_eq!(fake.received()[0].target, "/v1/responses");
    fake.stop().await;
    assert_eq!(live.termination.unwrap().as_str(), "completed");
    assert_eq!(live.retries.len(), 1);
    let reset = &cassette.interactions[0];
    assert_eq!(reset.end.unwrap().outcome, EndOutcome::Reset);
    assert_eq!(
        reset.body(),
        script[0].body(),
        "the bytes before the reset are kept"
    );
    for (inter, served) in cassette.interactions.iter().zip(&script) {
        assert_faithful(inter, served);
    }
    assert_same_verdict(&live, &replay(dir.path(), &cassette));
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_error_is_recorded_with_status_headers_and_body() {
    let dir = tempfile::tempdir().unwrap();
    let body = String::from_utf8(support_fake::stream(
        "http-errors/openai_chat__401_stream_request.json",
    ))
    .unwrap();
    let script = vec![Reply::json(401, &body, &[("x-request-id", "req_401")])];
    let (live, cassette, script, fake) =
        record_in_process(Api::OpenAiChat, script, dir.path()).await;
    fake.stop().await;
    assert_eq!(live.termination.unwrap().as_str(), "provider-error");
    assert_eq!(cassette.interactions.len(), 1);
    let inter = &cassette.interactions[0];
    assert_faithful(inter, &script[0]);
    let head = inter.response.as_ref().unwrap();
    assert_eq!(head.status, 401);
    assert_eq!(head.headers.get("x-request-id"), Some("req_401"));
    assert_eq!(
        head.headers.get("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(inter.body(), body.as_bytes());
    assert_same_verdict(&live, &replay(dir.path(), &cassette));
    assert_no_secrets(dir.path());
}

// ---- the binary -------------------------------------------------------------------------

fn cli(dir: &Path, fake: &FakeProvider, extra: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.current_dir(dir)
        .arg("record")
        .arg("secrets.toml")
        .args(["--base-url", &fake.url(), "--api-key-env", KEY_VAR])
        .args(["-o", "secrets.jsonl"])
        .args(extra)
        .env(KEY_VAR, API_KEY)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn run_cli(dir: &Path, fake: &FakeProvider, extra: &[&str]) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cli(dir, fake, extra).output())
        .await
        .expect("the recorder finishes")
        .expect("the recorder runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chat_script(seed: u64) -> Vec<Reply> {
    vec![
        Reply::json(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
            &[("retry-after", "1")],
        ),
        Reply::fixture("openai-chat/mirascope__parallel_tool_calls.turn1.sse", seed),
        Reply::fixture(
            "openai-chat/mirascope__parallel_tool_calls.turn2.sse",
            seed + 1,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_modes_once_all_new() {
    let dir = tempfile::tempdir().unwrap();
    write_scenario(dir.path(), Api::OpenAiChat);
    let out = dir.path().join("secrets.jsonl");

    // First recording, default mode `once`.
    let fake = FakeProvider::start(chat_script(51)).await;
    let (code, stderr) = run_cli(dir.path(), &fake, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("step 1: request"),
        "progress on stderr: {stderr}"
    );
    assert!(stderr.contains("429"), "{stderr}");
    assert_eq!(fake.remaining(), 0);
    fake.stop().await;
    let first = std::fs::read(&out).unwrap();
    let c = Cassette::load(&out).unwrap();
    assert_eq!(c.interactions.len(), 3);
    assert!(c.footer.is_some());

    // `once` refuses to overwrite; the file is untouched and nothing is sent.
    let fake = FakeProvider::start(chat_script(52)).await;
    let (code, stderr) = run_cli(dir.path(), &fake, &[]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the cassette exists") && stderr.contains("--mode all"),
        "{stderr}"
    );
    assert!(fake.received().is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), first);

    // `all` re-records from scratch.
    let (code, stderr) = run_cli(dir.path(), &fake, &["--mode", "all"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.received().len(), 3);
    fake.stop().await;
    let c = Cassette::load(&out).unwrap();
    assert_eq!(c.interactions.len(), 3);
    assert_ne!(
        std::fs::read(&out).unwrap(),
        first,
        "new chunking, new bytes"
    );

    // `new`: cut the cassette after interaction 2 (as a crash would), then only the missing
    // third request goes to the provider; the old two are replayed from the file.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut kept = String::new();
    for line in text.lines() {
        kept.push_str(line);
        kept.push('\n');
        if line.starts_with(r#"{"kind":"end","id":2,"#) {
            break;
        }
    }
    std::fs::write(&out, &kept).unwrap();
    let cut = Cassette::load(&out).unwrap();
    assert!(cut.is_truncated());
    assert_eq!(cut.interactions.len(), 2);

    let fake = FakeProvider::start(chat_script(53).split_off(2)).await;
    let (code, stderr) = run_cli(dir.path(), &fake, &["--mode", "new"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.received().len(), 1, "only the missing request is sent");
    fake.stop().await;
    let c = Cassette::load(&out).unwrap();
    assert!(c.footer.is_some() && !c.is_truncated());
    assert_eq!(c.interactions.len(), 3);
    assert_eq!(c.interactions[0].body(), cut.interactions[0].body());
    assert_eq!(c.interactions[1].body(), cut.interactions[1].body());
    assert!(!dir.path().join("secrets.jsonl.partial").exists());
    let rec = replay(dir.path(), &c);
    assert_eq!(rec.finish.as_str(), "completed");
    assert_eq!((rec.steps, rec.tool_calls, rec.retries.len()), (2, 2, 1));
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_read_timeout_is_recorded_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    write_scenario(dir.path(), Api::OpenAiChat);
    let mut script = chat_script(61);
    let turn1 = support_fake::stream("openai-chat/mirascope__parallel_tool_calls.turn1.sse");
    script[0] = Reply::sse(first_events(&turn1, 3), 60).cut(usize::MAX, Ending::Stall);
    let stalled = script[0].body();
    let fake = FakeProvider::start(script).await;
    let (code, stderr) = run_cli(dir.path(), &fake, &["--read-timeout", "1"]).await;
    fake.stop().await;
    assert_eq!(code, 0, "{stderr}");
    let c = Cassette::load(dir.path().join("secrets.jsonl")).unwrap();
    let first = &c.interactions[0];
    assert_eq!(first.end.unwrap().outcome, EndOutcome::Timeout);
    assert_eq!(first.body(), stalled);
    assert!(
        first.end.unwrap().ms >= 1000,
        "timed out after the read timeout"
    );
    let rec = replay(dir.path(), &c);
    assert_eq!(rec.finish.as_str(), "completed");
    assert_eq!(rec.retries.len(), 1);
    assert_eq!(rec.retries[0].status, None);
    assert_no_secrets(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_leaves_a_readable_truncated_cassette() {
    let dir = tempfile::tempdir().unwrap();
    write_scenario(dir.path(), Api::OpenAiChat);
    let mut script = chat_script(71);
    script[2] = script[2].clone().cut(3, Ending::Stall);
    let fake = FakeProvider::start(script).await;
    let mut child = cli(dir.path(), &fake, &[]).spawn().expect("spawn");
    let out = dir.path().join("secrets.jsonl");
    // Wait (bounded) until the third interaction's chunks are on disk.
    let mut seen = false;
    for _ in 0..300 {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.matches(r#"{"kind":"chunk","id":3,"#).count() >= 3 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the recorder reached the stalled stream");
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait().await;
    fake.stop().await;

    let c = Cassette::load(&out).expect("a killed recording still reads");
    assert!(c.footer.is_none());
    let t = c.truncation.as_ref().expect("truncated");
    assert_eq!(t.dropped, vec![3]);
    assert_eq!(c.interactions.len(), 2);
    assert_eq!(c.interactions[0].response.as_ref().unwrap().status, 429);
    assert_eq!(c.interactions[1].end.unwrap().outcome, EndOutcome::Complete);
    let rec = replay(dir.path(), &c);
    assert!(rec.truncated);
    assert_eq!(rec.finish.as_str(), "cassette-exhausted");
    // Step 2 never started: its request found the cassette exhausted.
    assert_eq!((rec.steps, rec.tool_calls, rec.retries.len()), (1, 2, 1));
    assert_no_secrets(dir.path());
}

/// Issue 16: a response sent with `content-encoding` (gzip, zstd) is stored decoded, with its
/// secrets redacted and the encoding kept as `x-tapeloop-original-content-encoding`, and the
/// cassette replays to the live verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_responses_are_stored_decoded_redacted_and_replay() {
    // Gemini, zstd: a tool-call turn, then the final turn, each in several encoded reads.
    let dir = tempfile::tempdir().unwrap();
    let plain = [
        Reply::fixture("gemini/mirascope__parallel_function_calls.turn1.sse", 51),
        Reply::fixture("gemini/mirascope__parallel_function_calls.turn2.sse", 52),
    ];
    let script: Vec<Reply> = plain.iter().map(|r| r.clone().encoded("zstd", 3)).collect();
    let (live, cassette, _, fake) = record_in_process(Api::Gemini, script, dir.path()).await;
    fake.stop().await;
    assert_eq!(live.termination.unwrap().as_str(), "completed");
    assert_eq!(cassette.interactions.len(), 2);
    for (inter, served) in cassette.interactions.iter().zip(&plain) {
        assert_eq!(inter.body(), served.body(), "stored decoded");
        let head = inter.response.as_ref().unwrap();
        assert_eq!(head.headers.get("content-encoding"), None);
        assert_eq!(
            head.headers.get("x-tapeloop-original-content-encoding"),
            Some("zstd")
        );
    }
    assert_same_verdict(&live, &replay(dir.path(), &cassette));
    assert_no_secrets(dir.path());

    // OpenAI chat, gzip: the streamed text carries the API key and a key-shaped secret.
    let dir = tempfile::tempdir().unwrap();
    let event = |delta: serde_json::Value, finish: serde_json::Value| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let text = format!("keys {API_KEY} and {BODY_SECRET}.");
    let body = event(
        serde_json::json!({"role": "assistant", "content": text}),
        serde_json::Value::Null,
    ) + &event(serde_json::json!({}), serde_json::json!("stop"))
        + "data: [DONE]\n\n";
    let script = vec![Reply::sse(body.clone().into_bytes(), 53).encoded("gzip", 4)];
    let (live, cassette, _, fake) = record_in_process(Api::OpenAiChat, script, dir.path()).await;
    fake.stop().await;
    let stored = String::from_utf8(cassette.interactions[0].body()).unwrap();
    assert_eq!(
        stored,
        body.replace(API_KEY, REDACTED)
            .replace(BODY_SECRET, REDACTED)
    );
    assert_same_verdict(&live, &replay(dir.path(), &cassette));
    assert_no_secrets(dir.path());
}
