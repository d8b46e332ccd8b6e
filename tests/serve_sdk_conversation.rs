//! The official Python SDKs (`openai`, `anthropic`, `google-genai`) against `tapeloop serve`
//! matching by conversation, with no session header: every step of bundled cassettes for all
//! four wire APIs; three conversations of one model served from one directory, each client
//! concurrently getting its own; two identical clients at once; reset and a second run; and a
//! replayed 429 whose `retry-after: 7` is scaled so the SDK's retry arrives at once; and the
//! SDKs' non-streaming calls answered with JSON assembled from the recorded streams.
//!
//! Needs `TAPELOOP_TEST_PYTHON` (skipped with a note when unset, failing when `CI` is set).

mod serve_support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tapeloop::cassette::Cassette;
use tapeloop::net::serve::{Pace, ServeOptions, ServeSummary, ServerHandle};

use serve_support::*;

fn model_of(c: &Cassette) -> String {
    c.header
        .model
        .clone()
        .expect("corpus cassettes name their model")
}

/// Start a server on `paths` and return it with a runtime that keeps it alive.
fn serve(paths: &[PathBuf], opts: ServeOptions) -> (tokio::runtime::Runtime, ServerHandle) {
    let rt = runtime();
    let server = rt.block_on(start(paths, opts));
    (rt, server)
}

/// Run the SDK client of `cassette` against `addr` to completion.
fn drive(
    py: &Path,
    addr: std::net::SocketAddr,
    cassette: &Cassette,
    dir: &Path,
    tag: &str,
) -> Value {
    let calls = calls_file(dir, &format!("{tag}.json"), cassette);
    sdk_output(sdk_command(
        py,
        cassette.header.api,
        &format!("http://{addr}"),
        &calls,
        &model_of(cassette),
    ))
}

/// Which cassette each session was served from, by the request log.
fn cassettes_by_session(log: &[Value]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for l in log {
        if let (Some(s), Some(c)) = (l["session"].as_str(), l["cassette"].as_str()) {
            out.entry(s.to_string()).or_default().push(c.to_string());
        }
    }
    out
}

/// One bundled cassette per SDK and feature (tools, reasoning), all four wire APIs.
const EVERY_API: [&str; 7] = [
    "call-with-tools.openai-chat.jsonl",
    "reasoning-deepseek.openai-chat.jsonl",
    "call-with-tools.openai-responses.jsonl",
    "call-with-tools.anthropic.jsonl",
    "reasoning-thinking.anthropic.jsonl",
    "text-repeat.gemini.jsonl",
    "reasoning-thoughts.gemini.jsonl",
];

/// Serve every [`EVERY_API`] cassette from one server and drive each through its SDK
/// (streaming, or the non-streaming calls), checking every step; then the request log and the
/// shutdown summary.
fn drive_every_api(py: &Path, no_stream: bool) -> (Vec<Value>, ServeSummary) {
    let paths: Vec<PathBuf> = EVERY_API.iter().map(|n| corpus(n)).collect();
    let (rt, server) = serve(
        &paths,
        options_matching(Pace::Instant, ServeMatch::Conversation),
    );
    let dir = tempfile::tempdir().unwrap();
    for (n, path) in paths.iter().enumerate() {
        let cassette = load(path);
        let calls = calls_file(dir.path(), &format!("{n}.json"), &cassette);
        let mut cmd = sdk_command(
            py,
            cassette.header.api,
            &format!("http://{}", server.addr()),
            &calls,
            &model_of(&cassette),
        );
        if no_stream {
            cmd.arg("--no-stream");
        }
        assert_calls_match(&sdk_output(cmd), &cassette);
    }
    let log = rt.block_on(request_log(server.addr()));
    let summary = rt.block_on(server.shutdown());
    for c in &summary.cassettes {
        assert!(c.unused.is_empty(), "{} left {:?} unused", c.path, c.unused);
    }
    assert!(summary.divergences.is_empty(), "{:?}", summary.divergences);
    (log, summary)
}

#[test]
fn every_sdk_drives_every_step_of_a_bundled_cassette_for_all_four_apis() {
    let Some(py) = python() else { return };
    // All of them from one server: conversation matching finds each one's cassette.
    let (log, _) = drive_every_api(&py, false);
    assert!(
        log.iter()
            .all(|l| l["status"] == 200 && l["outcome"] == "complete" && l["reply"] == "recorded"),
        "{log:?}"
    );
    let sessions = cassettes_by_session(&log);
    assert_eq!(
        sessions.len(),
        EVERY_API.len(),
        "one session per client: {sessions:?}"
    );
    for served in sessions.values() {
        assert!(
            served.iter().all(|c| c == &served[0]),
            "one cassette per session: {served:?}"
        );
    }
}

#[test]
fn every_sdk_non_streaming_gets_json_assembled_from_the_recorded_streams() {
    let Some(py) = python() else { return };
    let (log, _) = drive_every_api(&py, true);
    assert!(
        log.iter()
            .all(|l| l["status"] == 200 && l["reply"] == "json-from-stream"),
        "{log:?}"
    );
}

#[test]
fn three_conversations_of_one_model_in_a_directory_each_get_their_own_answers_concurrently() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("recordings");
    std::fs::create_dir(&served).unwrap();
    let names = [
        "call-with-tools.openai-chat.jsonl",
        "complex-agent-run.openai-chat.jsonl",
        "finish-length.openai-chat.jsonl",
    ];
    let mut paths = Vec::new();
    for n in names {
        let p = served.join(n);
        std::fs::copy(corpus(n), &p).unwrap();
        paths.push(p);
    }
    let cassettes: Vec<Cassette> = paths.iter().map(|p| load(p)).collect();
    let models: Vec<String> = cassettes.iter().map(model_of).collect();
    assert!(
        models.iter().all(|m| m == &models[0]),
        "same model: {models:?}"
    );
    let (rt, server) = serve(
        &paths,
        options_matching(Pace::Instant, ServeMatch::Conversation),
    );
    let addr = server.addr();
    let children: Vec<_> = cassettes
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let calls = calls_file(dir.path(), &format!("{n}.json"), c);
            sdk_command(
                &py,
                c.header.api,
                &format!("http://{addr}"),
                &calls,
                &models[0],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn SDK client")
        })
        .collect();
    for (child, cassette) in children.into_iter().zip(&cassettes) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_calls_match(&v, cassette);
    }
    let log = rt.block_on(request_log(addr));
    let sessions = cassettes_by_session(&log);
    assert_eq!(sessions.len(), 3, "one session per client: {sessions:?}");
    for served in sessions.values() {
        assert!(served.iter().all(|c| c == &served[0]), "{served:?}");
    }
    // Every recorded interaction was served exactly once, each from its own conversation.
    assert!(log.iter().all(|l| l["status"] == 200), "{log:?}");
    let mut served: Vec<(String, u64)> = log
        .iter()
        .map(|l| {
            (
                l["cassette"].as_str().unwrap().to_string(),
                l["interaction"].as_u64().unwrap(),
            )
        })
        .collect();
    served.sort();
    served.dedup();
    let total: usize = cassettes.iter().map(|c| c.interactions.len()).sum();
    assert_eq!((served.len(), log.len()), (total, total), "{log:?}");
    let summary = rt.block_on(server.shutdown());
    assert!(
        summary.cassettes.iter().all(|c| c.unused.is_empty()),
        "{summary:?}"
    );
}

#[test]
fn two_identical_clients_at_once_each_get_a_complete_replay() {
    let Some(py) = python() else { return };
    let path = corpus("doom-fanout.openai-chat.jsonl");
    let cassette = load(&path);
    assert!(cassette.interactions.len() >= 3);
    let (rt, server) = serve(
        std::slice::from_ref(&path),
        options_matching(Pace::Instant, ServeMatch::Conversation),
    );
    let dir = tempfile::tempdir().unwrap();
    let calls = calls_file(dir.path(), "calls.json", &cassette);
    let addr = server.addr();
    let children: Vec<_> = (0..2)
        .map(|_| {
            sdk_command(
                &py,
                cassette.header.api,
                &format!("http://{addr}"),
                &calls,
                &model_of(&cassette),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_calls_match(&serde_json::from_slice(&out.stdout).unwrap(), &cassette);
    }
    let st = rt.block_on(status(addr));
    let sessions = st["sessions"].as_object().unwrap();
    assert_eq!(sessions.len(), 2, "{st}");
    let ids: Vec<u64> = cassette.interactions.iter().map(|i| i.id).collect();
    for key in sessions.keys() {
        assert_eq!(session_ids(&st, key), ids, "{st}");
    }
    rt.block_on(server.shutdown());
}

#[test]
fn reset_rewinds_sessions_for_a_second_full_run() {
    let Some(py) = python() else { return };
    let path = corpus("call-with-tools.anthropic.jsonl");
    let cassette = load(&path);
    // In recorded order (sequence) a second run needs the reset: without it, exhausted.
    let (rt, server) = serve(
        std::slice::from_ref(&path),
        options_matching(Pace::Instant, ServeMatch::Sequence),
    );
    let addr = server.addr();
    let dir = tempfile::tempdir().unwrap();
    let first = drive(&py, addr, &cassette, dir.path(), "first");
    assert_calls_match(&first, &cassette);
    let calls = calls_file(dir.path(), "again.json", &cassette);
    let again = sdk_output(sdk_command(
        &py,
        cassette.header.api,
        &format!("http://{addr}"),
        &calls,
        &model_of(&cassette),
    ));
    let err = again["calls"][0]["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(err.contains("tapeloop_cassette_exhausted"), "{again}");
    let r = rt.block_on(async {
        client()
            .post(url(addr, "/_tapeloop/reset"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    assert_eq!(r["reset"], 1, "{r}");
    let second = drive(&py, addr, &cassette, dir.path(), "second");
    assert_calls_match(&second, &cassette);
    let log = rt.block_on(request_log(addr));
    let played: Vec<u64> = log
        .iter()
        .filter(|l| l["status"] == 200)
        .map(|l| l["interaction"].as_u64().unwrap())
        .collect();
    assert_eq!(played, [1, 2, 1, 2], "{log:?}");
    rt.block_on(server.shutdown());
}

#[test]
fn a_scaled_retry_after_makes_the_sdk_retry_at_once_and_the_log_keeps_the_recorded_wait() {
    let Some(py) = python() else { return };
    let path = corpus("retry-429.openai-chat.jsonl");
    let cassette = load(&path);
    let head = cassette.interactions[0].response.as_ref().unwrap();
    assert_eq!(
        (head.status, head.headers.get("retry-after")),
        (429, Some("7"))
    );
    let opts = ServeOptions {
        retry_after_scale: Some(0.01),
        ..options_matching(Pace::Instant, ServeMatch::Conversation)
    };
    let (rt, server) = serve(std::slice::from_ref(&path), opts);
    let dir = tempfile::tempdir().unwrap();
    let out = drive(&py, server.addr(), &cassette, dir.path(), "retry");
    assert_calls_match(&out, &cassette);
    assert_eq!(
        out["calls"][0]["errors"],
        serde_json::json!([]),
        "the SDK retried itself"
    );
    let log = rt.block_on(request_log(server.addr()));
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0]["status"], 429);
    assert_eq!(log[0]["retry_after"][0]["field"], "retry-after");
    assert_eq!(log[0]["retry_after"][0]["recorded"], "7");
    assert_eq!(log[0]["retry_after"][0]["served"], "0.07");
    assert_eq!(log[1]["result"], "retry", "{log:?}");
    let gap = log[1]["ms"].as_u64().unwrap() - log[0]["ms"].as_u64().unwrap();
    assert!(
        gap < 1000,
        "the SDK's retry came {gap} ms after the 429 (recorded wait 7 s)"
    );
    rt.block_on(server.shutdown());
}
