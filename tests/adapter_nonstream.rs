//! Non-stream (JSON) replies: decoding them, assembling them from a stream's events, and
//! streaming them back, checked on every real stream fixture, every bundled recording and the
//! real JSON replies inside the vendored vcrpy cassettes.
//!
//! The round-trip properties compare events after `coalesce` (a JSON body carries each text
//! whole, not its chunk boundaries) and without `tool-input-delta` events (Anthropic and
//! Gemini JSON carry tool arguments as objects, not as the streamed text; the `tool-call`
//! input, which is compared, holds the same arguments). Two more things a JSON body cannot
//! carry are left out: the metadata of `reasoning-start` (a Responses stream announces an
//! item with an earlier `encrypted_content` than the final one; `reasoning-end` has the
//! final, and is compared), and where a block closes relative to later blocks (OpenRouter's
//! Responses stream closes its reasoning item only at the end): each `*-end` is compared
//! right after its block's last delta.

mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tapeloop::cassette::import::import_file;
use tapeloop::cassette::Cassette;
use tapeloop::event::{EndOutcome, ErrorClass, FinishReason, StreamEvent, ToolCall, Usage};
use tapeloop::http::Headers;
use tapeloop::provider::reply::coalesce;
use tapeloop::provider::{
    assemble_json, decode_ndjson, decode_response, stream_from_events, wire, Api,
};

const STREAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams"
);
const RECORDINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings");

fn find(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            find(&p, keep, out);
        } else if keep(&p) {
            out.push(p);
        }
    }
    out.sort();
}

fn headers(content_type: &str) -> Headers {
    let mut h = Headers::new();
    h.insert("content-type", content_type);
    h
}

fn decode_json(api: Api, body: &Value) -> Vec<StreamEvent> {
    decode_response(
        api,
        200,
        &headers("application/json"),
        [body.to_string().as_bytes()],
        EndOutcome::Complete,
    )
}

fn decode_sse(api: Api, chunks: &[bytes::Bytes]) -> Vec<StreamEvent> {
    decode_response(
        api,
        200,
        &headers("text/event-stream"),
        chunks.iter().map(|c| c.as_ref()),
        EndOutcome::Complete,
    )
}

fn comparable(events: &[StreamEvent]) -> Vec<StreamEvent> {
    let mut out: Vec<StreamEvent> = Vec::new();
    for ev in coalesce(events) {
        match ev {
            StreamEvent::ToolInputDelta { .. } => {}
            StreamEvent::ReasoningStart { id, .. } => {
                out.push(StreamEvent::ReasoningStart { id, metadata: None })
            }
            StreamEvent::TextEnd { ref id } => {
                let at = out.iter().rposition(|e| {
                    matches!(e, StreamEvent::TextStart { id: i } | StreamEvent::TextDelta { id: i, .. } if i == id)
                });
                out.insert(at.map_or(out.len(), |a| a + 1), ev);
            }
            StreamEvent::ReasoningEnd { ref id, .. } => {
                let at = out.iter().rposition(|e| {
                    matches!(e, StreamEvent::ReasoningStart { id: i, .. } | StreamEvent::ReasoningDelta { id: i, .. } if i == id)
                });
                out.insert(at.map_or(out.len(), |a| a + 1), ev);
            }
            other => out.push(other),
        }
    }
    out
}

/// decode(stream) == decode(assemble_json(decode(stream))) == decode(stream_from_events(...)).
/// Returns false (nothing checked) for a response that did not finish cleanly.
fn round_trip(api: Api, label: &str, events: &[StreamEvent]) -> bool {
    let finished = events
        .iter()
        .any(|e| matches!(e, StreamEvent::FinishStep { .. }));
    if !finished || events.iter().any(|e| matches!(e, StreamEvent::Error(_))) {
        return false;
    }
    let want = comparable(events);
    let body = assemble_json(api, "model-x", events);
    assert_eq!(
        comparable(&decode_json(api, &body)),
        want,
        "{label}: decode(assemble_json) differs; body: {body}"
    );
    let chunks = stream_from_events(api, "model-x", events);
    assert!(chunks.iter().all(|c| c.ends_with(b"\n\n")), "{label}");
    assert_eq!(
        comparable(&decode_sse(api, &chunks)),
        want,
        "{label}: decode(stream_from_events) differs"
    );
    // A JSON recording streamed back decodes to the JSON's own events.
    let from_json = decode_json(api, &body);
    assert_eq!(
        comparable(&decode_sse(api, &stream_from_events(api, "m", &from_json))),
        comparable(&from_json),
        "{label}: streaming a JSON reply differs"
    );
    true
}

fn fixture_api(path: &Path, bytes: &[u8]) -> Api {
    let dir = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    match dir {
        "anthropic" => Api::Anthropic,
        "gemini" => Api::Gemini,
        "openai-chat" => Api::OpenAiChat,
        "openai-responses" => Api::OpenAiResponses,
        _ => wire::sniff(bytes).unwrap_or_else(|| panic!("{}: no api", path.display())),
    }
}

#[test]
fn every_real_stream_fixture_round_trips_through_json_and_sse() {
    let mut files = Vec::new();
    let keep = |p: &Path| {
        let name = p.to_string_lossy();
        !name.contains("/cassettes/")
            && !name.contains("/http-errors/")
            && (name.ends_with(".sse") || name.ends_with(".json") || name.ends_with(".chunks.txt"))
    };
    find(Path::new(STREAMS), &keep, &mut files);
    assert!(files.len() > 50, "only {} fixtures", files.len());
    let mut checked = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let api = fixture_api(path, &bytes);
        let events = if path.to_string_lossy().ends_with(".chunks.txt") {
            decode_ndjson(api, &String::from_utf8_lossy(&bytes))
        } else {
            decode_response(
                api,
                200,
                &Headers::new(),
                [&bytes[..]],
                EndOutcome::Complete,
            )
        };
        if round_trip(api, &path.display().to_string(), &events) {
            checked += 1;
        }
    }
    assert!(checked > 45, "only {checked} fixtures finished cleanly");
}

#[test]
fn every_bundled_recording_round_trips_through_json_and_sse() {
    let mut files = Vec::new();
    find(
        Path::new(RECORDINGS),
        &|p| p.extension().is_some_and(|e| e == "jsonl"),
        &mut files,
    );
    assert!(files.len() > 20, "only {} recordings", files.len());
    let mut checked = 0;
    for path in &files {
        let c = Cassette::load(path).unwrap_or_else(|e| panic!("{e}"));
        for inter in &c.interactions {
            let ok = inter
                .response
                .as_ref()
                .is_some_and(|r| (200..300).contains(&r.status));
            if ok
                && round_trip(
                    c.header.api,
                    &format!("{} interaction {}", path.display(), inter.id),
                    &inter.decode(c.header.api),
                )
            {
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} interactions checked");
}

/// The vcrpy cassettes' 2xx JSON replies, with the API of their cassette.
fn vcrpy_json_replies() -> Vec<(String, Api, Value)> {
    let mut files = Vec::new();
    find(
        Path::new(&format!("{STREAMS}/cassettes")),
        &|p| p.extension().is_some_and(|e| e == "yaml"),
        &mut files,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for (n, yaml) in files.iter().enumerate() {
        let jsonl = dir.path().join(format!("{n}.jsonl"));
        import_file(yaml, &jsonl).unwrap();
        let c = Cassette::load(&jsonl).unwrap();
        for inter in &c.interactions {
            let Some(head) = &inter.response else {
                continue;
            };
            let json = head
                .headers
                .get("content-type")
                .is_some_and(|t| t.contains("json"));
            if (200..300).contains(&head.status) && json && inter.request.method == "POST" {
                let body: Value = serde_json::from_slice(&inter.body()).unwrap();
                // Gemini's streamed JSON array is a stream, not a reply.
                if !body.is_object() {
                    continue;
                }
                out.push((
                    format!("{} #{}", yaml.display(), inter.id),
                    c.header.api,
                    body,
                ));
            }
        }
    }
    out
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

/// OpenAI usage (chat or Responses field names): the totals include cached and reasoning
/// tokens, which the normalized split keeps apart.
fn openai_usage(b: &Value, [input, input_details, output, output_details]: [&str; 4]) -> Usage {
    let cached = n(
        b,
        &format!("/usage/{input_details}_tokens_details/cached_tokens"),
    );
    let reasoning = n(
        b,
        &format!("/usage/{output_details}_tokens_details/reasoning_tokens"),
    );
    Usage {
        input: n(b, &format!("/usage/{input}")) - cached,
        output: n(b, &format!("/usage/{output}")) - reasoning,
        reasoning,
        cache_read: cached,
        cache_write: 0,
    }
}

/// Usage and raw finish reason as the JSON states them, read by JSON pointer.
fn stated(api: Api, b: &Value) -> (Usage, String) {
    match api {
        Api::Gemini => {
            let cached = n(b, "/usageMetadata/cachedContentTokenCount");
            (
                Usage {
                    input: n(b, "/usageMetadata/promptTokenCount") - cached
                        + n(b, "/usageMetadata/toolUsePromptTokenCount"),
                    output: n(b, "/usageMetadata/candidatesTokenCount"),
                    reasoning: n(b, "/usageMetadata/thoughtsTokenCount"),
                    cache_read: cached,
                    cache_write: 0,
                },
                b["candidates"][0]["finishReason"]
                    .as_str()
                    .unwrap_or("<none>")
                    .into(),
            )
        }
        Api::OpenAiResponses => (
            openai_usage(b, ["input_tokens", "input", "output_tokens", "output"]),
            b["incomplete_details"]["reason"]
                .as_str()
                .or(b["status"].as_str())
                .unwrap_or("<none>")
                .into(),
        ),
        Api::OpenAiChat => (
            openai_usage(
                b,
                ["prompt_tokens", "prompt", "completion_tokens", "completion"],
            ),
            b["choices"][0]["finish_reason"]
                .as_str()
                .unwrap_or("<none>")
                .into(),
        ),
        Api::Anthropic => (
            Usage {
                input: n(b, "/usage/input_tokens"),
                output: n(b, "/usage/output_tokens"),
                reasoning: 0,
                cache_read: n(b, "/usage/cache_read_input_tokens"),
                cache_write: n(b, "/usage/cache_creation_input_tokens"),
            },
            b["stop_reason"].as_str().unwrap_or("<none>").into(),
        ),
    }
}

#[test]
fn vcrpy_json_replies_decode_to_the_usage_and_finish_their_json_states() {
    let replies = vcrpy_json_replies();
    assert!(replies.len() >= 2, "{} JSON replies", replies.len());
    let apis: std::collections::HashSet<Api> = replies.iter().map(|r| r.1).collect();
    assert!(apis.contains(&Api::Gemini) && apis.contains(&Api::OpenAiResponses));
    for (label, api, body) in &replies {
        let events = decode_json(*api, body);
        let (usage, raw) = stated(*api, body);
        let Some(StreamEvent::FinishStep {
            usage: got,
            raw_finish_reason,
            finish_reason,
        }) = events.last()
        else {
            panic!("{label}: no finish-step last: {events:?}");
        };
        assert_eq!(*got, usage, "{label}");
        assert_eq!(raw_finish_reason.as_deref(), Some(raw.as_str()), "{label}");
        assert_ne!(*finish_reason, FinishReason::Unknown, "{label}");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, StreamEvent::TextDelta { text, .. } if !text.is_empty())),
            "{label}: no text"
        );
        // The same reply without a content type is recognised by sniffing.
        let sniffed = decode_response(
            *api,
            200,
            &Headers::new(),
            [body.to_string().as_bytes()],
            EndOutcome::Complete,
        );
        assert_eq!(sniffed, events, "{label}");
    }
}

#[test]
fn hostile_json_replies_give_a_classified_error_never_a_panic() {
    let deep = format!(
        "{}{}",
        "{\"a\":".repeat(5000),
        "1".to_string() + &"}".repeat(5000)
    );
    let huge_num = r#"{"choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e999}}"#;
    let cases: Vec<(Api, String, ErrorClass)> = vec![
        (Api::OpenAiChat, "{\"choices\":[{\"mess".into(), ErrorClass::Protocol),
        (Api::Anthropic, "{\"content\": [1, 2".into(), ErrorClass::Protocol),
        (Api::Gemini, deep.clone(), ErrorClass::Protocol),
        (Api::OpenAiResponses, deep, ErrorClass::Protocol),
        (Api::OpenAiChat, huge_num.into(), ErrorClass::Protocol),
        (Api::OpenAiChat, r#"{"choices":{"a":1}}"#.into(), ErrorClass::Protocol),
        (Api::OpenAiChat, r#"{"choices":[{"message":{"content":7}}]}"#.into(), ErrorClass::Protocol),
        (Api::OpenAiChat, r#"{"choices":[{"message":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}"#.into(), ErrorClass::Protocol),
        (Api::Anthropic, r#"{"content":"text"}"#.into(), ErrorClass::Protocol),
        (Api::Anthropic, r#"{"content":[],"usage":{"input_tokens":"many"}}"#.into(), ErrorClass::Protocol),
        (Api::Anthropic, r#"{"content":[7]}"#.into(), ErrorClass::Protocol),
        (Api::OpenAiResponses, r#"{"output":{}}"#.into(), ErrorClass::Protocol),
        (Api::OpenAiResponses, r#"{"output":[null]}"#.into(), ErrorClass::Protocol),
        (Api::Gemini, r#"{"candidates":"x"}"#.into(), ErrorClass::Protocol),
        (Api::Gemini, r#"{"candidates":[{"content":{"parts":[{"text":5}]}}]}"#.into(), ErrorClass::Protocol),
        (Api::Gemini, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\u{0}\"}]}}]}x".into(), ErrorClass::Protocol),
        (Api::OpenAiResponses, r#"{"object":"response","output":[],"status":"failed","error":{"code":"server_error","message":"boom"}}"#.into(), ErrorClass::Server),
        (Api::OpenAiChat, r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#.into(), ErrorClass::RateLimited),
        (Api::Anthropic, r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#.into(), ErrorClass::Overloaded),
    ];
    for api in Api::ALL {
        for body in [
            "{}",
            "{\"x\":1}",
            "{ ",
            "{\"a\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}",
        ] {
            let evs = decode_response(
                api,
                200,
                &headers("application/json"),
                [body.as_bytes()],
                EndOutcome::Complete,
            );
            assert!(
                matches!(evs.last(), Some(StreamEvent::Error(_))),
                "{api} {body}: {evs:?}"
            );
        }
    }
    for (api, body, class) in cases {
        let evs = decode_response(
            api,
            200,
            &headers("application/json; charset=utf-8"),
            [body.as_bytes()],
            EndOutcome::Complete,
        );
        let errors: Vec<_> = evs
            .iter()
            .filter(|e| matches!(e, StreamEvent::Error(_)))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "{api} {}: {evs:?}",
            &body[..body.len().min(80)]
        );
        let Some(StreamEvent::Error(e)) = evs.last() else {
            panic!("{api}: error not last: {evs:?}");
        };
        assert_eq!(
            e.class,
            class,
            "{api} {}: {e:?}",
            &body[..body.len().min(80)]
        );
        assert!(!evs
            .iter()
            .any(|e| matches!(e, StreamEvent::FinishStep { .. })));
    }
    // A JSON body cut by a reset is a retryable network error, never a protocol error.
    for api in Api::ALL {
        let evs = decode_response(
            api,
            200,
            &headers("application/json"),
            [&b"{\"choices\":[{\"mes"[..]],
            EndOutcome::Reset,
        );
        let Some(StreamEvent::Error(e)) = evs.last() else {
            panic!("{api}: {evs:?}")
        };
        assert_eq!((e.class, e.retryable), (ErrorClass::Network, true), "{api}");
    }
    // Under text/event-stream a `{` body is never taken for a JSON reply.
    let evs = decode_response(
        Api::OpenAiChat,
        200,
        &headers("text/event-stream"),
        [&b"{\"choices\":[]}"[..]],
        EndOutcome::Complete,
    );
    assert!(
        matches!(evs.last(), Some(StreamEvent::Error(e)) if e.class == ErrorClass::Network),
        "{evs:?}"
    );
}

fn tapeloop(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().expect("not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// `import` then `events` and `run` of the vcrpy cassettes whose JSON replies used to decode as
/// a cut stream: no network error, no retry.
#[test]
fn imported_json_replies_replay_without_network_errors_or_retries() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = [
        ("gemini", "pydantic-ai/tests/models/cassettes/test_google/test_google_model_web_search_tool_stream.yaml"),
        ("openai-responses", "pydantic-ai/tests/models/cassettes/test_openai_responses/test_openai_responses_model_web_search_tool_stream.yaml"),
    ];
    for (api, rel) in cassettes {
        let yaml = format!("{STREAMS}/cassettes/{rel}");
        let out = dir.path().join(format!("{api}.jsonl"));
        let (code, _, err) = tapeloop(&["import", &yaml, "-o", out.to_str().unwrap()], dir.path());
        assert_eq!(code, 0, "{err}");
        let (code, events, err) = tapeloop(&["events", out.to_str().unwrap()], dir.path());
        assert_eq!(code, 0, "{err}");
        assert!(!events.contains("\"type\":\"error\""), "{api}: {events}");
        assert_eq!(
            events.matches("\"type\":\"finish-step\"").count(),
            2,
            "{api}: {events}"
        );
        let c = Cassette::load(&out).unwrap();
        let scenario = dir.path().join(format!("{api}.toml"));
        std::fs::write(
            &scenario,
            format!(
                "name = \"{api}-json\"\napi = \"{api}\"\nmodel = \"{}\"\ncassettes = [\"{api}.jsonl\"]\nprompt = \"What is the weather?\"\n\n[limits]\nmax_steps = 2\n",
                c.header.model.as_deref().unwrap_or("m"),
            ),
        )
        .unwrap();
        let (code, report, err) = tapeloop(
            &[
                "run",
                scenario.to_str().unwrap(),
                "--format",
                "json",
                "--no-progress",
            ],
            dir.path(),
        );
        assert!(code == 0 || code == 1, "{api}: exit {code}: {err}{report}");
        let v: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
        let text = report.to_string();
        assert!(!text.contains("cassette-exhausted"), "{api}: {text}");
        assert!(!text.contains("stream ended before"), "{api}: {text}");
        assert_eq!(v["runs"][0]["finish"], "completed", "{api}: {text}");
        assert_eq!(
            v["runs"][0]["retries"],
            serde_json::json!([]),
            "{api}: {text}"
        );
    }
}

/// What an SDK must read from the assembled body, computed from the events.
fn sdk_expectation(api: Api, events: &[StreamEvent]) -> Option<Value> {
    let mut calls = Vec::new();
    let mut text = String::new();
    let mut finish = None;
    for e in events {
        match e {
            StreamEvent::ToolCall(ToolCall {
                id,
                tool,
                provider_executed: false,
                ..
            }) => calls.push(if api == Api::Gemini { tool } else { id }.clone()),
            StreamEvent::TextDelta { text: t, .. } => text.push_str(t),
            StreamEvent::RefusalDelta { text: t, .. }
                if matches!(api, Api::Anthropic | Api::Gemini) =>
            {
                text.push_str(t)
            }
            StreamEvent::FinishStep {
                raw_finish_reason,
                usage,
                ..
            } => finish = Some((raw_finish_reason.clone()?, usage.total())),
            _ => {}
        }
    }
    let (raw, total) = finish?;
    let finish = match (api, raw.as_str()) {
        (Api::OpenAiResponses, "max_output_tokens" | "content_filter" | "incomplete") => {
            "incomplete".to_string()
        }
        (Api::OpenAiResponses, _) => "completed".to_string(),
        _ => raw,
    };
    Some(serde_json::json!({"calls": calls, "text": text, "finish": finish, "total_tokens": total}))
}

#[test]
fn official_sdks_parse_assembled_bodies_and_built_streams() {
    // Skips with a note without TAPELOOP_TEST_PYTHON; fails when CI is set.
    let Some(python) = serve_support::python() else {
        return;
    };
    let mut files = Vec::new();
    find(
        Path::new(RECORDINGS),
        &|p| p.extension().is_some_and(|e| e == "jsonl"),
        &mut files,
    );
    let mut cases = Vec::new();
    for path in &files {
        let c = Cassette::load(path).unwrap();
        for inter in &c.interactions {
            if inter.response.as_ref().is_none_or(|r| r.status != 200) {
                continue;
            }
            let api = c.header.api;
            let events = inter.decode(api);
            if events.iter().any(|e| matches!(e, StreamEvent::Error(_))) {
                continue;
            }
            let Some(expect) = sdk_expectation(api, &events) else {
                continue;
            };
            let stream: Vec<String> = stream_from_events(api, "model-x", &events)
                .iter()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect();
            cases.push(serde_json::json!({
                "label": format!("{} #{}", path.file_name().unwrap().to_string_lossy(), inter.id),
                "api": api.as_str(),
                "body": assemble_json(api, "model-x", &events),
                "stream": stream,
                "expect": expect,
            }));
        }
    }
    assert!(cases.len() > 40, "only {} cases", cases.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/check_assembled.py"
    );
    let out = Command::new(&python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        cases.len(),
        "{stdout}"
    );
}
