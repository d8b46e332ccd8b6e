//! `tapeloop serve` matching by conversation, over plain HTTP: a miss names the closest
//! recorded request and never answers from another conversation; identical requests get the
//! recorded attempts in order, then `exhausted`; reset (all or one session); the request log
//! and `--log`; model listings; `--retry-after-scale` on headers and Gemini bodies; hostile
//! requests that never stop the server.

mod serve_support;

use std::time::Duration;

use serde_json::{json, Value};
use tapeloop::net::serve::{Pace, ServeOptions, RESTARTED_HEADER};

use serve_support::*;
use tapeloop::event::ToolCall;

fn conversation() -> ServeOptions {
    options_matching(Pace::Instant, ServeMatch::Conversation)
}

#[test]
fn a_miss_names_the_closest_request_and_never_answers_from_another_conversation() {
    let paths: Vec<_> = [
        "call-with-tools.openai-chat.jsonl",
        "complex-agent-run.openai-chat.jsonl",
        "finish-length.openai-chat.jsonl",
    ]
    .iter()
    .map(|n| corpus(n))
    .collect();
    let tools = load(&paths[0]);
    let other = load(&paths[2]);
    runtime().block_on(async {
        let server = start(&paths, conversation()).await;
        let addr = server.addr();
        let post =
            |body: Value| async move { post_json(addr, "/v1/chat/completions", &body).await };
        // Same model, same system prompt and tools, another user prompt: no cassette has it.
        let mut body = tools.interactions[0].request.body.value().clone();
        body["messages"][1]["content"] = json!("Please retrieve the secret for: friend");
        let r = post(body).await;
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "tapeloop_no_match", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("call-with-tools.openai-chat.jsonl interaction 1"),
            "{msg}"
        );
        assert!(msg.contains("$.messages[1].content"), "{msg}");
        assert_eq!(v["error"]["path"], "$.messages[1].content");
        // Settings that are not the conversation do not matter; the answer is this
        // conversation's, even with another cassette of the same model served first.
        let mut body = other.interactions[0].request.body.value().clone();
        body["stream"] = json!(true);
        body["temperature"] = json!(0.9);
        body["max_tokens"] = json!(77);
        let r = post(body).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            other.interactions[0].body()
        );
        let log = request_log(addr).await;
        assert_eq!(log[0]["result"], "miss");
        assert!(log[0]["error"].as_str().unwrap().contains("closest"));
        assert_eq!(log[1]["result"], "opened");
        assert!(log[1]["cassette"]
            .as_str()
            .unwrap()
            .ends_with("finish-length.openai-chat.jsonl"));
        let summary = server.shutdown().await;
        assert_eq!(summary.divergences.len(), 1);
        assert_eq!(summary.matching, "conversation");
    });
}

#[test]
fn identical_requests_get_the_recorded_attempts_in_order_then_exhausted() {
    let path = corpus("retry-5xx-storm.openai-chat.jsonl");
    let cassette = load(&path);
    assert!(cassette.interactions.iter().all(|i| i.step == 1));
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), conversation()).await;
        let addr = server.addr();
        let body = &cassette.interactions[0].request.body;
        for inter in &cassette.interactions {
            let r = post_json(addr, "/v1/chat/completions", body).await;
            assert_eq!(r.status().as_u16(), inter.response.as_ref().unwrap().status);
            assert_eq!(r.bytes().await.unwrap().to_vec(), inter.body());
        }
        let r = post_json(addr, "/v1/chat/completions", body).await;
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "tapeloop_cassette_exhausted", "{v}");
        let log = request_log(addr).await;
        let results: Vec<&str> = log.iter().map(|l| l["result"].as_str().unwrap()).collect();
        assert_eq!(results[0], "opened");
        assert!(results[1..11].iter().all(|r| *r == "retry"), "{results:?}");
        assert_eq!(results[11], "exhausted");
        let attempts: Vec<u64> = log[..11]
            .iter()
            .map(|l| l["attempt"].as_u64().unwrap())
            .collect();
        assert_eq!(attempts, (1..=11).collect::<Vec<u64>>());
        server.shutdown().await;
    });
}

#[test]
fn reset_rewinds_one_session_or_all() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        let addr = server.addr();
        let first = |session: &'static str| {
            let body = cassette.interactions[0].request.body.value().clone();
            async move { post_as(addr, session, &body).await.status().as_u16() }
        };
        assert_eq!(first("a").await, 200);
        assert_eq!(first("b").await, 200);
        // Sequence mode: the session's next request gets interaction 2, not 1 again.
        let reset = |q: &'static str| async move {
            let r = client()
                .post(url(addr, &format!("/_tapeloop/reset{q}")))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        let (code, v) = reset("?session=a").await;
        assert_eq!((code, v["reset"].clone()), (200, json!(1)), "{v}");
        let st = status(addr).await;
        assert!(
            st["sessions"].get("header:a").is_none() && st["sessions"].get("header:b").is_some()
        );
        let (code, v) = reset("?session=nobody").await;
        assert_eq!(code, 404, "{v}");
        let (code, v) = reset("").await;
        assert_eq!((code, v["reset"].clone()), (200, json!(1)), "{v}");
        assert_eq!(status(addr).await["sessions"], json!({}));
        // What was played is still counted for the unused report.
        assert_eq!(status(addr).await["cassettes"][0]["played"], 1);
        // GET on reset is refused.
        let r = client()
            .get(url(addr, "/_tapeloop/reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        server.shutdown().await;
    });
}

#[test]
fn models_are_listed_in_each_providers_shape() {
    let paths: Vec<_> = [
        "call-with-tools.openai-chat.jsonl",
        "prompt-cache.openai-responses.jsonl",
        "call-with-tools.anthropic.jsonl",
        "call-with-tools.gemini.jsonl",
    ]
    .iter()
    .map(|n| corpus(n))
    .collect();
    runtime().block_on(async {
        let server = start(&paths, conversation()).await;
        let addr = server.addr();
        let get = |path: &'static str, anthropic: bool| async move {
            let mut r = client().get(url(addr, path));
            if anthropic {
                r = r.header("anthropic-version", "2023-06-01");
            }
            r.send().await.unwrap().json::<Value>().await.unwrap()
        };
        let openai = get("/v1/models", false).await;
        assert_eq!(openai["object"], "list");
        let ids: Vec<&str> = openai["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gpt-4o", "gpt-5"]);
        assert_eq!(openai["data"][0]["object"], "model");
        let anthropic = get("/v1/models", true).await;
        assert_eq!(anthropic["data"][0]["type"], "model");
        assert_eq!(anthropic["data"][0]["id"], "claude-sonnet-4-20250514");
        assert_eq!(anthropic["has_more"], false);
        let gemini = get("/v1beta/models", false).await;
        assert_eq!(gemini["models"][0]["name"], "models/gemini-2.5-flash");
        server.shutdown().await;
    });
}

#[test]
fn retry_waits_are_scaled_in_headers_and_gemini_bodies_and_logged() {
    let path = corpus("retry-429-body-hint.gemini.jsonl");
    let cassette = load(&path);
    let recorded: Value = serde_json::from_slice(&cassette.interactions[0].body()).unwrap();
    let delay = |v: &Value| {
        v["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|d| d["retryDelay"].as_str().map(str::to_string))
            .expect("a RetryInfo detail")
    };
    let recorded_delay = delay(&recorded);
    let secs: f64 = recorded_delay.trim_end_matches('s').parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("logs/requests.jsonl");
    runtime().block_on(async {
        let opts = ServeOptions {
            retry_after_scale: Some(0.01),
            log_file: Some(log_file.clone()),
            ..conversation()
        };
        let server = start(std::slice::from_ref(&path), opts).await;
        let addr = server.addr();
        let model = cassette.header.model.clone().unwrap();
        let r = post_json(
            addr,
            &endpoint(cassette.header.api, &model),
            &cassette.interactions[0].request.body,
        )
        .await;
        assert_eq!(r.status().as_u16(), 429);
        let served: Value = r.json().await.unwrap();
        let served_delay = delay(&served);
        let served_secs: f64 = served_delay.trim_end_matches('s').parse().unwrap();
        assert!(
            (served_secs - secs * 0.01).abs() < 0.0011,
            "{served_delay} from {recorded_delay}"
        );
        // Everything else in the body is as recorded.
        assert_eq!(served["error"]["message"], recorded["error"]["message"]);
        let log = request_log(addr).await;
        assert_eq!(log[0]["retry_after"][0]["field"], "retryDelay");
        assert_eq!(
            log[0]["retry_after"][0]["recorded"],
            recorded_delay.as_str()
        );
        assert_eq!(log[0]["retry_after"][0]["served"], served_delay.as_str());
        server.shutdown().await;
    });
    // --log wrote the same line.
    let text = std::fs::read_to_string(&log_file).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], 429);
    assert_eq!(line["retry_after"][0]["field"], "retryDelay");
}

#[test]
fn hostile_requests_get_4xx_and_the_next_client_is_served_byte_exact() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), conversation()).await;
        let addr = server.addr();
        let chat = url(addr, "/v1/chat/completions");
        let http = client();
        let r = http.post(&chat).body("{\"model\": ").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // 10 MB: a JSON object no recording matches.
        let big = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(10 << 20)}]});
        let r = http.post(&chat).json(&big).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "tapeloop_no_match");
        assert!(v["error"]["message"].as_str().unwrap().len() < 2000, "the error quotes values briefly");
        let r = http.post(url(addr, "/v2/nothing")).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
        let raw = raw_exchange(addr, b"GARBAGE\x00\xff / HTTP/9.9\r\n\r\n");
        assert!(raw.is_empty() || raw.starts_with(b"HTTP/1.1 4"), "{:?}", String::from_utf8_lossy(&raw));
        // A client that goes away mid-stream is logged as such.
        let slow = {
            let mut lines = lines_without_footer(&path);
            for l in lines.iter_mut().filter(|l| l["kind"] == "chunk" && l["id"] == 2) {
                l["ms"] = json!(l["ms"].as_u64().unwrap() + 60_000);
            }
            let dir = tempfile::tempdir().unwrap();
            let p = write_cassette(dir.path(), "slow.jsonl", &lines);
            (dir, p)
        };
        let slow_server = start(std::slice::from_ref(&slow.1), options_matching(Pace::Recorded, ServeMatch::Conversation)).await;
        let r = http
            .post(url(slow_server.addr(), "/v1/chat/completions"))
            .json(&cassette.interactions[1].request.body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        drop(r);
        let mut outcome = Value::Null;
        for _ in 0..100 {
            if let Some(l) = request_log(slow_server.addr()).await.first() {
                outcome = l["outcome"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(outcome, "disconnected");
        slow_server.shutdown().await;
        // The server still serves, byte for byte.
        for inter in &cassette.interactions {
            let r = http.post(&chat).json(&inter.request.body).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.bytes().await.unwrap().to_vec(), inter.body());
        }
        let log = request_log(addr).await;
        let statuses: Vec<u64> = log.iter().map(|l| l["status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, [400, 400, 404, 200, 200]);
        assert!(log.iter().all(|l| l["outcome"] == "complete"), "{log:?}");
        server.shutdown().await;
    });
}

/// Text and tool calls of decoded events.
fn seen_of(events: &[tapeloop::event::StreamEvent]) -> (String, Vec<(String, Value)>) {
    let mut text = String::new();
    let mut tools = Vec::new();
    for e in events {
        match e {
            tapeloop::event::StreamEvent::TextDelta { text: t, .. } => text.push_str(t),
            tapeloop::event::StreamEvent::ToolCall(ToolCall { tool, input, .. }) => {
                tools.push((tool.clone(), input.clone()))
            }
            _ => {}
        }
    }
    (text, tools)
}

#[test]
fn a_streaming_request_against_a_json_recording_gets_a_stream_built_from_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("pydantic-ai/tests/models/cassettes/test_openai_responses/test_openai_responses_model_web_search_tool_stream.yaml", "resp.jsonl"),
        ("pydantic-ai/tests/models/cassettes/test_google/test_google_model_web_search_tool_stream.yaml", "gemini.jsonl"),
    ];
    for (src, name) in cases {
        let out = dir.path().join(name);
        tapeloop::cassette::import::import_file(
            &repo(&format!("tests/fixtures/provider-streams/cassettes/{src}")),
            &out,
        )
        .unwrap();
        let cassette = load(&out);
        let api = cassette.header.api;
        let inter = cassette
            .interactions
            .iter()
            .find(|i| i.body().first() == Some(&b'{'))
            .expect("a JSON reply");
        let model = cassette.header.model.clone().unwrap();
        let want = seen_of(&inter.decode(api));
        assert!(!want.0.is_empty(), "{name}: the JSON reply has text");
        runtime().block_on(async {
            let server = start(std::slice::from_ref(&out), conversation()).await;
            let addr = server.addr();
            let mut body = inter.request.body.value().clone();
            let paths: Vec<String> = match api {
                tapeloop::provider::Api::Gemini => vec![
                    format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
                    format!("/v1beta/models/{model}:streamGenerateContent"),
                ],
                _ => {
                    body["stream"] = json!(true);
                    vec![endpoint(api, &model)]
                }
            };
            for path in paths {
                let r = post_json(addr, &path, &body).await;
                assert_eq!(r.status().as_u16(), 200);
                let ct = r.headers()["content-type"].to_str().unwrap().to_string();
                let got = r.bytes().await.unwrap();
                let mut headers = tapeloop::http::Headers::new();
                headers.insert("content-type", ct.clone());
                let events = tapeloop::provider::decode_response(
                    api,
                    200,
                    &headers,
                    [got.as_ref()],
                    tapeloop::event::EndOutcome::Complete,
                );
                assert_eq!(seen_of(&events), want, "{name} {path} ({ct})");
                if path.ends_with("alt=sse") || api != tapeloop::provider::Api::Gemini {
                    assert!(ct.starts_with("text/event-stream"), "{ct}");
                } else {
                    assert!(got.starts_with(b"["), "a JSON array without alt=sse");
                }
                // Retries of the same request walk past the one recorded answer.
                client()
                    .post(url(addr, "/_tapeloop/reset"))
                    .send()
                    .await
                    .unwrap();
            }
            // The non-stream request gets the recorded JSON byte for byte.
            let mut plain = inter.request.body.value().clone();
            if let Some(m) = plain.as_object_mut() {
                m.remove("stream");
            }
            let path = match api {
                tapeloop::provider::Api::Gemini => {
                    format!("/v1beta/models/{model}:generateContent")
                }
                _ => endpoint(api, &model),
            };
            let r = post_json(addr, &path, &plain).await;
            assert_eq!(r.bytes().await.unwrap().to_vec(), inter.body(), "{name}");
            let log = request_log(addr).await;
            assert_eq!(log.last().unwrap()["reply"], "recorded");
            assert_eq!(log[0]["reply"], "stream-from-json");
            server.shutdown().await;
        });
    }
}

#[test]
fn errors_keep_their_recorded_status_and_body_for_non_stream_requests() {
    let path = corpus("retry-429.openai-chat.jsonl");
    let cassette = load(&path);
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), conversation()).await;
        let mut body = cassette.interactions[0].request.body.value().clone();
        body.as_object_mut().unwrap().remove("stream");
        let r = post_json(server.addr(), "/v1/chat/completions", &body).await;
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            cassette.interactions[0].body()
        );
        // The retry, non-streaming, gets the recorded stream assembled into a completion.
        let r = post_json(server.addr(), "/v1/chat/completions", &body).await;
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion", "{v}");
        server.shutdown().await;
    });
}

/// Past `max_sessions` the least recently served sessions are forgotten: the status counts
/// them, a kept session continues where it was, and a forgotten one starts over and is told
/// so (a response header, the request log, the status).
#[test]
fn past_max_sessions_the_least_recently_served_are_forgotten() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    let (first, second) = (&cassette.interactions[0], &cassette.interactions[1]);
    runtime().block_on(async {
        let opts = ServeOptions {
            max_sessions: 3,
            ..conversation()
        };
        let server = start(std::slice::from_ref(&path), opts).await;
        let addr = server.addr();
        let send = |session: &'static str, body: Value| async move {
            let r = post_as(addr, session, &body).await;
            assert_eq!(r.status().as_u16(), 200, "{session}");
            let restarted = r.headers().contains_key(RESTARTED_HEADER);
            r.bytes().await.expect("body");
            restarted
        };
        for s in ["s1", "s2", "s3", "s4"] {
            assert!(
                !send(s, first.request.body.value().clone()).await,
                "{s} is new"
            );
        }
        let st = status(addr).await;
        let kept: Vec<&String> = st["sessions"].as_object().unwrap().keys().collect();
        assert_eq!(kept, ["header:s2", "header:s3", "header:s4"], "{st}");
        assert_eq!(st["sessions_forgotten"], 1);

        assert_eq!(st["sessions_restarted"], 0);
        assert!(!send("s2", second.request.body.value().clone()).await);
        assert!(
            send("s1", second.request.body.value().clone()).await,
            "s1 was forgotten and is told it starts over"
        );
        let log = request_log(addr).await;
        let last = |session: &str| {
            log.iter()
                .rev()
                .find(|e| e["session"] == format!("header:{session}"))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(last("s2")["result"], "continued");
        assert_eq!(last("s2").get("restarted"), None);
        assert_eq!(last("s1")["result"], "opened", "s1 was forgotten");
        assert_eq!(last("s1")["restarted"], true);
        let st = status(addr).await;
        assert_eq!(st["sessions_forgotten"], 2, "s3 went next: {st}");
        assert_eq!(st["sessions_restarted"], 1, "{st}");
        // Told once: s1 is a kept session again.
        assert!(!send("s1", first.request.body.value().clone()).await);
        assert_eq!(
            session_ids(&st, "header:s2"),
            [first.id, second.id],
            "a kept session keeps its history"
        );
        server.shutdown().await;
    });
}

/// Forgetting past `max_sessions` removes exactly the forgotten session's state, whatever kind
/// it is: an unnamed conversation's track (the next unnamed request continues the kept one),
/// and a sequence-mode session's cursor (it starts from the first interaction again while a
/// kept session goes on in order).
#[test]
fn forgetting_removes_unnamed_tracks_and_sequence_cursors() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    let (first, second) = (
        cassette.interactions[0].request.body.value().clone(),
        cassette.interactions[1].request.body.value().clone(),
    );
    runtime().block_on(async {
        // Conversation mode, no session header: each opening is a session of its own.
        let opts = ServeOptions {
            max_sessions: 1,
            ..conversation()
        };
        let server = start(std::slice::from_ref(&path), opts).await;
        let addr = server.addr();
        for _ in 0..3 {
            let r = post_json(addr, "/v1/chat/completions", &first).await;
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().await.unwrap();
        }
        let st = status(addr).await;
        let kept: Vec<&String> = st["sessions"].as_object().unwrap().keys().collect();
        assert_eq!(kept, ["conversation-3"], "{st}");
        assert_eq!(st["sessions_forgotten"], 2, "{st}");
        // The one kept track is continued; the forgotten ones are not looked at.
        let r = post_json(addr, "/v1/chat/completions", &second).await;
        assert_eq!(r.status().as_u16(), 200);
        r.bytes().await.unwrap();
        let log = request_log(addr).await;
        let last = log.last().unwrap();
        assert_eq!(last["result"], "continued", "{last}");
        assert_eq!(last["session"], "conversation-3", "{last}");
        server.shutdown().await;

        // Sequence mode, two sessions kept of three.
        let opts = ServeOptions {
            max_sessions: 2,
            ..options(Pace::Instant, false)
        };
        let server = start(std::slice::from_ref(&path), opts).await;
        let addr = server.addr();
        let send = |session: &'static str, body: Value| async move {
            let r = post_as(addr, session, &body).await;
            assert_eq!(r.status().as_u16(), 200, "{session}");
            r.bytes().await.unwrap();
        };
        for s in ["a", "b", "c"] {
            send(s, first.clone()).await;
        }
        // `a` was forgotten: it replays from the start; `c` goes on in order.
        send("a", first.clone()).await;
        send("c", second.clone()).await;
        let st = status(addr).await;
        assert_eq!(session_ids(&st, "header:a"), [cassette.interactions[0].id]);
        assert_eq!(
            session_ids(&st, "header:c"),
            [cassette.interactions[0].id, cassette.interactions[1].id]
        );
        assert_eq!(st["sessions_forgotten"], 2, "a, then b: {st}");
        assert_eq!(st["sessions_restarted"], 1, "{st}");
        server.shutdown().await;
    });
}
