//! A scripted driver for the processor tests: each `Send` consumes the next scripted attempt,
//! tool calls are answered by a closure, and the clock advances 1 ms per event plus every
//! `Wait`. It follows the driver contract in `tapeloop::processor`'s module docs.
#![allow(dead_code)]

use serde_json::{json, Value};
use tapeloop::conversation::{Conversation, Message, ToolSpec};
use tapeloop::event::{ErrorClass, FinishReason, ProviderError, StreamEvent, ToolCall, Usage};
use tapeloop::processor::{
    Action, DetectorSpec, Outcome, Processor, ProcessorConfig, SendRequest, Termination,
    ToolInvocation,
};

pub struct Run {
    pub outcome: Outcome,
    pub sends: Vec<SendRequest>,
    pub executed: Vec<ToolInvocation>,
    pub waits: Vec<u64>,
}

pub fn conversation() -> Conversation {
    Conversation {
        system: Some("You are a coding agent.".into()),
        messages: vec![Message::User {
            content: "Why does the build fail?".into(),
        }],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Read a file".into(),
            schema: json!({"type":"object","properties":{"path":{"type":"string"}}}),
        }],
    }
}

pub fn config() -> ProcessorConfig {
    ProcessorConfig::new("gpt-4o-mini")
}

pub fn with_detectors(specs: &[&str]) -> ProcessorConfig {
    let mut c = config();
    c.detectors = specs
        .iter()
        .map(|s| s.parse::<DetectorSpec>().unwrap())
        .collect();
    c
}

/// Run with tool outputs `"<tool> ok"`.
pub fn run(config: ProcessorConfig, attempts: Vec<Vec<StreamEvent>>) -> Run {
    run_with(config, attempts, |inv| (format!("{} ok", inv.tool), false))
}

pub fn run_with(
    config: ProcessorConfig,
    attempts: Vec<Vec<StreamEvent>>,
    mut tool: impl FnMut(&ToolInvocation) -> (String, bool),
) -> Run {
    let mut p = Processor::new(config, conversation());
    let mut now = 0u64;
    let mut sends = Vec::new();
    let mut executed = Vec::new();
    let mut waits = Vec::new();
    let mut script = attempts.into_iter();
    let mut action = p.start(now);
    let mut buf = Vec::new();
    'run: loop {
        match action {
            Action::Send(req) => {
                sends.push(req);
                let Some(events) = script.next() else {
                    p.terminate(Termination::CassetteExhausted, None, now);
                    break;
                };
                for ev in &events {
                    now += 1;
                    buf.clear();
                    p.on_event(ev, now, &mut buf);
                    let mut stop = false;
                    for a in buf.drain(..) {
                        match a {
                            Action::ExecuteTool(inv) => {
                                let (out, err) = tool(&inv);
                                p.on_tool_result(&inv.call_id, out, err, now);
                                executed.push(inv);
                            }
                            Action::Stop(_) => stop = true,
                            other => panic!("unexpected action from on_event: {other:?}"),
                        }
                    }
                    if stop {
                        break 'run;
                    }
                }
                now += 1;
                action = p.on_attempt_end(now);
            }
            Action::Wait { ms } => {
                waits.push(ms);
                now += ms;
                action = p.on_wait_elapsed(now);
            }
            Action::Stop(_) => break,
            Action::ExecuteTool(inv) => panic!("ExecuteTool returned outside on_event: {inv:?}"),
        }
    }
    Run {
        outcome: p.into_outcome(),
        sends,
        executed,
        waits,
    }
}

pub fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input,
        output,
        ..Usage::default()
    }
}

pub fn text(id: &str, s: &str) -> Vec<StreamEvent> {
    vec![
        StreamEvent::TextStart { id: id.into() },
        StreamEvent::TextDelta {
            id: id.into(),
            text: s.into(),
        },
        StreamEvent::TextEnd { id: id.into() },
    ]
}

pub fn call(id: &str, tool: &str, input: Value) -> Vec<StreamEvent> {
    tool_events(id, tool, input, false)
}

/// A provider-executed (server) tool call: the provider runs it, the loop never does.
pub fn server_call(id: &str, tool: &str, input: Value) -> Vec<StreamEvent> {
    tool_events(id, tool, input, true)
}

fn tool_events(id: &str, tool: &str, input: Value, provider_executed: bool) -> Vec<StreamEvent> {
    vec![
        StreamEvent::ToolInputStart {
            id: id.into(),
            tool: tool.into(),
            provider_executed,
        },
        StreamEvent::ToolCall(ToolCall {
            id: id.into(),
            tool: tool.into(),
            input,
            provider_executed,
            metadata: None,
        }),
    ]
}

/// A tool call whose arguments are given as raw JSON text (key order kept).
pub fn call_raw(id: &str, tool: &str, raw: &str) -> Vec<StreamEvent> {
    call(id, tool, serde_json::from_str(raw).unwrap())
}

pub fn finish(reason: FinishReason, u: Usage) -> StreamEvent {
    StreamEvent::FinishStep {
        finish_reason: reason,
        raw_finish_reason: None,
        usage: u,
    }
}

/// A response: start-step, the given events, finish-step.
pub fn response(body: Vec<Vec<StreamEvent>>, reason: FinishReason) -> Vec<StreamEvent> {
    let mut evs = vec![StreamEvent::StartStep];
    evs.extend(body.into_iter().flatten());
    evs.push(finish(reason, usage(100, 10)));
    evs
}

pub fn tool_step(calls: Vec<Vec<StreamEvent>>) -> Vec<StreamEvent> {
    response(calls, FinishReason::ToolCalls)
}

pub fn final_text(s: &str) -> Vec<StreamEvent> {
    response(vec![text("t", s)], FinishReason::Stop)
}

pub fn http_error(
    status: u16,
    class: ErrorClass,
    retryable: bool,
    after: Option<u64>,
) -> Vec<StreamEvent> {
    vec![StreamEvent::Error(ProviderError {
        class,
        status: Some(status),
        message: format!("HTTP {status}"),
        retryable,
        retry_after_ms: after,
        code: None,
    })]
}

pub fn rate_limited(after: Option<u64>) -> Vec<StreamEvent> {
    http_error(429, ErrorClass::RateLimited, true, after)
}
