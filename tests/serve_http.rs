//! `tapeloop serve` over HTTP with a plain client: replayed errors and resets, Gemini JSON
//! arrays, malformed requests, exhaustion, strict mode, the status endpoint, 100 concurrent
//! sessions, and the pacing schedule.

mod serve_support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tapeloop::net::serve::{schedule, Pace};
use tapeloop::provider::Api;

use serve_support::*;

fn body_of(inter: &tapeloop::cassette::Interaction) -> Vec<u8> {
    inter.body()
}

#[test]
fn replays_429_with_retry_after_then_the_next_interactions_then_exhaustion() {
    let path = corpus("retry-429.openai-chat.jsonl");
    let cassette = load(&path);
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        let addr = server.addr();
        let http = client();
        let post = |body: &Value| {
            http.post(url(addr, "/v1/chat/completions"))
                .json(body)
                .send()
        };
        // Attempt 1: the recorded 429, header and error body as recorded.
        let first = &cassette.interactions[0];
        let r = post(&first.request.body).await.expect("send");
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(r.bytes().await.unwrap().to_vec(), body_of(first));
        // The retry (same body, same session) gets the next interaction: the real stream.
        for inter in &cassette.interactions[1..] {
            let r = post(&inter.request.body).await.expect("send");
            assert_eq!(r.status().as_u16(), 200);
            let head = inter.response.as_ref().unwrap();
            assert_eq!(
                r.headers()["content-type"],
                head.headers.get("content-type").unwrap()
            );
            assert_eq!(r.bytes().await.unwrap().to_vec(), body_of(inter));
        }
        // Nothing left for this session: a clear 400 JSON error.
        let r = post(&first.request.body).await.expect("send");
        assert_eq!(r.status().as_u16(), 400);
        let err: Value = r.json().await.expect("JSON error");
        assert_eq!(err["error"]["type"], "tapeloop_cassette_exhausted");
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("all 3 recorded interactions"));

        let st = status(addr).await;
        assert_eq!(st["cassettes"][0]["unused"], json!([]));
        assert_eq!(st["cassettes"][0]["played"], 3);
        let sessions = st["sessions"].as_object().unwrap();
        assert_eq!(sessions.len(), 1, "{st}");
        let key = sessions.keys().next().unwrap().clone();
        assert_eq!(session_ids(&st, &key), vec![1, 2, 3]);
        let summary = server.shutdown().await;
        assert!(!summary.strict_failed());
    });
}

#[test]
fn recorded_reset_cuts_the_body_and_the_retry_gets_the_full_stream() {
    let path = corpus("retry-reset.openai-responses.jsonl");
    let cassette = load(&path);
    let cut = &cassette.interactions[0];
    assert_eq!(
        cut.end.unwrap().outcome,
        tapeloop::event::EndOutcome::Reset,
        "corpus changed"
    );
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        let addr = server.addr();
        let r = client()
            .post(url(addr, "/v1/responses"))
            .json(&cut.request.body)
            .send()
            .await
            .expect("headers arrive before the cut");
        assert_eq!(r.status().as_u16(), 200);
        let mut got = Vec::new();
        let mut failed = false;
        let mut stream = r.bytes_stream();
        while let Some(item) = stream.next().await {
            match item {
                Ok(b) => got.extend_from_slice(&b),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "the client must see a failed read, not a clean end");
        let recorded = cut.body();
        assert!(
            recorded.starts_with(&got),
            "what arrived must be a prefix of the recorded bytes"
        );
        // The retry is the next interaction, complete.
        let retry = &cassette.interactions[1];
        let r = client()
            .post(url(addr, "/v1/responses"))
            .json(&retry.request.body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.bytes().await.unwrap().to_vec(), retry.body());
        server.shutdown().await;
    });
}

#[test]
fn interaction_without_response_head_closes_before_headers_and_gemini_json_array_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    // Gemini without `alt=sse`: a streamed JSON array, CRLF and commas between elements,
    // split mid-element.
    let lines = synthetic_cassette(
        "gemini",
        "gemini-2.5-flash",
        &[
            Synth {
                body: body.clone(),
                status: None,
                headers: json!({}),
                chunks: vec![],
                end: (30, "reset"),
            },
            Synth {
                body: body.clone(),
                status: Some(200),
                headers: json!({"content-type": "application/json; charset=UTF-8", "content-length": "999"}),
                chunks: vec![
                    (10, "[{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"}}]}\r\n"),
                    (12, ",\r\n{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}],\"role\": \"mo"),
                    (15, "del\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": 2,\"totalTokenCount\": 5}}\r\n]"),
                ],
                end: (16, "complete"),
            },
        ],
    );
    let path = write_cassette(dir.path(), "json-array.gemini.jsonl", &lines);
    let cassette = load(&path);
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        let addr = server.addr();
        let endpoint = url(
            addr,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        );
        let err = client()
            .post(&endpoint)
            .json(&body)
            .send()
            .await
            .expect_err("the recorded connection failed before any header");
        assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
        // The retry gets the JSON array exactly as recorded, framing headers recomputed.
        let r = client().post(&endpoint).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/json; charset=UTF-8"
        );
        assert_ne!(
            r.headers().get("content-length").map(|v| v.as_bytes()),
            Some(&b"999"[..]),
            "a recorded content-length must not be replayed"
        );
        let got = r.bytes().await.unwrap().to_vec();
        assert_eq!(got, cassette.interactions[1].body());
        // And it decodes through tapeloop's Gemini adapter like the original.
        let events = tapeloop::provider::decode_response(
            Api::Gemini,
            200,
            &cassette.interactions[1].response.as_ref().unwrap().headers,
            [got.as_slice()],
            tapeloop::event::EndOutcome::Complete,
        );
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                tapeloop::event::StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "Hello");
        let st = status(addr).await;
        assert_eq!(st["cassettes"][0]["unused"], json!([]));
        server.shutdown().await;
    });
}

#[test]
fn gemini_sse_corpus_stream_is_served_byte_exact_by_path_model() {
    let path = corpus("call-with-tools.gemini.jsonl");
    let cassette = load(&path);
    let model = cassette.header.model.clone().unwrap();
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        for inter in &cassette.interactions {
            let r = client()
                .post(url(server.addr(), &endpoint(Api::Gemini, &model)))
                .json(&inter.request.body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.bytes().await.unwrap().to_vec(), inter.body());
        }
        server.shutdown().await;
    });
}

#[test]
fn malformed_requests_get_4xx_json_errors_and_the_server_keeps_serving() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    let good = cassette.interactions[0].request.body.clone();
    runtime().block_on(async {
        let opts = tapeloop::net::serve::ServeOptions {
            max_request_body: 4096,
            ..options(Pace::Instant, false)
        };
        let server = start(std::slice::from_ref(&path), opts).await;
        let addr = server.addr();
        let http = client();
        let chat = url(addr, "/v1/chat/completions");

        async fn expect_json_error(r: reqwest::Response, status: u16, kind: &str) {
            assert_eq!(r.status().as_u16(), status);
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            let v: Value = r.json().await.expect("JSON error body");
            assert_eq!(v["error"]["type"], kind, "{v}");
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }

        let r = http
            .post(&chat)
            .body("this is not json")
            .send()
            .await
            .unwrap();
        expect_json_error(r, 400, "invalid_request_error").await;
        let r = http.post(&chat).body("[1, 2]").send().await.unwrap();
        expect_json_error(r, 400, "invalid_request_error").await;
        let r = http.post(&chat).body("").send().await.unwrap();
        expect_json_error(r, 400, "invalid_request_error").await;
        let r = http
            .post(url(addr, "/v1/embeddings"))
            .json(&good)
            .send()
            .await
            .unwrap();
        expect_json_error(r, 404, "not_found").await;
        let r = http.get(&chat).send().await.unwrap();
        expect_json_error(r, 405, "invalid_request_error").await;
        // Gemini routes answer in the Google API error shape google-genai parses.
        let r = http
            .get(url(
                addr,
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 405, "{v}");
        assert_eq!(v["error"]["status"], "UNIMPLEMENTED", "{v}");
        assert_eq!(v["error"]["details"][0]["reason"], "invalid_request_error", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("takes POST"));
        // An API no served cassette speaks.
        let r = http
            .post(url(addr, "/v1/messages"))
            .json(&json!({"model": "m", "messages": []}))
            .send()
            .await
            .unwrap();
        expect_json_error(r, 404, "not_found").await;
        // Oversized with a declared length (refused before reading) ...
        let raw = raw_exchange(
            addr,
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n",
        );
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
        assert!(raw.contains("larger than the 4096 bytes"), "{raw}");
        // ... and streamed without one (chunked).
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b' '; 1024])).collect();
        let r = http
            .post(&chat)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
            .send()
            .await;
        if let Ok(r) = r {
            // The server may answer before the client finished sending; either way no crash.
            expect_json_error(r, 413, "invalid_request_error").await;
        }
        // Garbage that is not HTTP at all.
        let raw = raw_exchange(addr, b"\x00\x01garbage\r\n\r\n");
        assert!(!raw.starts_with(b"HTTP/1.1 2"), "garbage must not succeed");

        // Still serving: the first interaction, untouched by all of the above. A new client:
        // the server may close a connection it answered early (the oversized chunked body), and
        // a pooled connection would then race that close.
        let r = client().post(&chat).json(&good).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            cassette.interactions[0].body()
        );
        let st = status(addr).await;
        assert_eq!(st["cassettes"][0]["played"], 1);
        assert_eq!(st["cassettes"][0]["unused"], json!([2]));
        server.shutdown().await;
    });
}

#[test]
fn strict_mode_rejects_a_divergent_request_naming_the_path_and_reports_unused() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    let recorded = cassette.interactions[0].request.body.clone();
    let mut divergent = recorded.clone();
    divergent["messages"][1]["content"] = json!("Something else entirely");
    // Volatile top-level fields are ignored (module docs; dates and paths: the next test).
    let mut volatile = recorded.clone();
    volatile["user"] = json!("someone-else");
    volatile["metadata"] = json!({"run": "42"});
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, true)).await;
        let addr = server.addr();
        let http = client();
        let chat = url(addr, "/v1/chat/completions");
        let r = http
            .post(&chat)
            .header("x-tapeloop-session", "s1")
            .json(&divergent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["type"], "tapeloop_divergence");
        assert_eq!(err["error"]["path"], "$.messages[1].content");
        assert_eq!(err["error"]["interaction"], 1);
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Something else entirely"));

        let st = status(addr).await;
        assert_eq!(st["strict"], true);
        let divs = st["divergences"].as_array().unwrap();
        assert_eq!(divs.len(), 1);
        assert_eq!(divs[0]["path"], "$.messages[1].content");
        assert_eq!(divs[0]["session"], "header:s1");
        assert_eq!(divs[0]["interaction"], 1);
        // The divergent request consumed nothing: the matching one gets interaction 1.
        let r = http
            .post(&chat)
            .header("x-tapeloop-session", "s1")
            .json(&volatile)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            cassette.interactions[0].body()
        );
        assert_eq!(session_ids(&status(addr).await, "header:s1"), vec![1]);

        let summary = server.shutdown().await;
        assert_eq!(summary.cassettes[0].unused, vec![2]);
        assert_eq!(summary.divergences.len(), 1);
        assert!(summary.strict_failed());
    });

    // Without --strict the same divergent request is simply served.
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        let r = client()
            .post(url(server.addr(), "/v1/chat/completions"))
            .json(&divergent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let summary = server.shutdown().await;
        assert!(summary.divergences.is_empty());
    });
}

#[test]
fn strict_canonicalization_ignores_dates_and_paths_in_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let recorded_body = json!({"model": "m", "stream": true, "messages": [
        {"role": "system", "content": "Today is 2026-11-20. Working directory: /home/alice/project"},
        {"role": "user", "content": "hi"}]});
    let sent = json!({"messages": [
        {"content": "Today is 2027-01-02. Working directory: /tmp/ci-1234/checkout", "role": "system"},
        {"role": "user", "content": "hi"}], "stream": true, "model": "m", "store": false});
    let lines = synthetic_cassette(
        "openai-chat",
        "m",
        &[Synth {
            body: recorded_body,
            status: Some(200),
            headers: json!({"content-type": "text/event-stream"}),
            chunks: vec![(5, "data: [DONE]\n\n")],
            end: (6, "complete"),
        }],
    );
    let path = write_cassette(dir.path(), "dates.openai-chat.jsonl", &lines);
    runtime().block_on(async {
        let server = start(&[path], options(Pace::Instant, true)).await;
        let r = client()
            .post(url(server.addr(), "/v1/chat/completions"))
            .json(&sent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let summary = server.shutdown().await;
        assert!(!summary.strict_failed(), "{summary:?}");
    });
}

#[test]
fn a_hundred_concurrent_sessions_get_uncorrupted_streams() {
    let paths: Vec<_> = [
        "call-with-tools.openai-chat.jsonl",
        "call-with-tools.openai-responses.jsonl",
        "call-with-tools.anthropic.jsonl",
        "call-with-tools.gemini.jsonl",
    ]
    .iter()
    .map(|n| corpus(n))
    .collect();
    let cassettes: Vec<_> = paths.iter().map(|p| std::sync::Arc::new(load(p))).collect();
    runtime().block_on(async {
        let server = start(&paths, options(Pace::Instant, false)).await;
        let addr = server.addr();
        let http = client();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100usize {
            let cassette = std::sync::Arc::clone(&cassettes[i % cassettes.len()]);
            let http = http.clone();
            tasks.spawn(async move {
                let api = cassette.header.api;
                let path = endpoint(api, cassette.header.model.as_deref().unwrap());
                for inter in &cassette.interactions {
                    let r = http
                        .post(url(addr, &path))
                        .header("x-tapeloop-session", format!("client-{i}"))
                        .json(&inter.request.body)
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(r.status().as_u16(), 200, "client {i}");
                    let got = r.bytes().await.expect("body").to_vec();
                    assert!(
                        got == inter.body(),
                        "client {i}: interaction {} corrupted",
                        inter.id
                    );
                }
                i
            });
        }
        let mut done = 0;
        let all = async {
            while let Some(r) = tasks.join_next().await {
                r.expect("client task");
                done += 1;
            }
        };
        tokio::time::timeout(HANG_GUARD, all)
            .await
            .expect("hang guard");
        assert_eq!(done, 100);
        let st = status(addr).await;
        assert_eq!(st["sessions"].as_object().unwrap().len(), 100);
        for i in 0..100usize {
            let want: Vec<u64> = cassettes[i % cassettes.len()]
                .interactions
                .iter()
                .map(|x| x.id)
                .collect();
            assert_eq!(session_ids(&st, &format!("header:client-{i}")), want);
        }
        let summary = server.shutdown().await;
        assert_eq!(summary.requests, 200);
        assert!(!summary.strict_failed());
    });
}

#[test]
fn pacing_schedule_recorded_instant_and_scaled() {
    let cassette = load(&corpus("retry-reset.openai-responses.jsonl"));
    let inter = &cassette.interactions[0];
    let head = inter.response.as_ref().unwrap();
    let recorded = schedule(inter, Pace::Recorded);
    assert_eq!(recorded.head, Duration::from_millis(head.ms));
    assert_eq!(recorded.chunks.len(), inter.chunks.len());
    // Waits are gaps between offsets: they add up to the last chunk's offset.
    let total: Duration = recorded.head + recorded.chunks.iter().sum::<Duration>();
    assert_eq!(
        total,
        Duration::from_millis(inter.chunks.last().unwrap().ms.max(head.ms))
    );
    let mut prev = head.ms;
    for (c, w) in inter.chunks.iter().zip(&recorded.chunks) {
        assert_eq!(*w, Duration::from_millis(c.ms.saturating_sub(prev)));
        prev = prev.max(c.ms);
    }
    // The cut comes after the recorded end offset.
    let end = inter.end.unwrap();
    assert_eq!(recorded.end, Duration::from_millis(end.ms - prev));

    let instant = schedule(inter, Pace::Instant);
    assert_eq!(instant.head, Duration::ZERO);
    assert!(instant.chunks.iter().all(|d| d.is_zero()));
    assert_eq!(instant.end, Duration::ZERO);

    let x10 = schedule(inter, "x10".parse().unwrap());
    assert_eq!(x10.chunks.len(), recorded.chunks.len());
    for (fast, slow) in std::iter::once((&x10.head, &recorded.head))
        .chain(x10.chunks.iter().zip(&recorded.chunks))
        .chain(std::iter::once((&x10.end, &recorded.end)))
    {
        let want = slow.as_secs_f64() / 10.0;
        assert!(
            (fast.as_secs_f64() - want).abs() < 1e-9,
            "{fast:?} vs {slow:?}"
        );
    }
    // A complete end has no trailing wait.
    let complete = &cassette.interactions[1];
    assert_eq!(schedule(complete, Pace::Recorded).end, Duration::ZERO);
    // Parsing, and no overflow panic for absurd factors.
    assert_eq!("recorded".parse::<Pace>(), Ok(Pace::Recorded));
    assert_eq!("x0.5".parse::<Pace>(), Ok(Pace::Scaled(0.5)));
    for bad in ["x0", "x-1", "xinf", "xNaN", "10", "fast", "x"] {
        assert!(bad.parse::<Pace>().is_err(), "{bad}");
    }
    let tiny: Pace = "x1e-300".parse().unwrap();
    assert_eq!(tiny.delay(u64::MAX), Duration::MAX);
    assert_eq!(Pace::Scaled(2.0).to_string(), "x2");
}

/// A one-request OpenAI cassette whose two SSE events were recorded at `first_ms` and
/// `last_ms`, and the request body that selects it.
fn slow_stream(dir: &std::path::Path, first_ms: u64, last_ms: u64) -> (std::path::PathBuf, Value) {
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "slow"}]});
    let lines = synthetic_cassette(
        "openai-chat",
        "m",
        &[Synth {
            body: body.clone(),
            status: Some(200),
            headers: json!({"content-type": "text/event-stream"}),
            chunks: vec![(first_ms, "data: {}\n\n"), (last_ms, "data: [DONE]\n\n")],
            end: (last_ms + 1, "complete"),
        }],
    );
    (write_cassette(dir, "slow.openai-chat.jsonl", &lines), body)
}

#[test]
fn recorded_pace_waits_at_least_the_recorded_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (path, body) = slow_stream(dir.path(), 100, 300);
    runtime().block_on(async {
        let server = start(&[path], options(Pace::Recorded, false)).await;
        let started = std::time::Instant::now();
        let r = client()
            .post(url(server.addr(), "/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let got = r.bytes().await.unwrap();
        // A lower bound only: sleeping never ends early, however loaded the machine.
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(&got[..], b"data: {}\n\ndata: [DONE]\n\n");
        server.shutdown().await;
    });
}

#[test]
fn shutdown_lets_the_response_in_flight_finish_and_closes_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (path, body) = slow_stream(dir.path(), 50, 400);
    runtime().block_on(async {
        let server = start(&[path], options(Pace::Recorded, false)).await;
        let addr = server.addr();
        // An idle connection that never sends a request.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        // A request whose response is still streaming when shutdown starts.
        let r = client()
            .post(url(addr, "/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let rest = tokio::spawn(async move { r.bytes().await });
        let summary = server.shutdown().await;
        assert_eq!(summary.requests, 1);
        let got = rest.await.unwrap().expect("the in-flight body completes");
        assert_eq!(&got[..], b"data: {}\n\ndata: [DONE]\n\n");
        let mut buf = [0u8; 16];
        let n = tokio::io::AsyncReadExt::read(&mut idle, &mut buf)
            .await
            .unwrap_or(0);
        assert_eq!(n, 0, "the idle connection is closed by shutdown");
        // Nothing listens any more.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    });
}

/// `serve` reads bodies from the cassette file as it plays them: when the file changed after
/// the server indexed it, a request is answered with a clear 500 JSON error naming the file,
/// never with other bytes, and the server keeps serving.
#[test]
fn a_cassette_changed_on_disk_is_a_500_json_error_not_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.openai-chat.jsonl");
    std::fs::copy(corpus("call-with-tools.openai-chat.jsonl"), &path).unwrap();
    let cassette = load(&path);
    runtime().block_on(async {
        let server = start(
            std::slice::from_ref(&path),
            options_matching(Pace::Instant, ServeMatch::Conversation),
        )
        .await;
        let addr = server.addr();
        let first = &cassette.interactions[0];
        let r = post_json(addr, "/v1/chat/completions", first.request.body.value()).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.bytes().await.unwrap().to_vec(), first.body());

        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"\n");
        std::fs::write(&path, &text).unwrap();
        let second = &cassette.interactions[1];
        let r = post_json(addr, "/v1/chat/completions", second.request.body.value()).await;
        assert_eq!(r.status().as_u16(), 500);
        let err: Value = r.json().await.expect("a JSON error body");
        assert_eq!(
            err["error"]["type"], "tapeloop_cassette_unreadable",
            "{err}"
        );
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("changed since it was indexed"),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        let log = request_log(addr).await;
        assert_eq!(log.last().unwrap()["error"].as_str(), Some(message));

        // Control endpoints still answer.
        assert_eq!(status(addr).await["requests"], 2);
        server.shutdown().await;
    });
}

/// The end of a played body is sent with its last chunk, not after another read of the file: a
/// client that stops reading once it has every recorded byte (as SDKs do at `[DONE]`) finds
/// the response complete, and the request log says `complete`, not `disconnected`.
#[test]
fn a_body_ends_with_its_last_chunk() {
    let path = corpus("call-with-tools.openai-chat.jsonl");
    let cassette = load(&path);
    let first = &cassette.interactions[0];
    let expected = first.body();
    runtime().block_on(async {
        let server = start(std::slice::from_ref(&path), options(Pace::Instant, false)).await;
        let addr = server.addr();
        for i in 0..10 {
            let r = client()
                .post(url(addr, "/v1/chat/completions"))
                .header("x-tapeloop-session", format!("s{i}"))
                .json(first.request.body.value())
                .send()
                .await
                .expect("send");
            let mut got = Vec::new();
            let mut stream = r.bytes_stream();
            while got.len() < expected.len() {
                let chunk = stream.next().await.expect("more bytes").expect("a chunk");
                got.extend_from_slice(&chunk);
            }
            assert_eq!(got, expected);
            drop(stream); // gone as soon as every byte is there
        }
        let mut log = Vec::new();
        for _ in 0..100 {
            log = request_log(addr).await;
            if log.len() == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outcomes: Vec<&str> = log.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, vec!["complete"; 10]);
        server.shutdown().await;
    });
}
