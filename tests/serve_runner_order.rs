//! `tapeloop serve` plays interactions in the order tapeloop's own runner consumes them.
//!
//! For each scenario × cassette, the runner replays it through the processor with
//! `CassetteReplay`. Then the same processor, configured the same way, is driven over HTTP
//! against `serve`: each `Send` posts `Api::request_body` of the conversation, and the bytes
//! that come back are decoded by the same adapter. Both must consume the same interactions in
//! the same order (checked with `/_tapeloop/status`) and reach the same result.

mod serve_support;

use std::net::SocketAddr;
use std::path::Path;

use futures_util::StreamExt;
use serde_json::Value;
use tapeloop::cassette::{Cassette, Interaction};
use tapeloop::event::{EndOutcome, StreamEvent};
use tapeloop::http::Headers;
use tapeloop::net::serve::Pace;
use tapeloop::processor::{Action, Outcome, Processor, Termination};
use tapeloop::provider::{decode_response, Api, ResponseDecoder};
use tapeloop::replay::{CassetteReplay, MatchMode};
use tapeloop::report::RunRecord;
use tapeloop::runner::{initial_conversation, processor_config, replay, RunOptions};
use tapeloop::scenario::{Scenario, ToolScripts};

use serve_support::*;

/// What one HTTP attempt produced, as normalized events.
async fn attempt(
    http: &reqwest::Client,
    addr: SocketAddr,
    api: Api,
    model: &str,
    session: &str,
    body: &Value,
) -> Result<Vec<StreamEvent>, Termination> {
    let sent = http
        .post(url(addr, &endpoint(api, model)))
        .header("x-tapeloop-session", session)
        .json(body)
        .send()
        .await;
    let r = match sent {
        Ok(r) => r,
        // No response head: the same network error the cassette's decode gives.
        Err(_) => {
            let none = Interaction {
                id: 0,
                step: 0,
                attempt: 0,
                request: tapeloop::cassette::Request {
                    method: "POST".into(),
                    url: String::new(),
                    headers: Headers::new(),
                    body: Value::Null.into(),
                    body_b64: None,
                },
                response: None,
                chunks: Vec::new(),
                end: Some(tapeloop::cassette::End {
                    ms: 0,
                    outcome: EndOutcome::Reset,
                }),
            };
            return Ok(none.decode(api));
        }
    };
    let status = r.status().as_u16();
    let headers: Headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default()))
        .collect();
    if !(200..300).contains(&status) {
        let bytes = r.bytes().await.unwrap_or_default();
        if status == 400 {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match v["error"]["type"].as_str() {
                Some("tapeloop_cassette_exhausted") => return Err(Termination::CassetteExhausted),
                Some("tapeloop_divergence") => return Err(Termination::Divergence),
                _ => {}
            }
        }
        return Ok(decode_response(
            api,
            status,
            &headers,
            [bytes.as_ref()],
            EndOutcome::Complete,
        ));
    }
    let mut decoder = ResponseDecoder::new(api);
    let mut events = Vec::new();
    let mut outcome = EndOutcome::Complete;
    let mut stream = r.bytes_stream();
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => decoder.feed(&b, &mut events),
            Err(_) => {
                outcome = EndOutcome::Reset;
                break;
            }
        }
    }
    decoder.finish(outcome, &mut events);
    Ok(events)
}

/// Drive the scenario's processor against the server (the runner's loop, HTTP transport).
async fn drive_over_http(
    sc: &Scenario,
    cassette: &Cassette,
    addr: SocketAddr,
    session: &str,
) -> Outcome {
    let opts = RunOptions::default();
    let mut cfg = processor_config(sc, &opts, cassette.header.provider.as_deref());
    if let Some(m) = cassette.header.model.as_ref().filter(|m| !m.is_empty()) {
        cfg.model = m.clone();
    }
    let mut processor = Processor::new(cfg, initial_conversation(sc));
    let mut scripts = ToolScripts::from_scenario(sc);
    // Tool results only: interactions come from the server.
    let mut tools = CassetteReplay::new(cassette, MatchMode::Sequence);
    let api = cassette.header.api;
    let model = cassette.header.model.clone().unwrap_or_default();
    let http = client();
    let mut now = 0u64;
    let mut action = processor.start(now);
    let mut pending = Vec::new();
    for _ in 0..1000 {
        match action {
            Action::Stop(_) => return processor.into_outcome(),
            Action::Wait { ms } => {
                now += ms;
                action = processor.on_wait_elapsed(now);
            }
            Action::ExecuteTool(_) => panic!("tool call outside a stream"),
            Action::Send(req) => {
                let body = api.request_body(&req.conversation, &req.options);
                match attempt(&http, addr, api, &model, session, &body).await {
                    Err(reason) => {
                        processor.terminate(reason, None, now);
                        return processor.into_outcome();
                    }
                    Ok(events) => {
                        for ev in &events {
                            now += 1;
                            processor.on_event(ev, now, &mut pending);
                            while !pending.is_empty() {
                                for a in std::mem::take(&mut pending) {
                                    if let Action::ExecuteTool(inv) = a {
                                        let (out, err) = match scripts.answer(&inv.tool, &inv.input)
                                        {
                                            Some(Ok(a)) => (a.output, a.is_error),
                                            Some(Err(m)) => {
                                                let a = m.to_answer();
                                                (a.output, a.is_error)
                                            }
                                            None => {
                                                match tools.tool_result(&inv.call_id, &inv.tool) {
                                                    Some(t) => (
                                                        match &t.output {
                                                            Value::String(s) => s.clone(),
                                                            o => o.to_string(),
                                                        },
                                                        t.error,
                                                    ),
                                                    None => ("no result".into(), true),
                                                }
                                            }
                                        };
                                        processor.on_tool_result(&inv.call_id, out, err, now);
                                    }
                                }
                            }
                            if processor.is_done() {
                                break;
                            }
                        }
                        action = processor.on_attempt_end(now);
                    }
                }
            }
        }
    }
    panic!("the processor did not stop within 1000 actions");
}

fn assert_same_run(label: &str, rec: &RunRecord, http: &Outcome) {
    let finish = http.termination.map(|t| t.as_str()).unwrap_or("none");
    assert_eq!(finish, rec.finish.as_str(), "{label}: finish");
    assert_eq!(http.steps.len() as u32, rec.steps, "{label}: steps");
    assert_eq!(http.tool_calls, rec.tool_calls, "{label}: tool calls");
    let over_http: Vec<_> = http
        .retries
        .iter()
        .map(|x| (x.step, x.attempt, x.status, x.delay_ms))
        .collect();
    let replayed: Vec<_> = rec
        .retries
        .iter()
        .map(|x| (x.step, x.attempt, x.status, x.delay_ms))
        .collect();
    assert_eq!(over_http, replayed, "{label}: retries");
    assert_eq!(
        http.doom_loop.as_ref().map(|d| d.step),
        rec.doom_loop.as_ref().map(|d| d.step),
        "{label}: doom loop"
    );
}

#[test]
fn serve_plays_interactions_in_the_runners_order() {
    let scenarios = [
        "call-with-tools",
        "retry-429-retry-after",
        "retry-anthropic-overloaded",
        "retry-connection-reset",
        "retry-5xx-exhausted",
        "retry-gemini-429-body-hint",
        "doom-sequential-repeat",
        "doom-fanout",
        "polling-job-status",
        "text-repeat",
        "reasoning-anthropic-thinking",
        "max-steps",
    ];
    let rt = runtime();
    let mut checked = 0;
    let mut retried = 0;
    for name in scenarios {
        let path = repo(&format!("scenarios/{name}.toml"));
        let sc =
            tapeloop::scenario::load_checked(&path).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        for c in &sc.cassettes {
            let cassette = load(&c.path);
            let rec = replay(&sc, &cassette, &c.path, &RunOptions::default())
                .expect("replayable cassette");
            let consumed = cassette.interactions.len() - rec.unused_interactions as usize;
            let want: Vec<u64> = cassette.interactions[..consumed]
                .iter()
                .map(|i| i.id)
                .collect();
            let label = format!("{name} / {}", Path::new(&c.path).display());
            let (outcome, served, summary) = rt.block_on(async {
                let server = start(
                    std::slice::from_ref(&c.path),
                    // Not strict: the corpus request lines are rebuilt by the corpus builder
                    // and the scenarios match by sequence, as the runner does here.
                    options(Pace::Instant, false),
                )
                .await;
                let outcome = drive_over_http(&sc, &cassette, server.addr(), "runner").await;
                let st = status(server.addr()).await;
                (
                    outcome,
                    session_ids(&st, "header:runner"),
                    server.shutdown().await,
                )
            });
            assert_eq!(served, want, "{label}: interaction order");
            assert_same_run(&label, &rec, &outcome);
            retried += usize::from(!rec.retries.is_empty());
            assert_eq!(
                summary.cassettes[0].unused.len(),
                rec.unused_interactions as usize,
                "{label}: unused"
            );
            checked += 1;
        }
    }
    assert!(checked >= scenarios.len());
    assert!(retried >= 5, "the set must exercise retries over HTTP");
}
