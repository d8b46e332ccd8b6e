//! Processor throughput on normalized events: a long tool loop with streamed text, and a run
//! that spends 10 simulated minutes in retry waits (20 × 30 s), which costs microseconds
//! because waits are virtual.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use tapeloop::conversation::{Conversation, Message, ToolSpec};
use tapeloop::event::{ErrorClass, FinishReason, ProviderError, StreamEvent, ToolCall, Usage};
use tapeloop::processor::{Action, DoomAction, Processor, ProcessorConfig, RetryPreset};

fn conversation() -> Conversation {
    Conversation {
        system: Some("You are a coding agent.".into()),
        messages: vec![Message::User {
            content: "Fix the build.".into(),
        }],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Read a file".into(),
            schema: json!({"type": "object"}),
        }],
    }
}

/// `steps` responses, each with 20 text deltas and 2 tool calls; the last one stops.
fn tool_loop(steps: usize) -> Vec<Vec<StreamEvent>> {
    (0..steps)
        .map(|s| {
            let mut evs = vec![
                StreamEvent::StartStep,
                StreamEvent::TextStart { id: "t".into() },
            ];
            for i in 0..20 {
                evs.push(StreamEvent::TextDelta {
                    id: "t".into(),
                    text: format!("token{i} "),
                });
            }
            evs.push(StreamEvent::TextEnd { id: "t".into() });
            let last = s + 1 == steps;
            if !last {
                for c in 0..2 {
                    let id = format!("call_{s}_{c}");
                    evs.push(StreamEvent::ToolInputStart {
                        id: id.clone(),
                        tool: "read".into(),
                        provider_executed: false,
                    });
                    evs.push(StreamEvent::ToolCall(ToolCall {
                        id,
                        tool: "read".into(),
                        input: json!({"path": format!("src/file{s}_{c}.rs"), "limit": 200}),
                        provider_executed: false,
                        metadata: None,
                    }));
                }
            }
            evs.push(StreamEvent::FinishStep {
                finish_reason: if last {
                    FinishReason::Stop
                } else {
                    FinishReason::ToolCalls
                },
                raw_finish_reason: None,
                usage: Usage {
                    input: 1_000,
                    output: 100,
                    reasoning: 0,
                    cache_read: 500,
                    cache_write: 0,
                },
            });
            evs
        })
        .collect()
}

fn drive(config: &ProcessorConfig, script: &[Vec<StreamEvent>]) -> u64 {
    let mut p = Processor::new(config.clone(), conversation());
    let mut now = 0;
    let mut action = p.start(now);
    let mut next = script.iter();
    let mut buf = Vec::new();
    loop {
        match action {
            Action::Send(_) => {
                let Some(events) = next.next() else { break };
                for ev in events {
                    now += 1;
                    p.on_event(ev, now, &mut buf);
                    for a in buf.drain(..) {
                        if let Action::ExecuteTool(inv) = a {
                            p.on_tool_result(&inv.call_id, "fn main() {}".into(), false, now);
                        }
                    }
                }
                action = p.on_attempt_end(now);
            }
            Action::Wait { ms } => {
                now += ms;
                action = p.on_wait_elapsed(now);
            }
            Action::Stop(_) | Action::ExecuteTool(_) => break,
        }
    }
    p.outcome().sim_ms
}

fn bench(c: &mut Criterion) {
    let mut config = ProcessorConfig::new("gpt-4o-mini");
    config.detectors = [
        "opencode",
        "seed",
        "cycle:4:3",
        "no-progress:3",
        "fanout:3",
        "text-repeat:3",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    config.doom_action = DoomAction::Allow;
    let script = tool_loop(100);
    let events: usize = script.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("processor");
    g.throughput(Throughput::Elements(events as u64));
    g.bench_function("tool_loop_100_steps", |b| {
        b.iter(|| black_box(drive(&config, &script)))
    });
    g.finish();

    // 20 retries of 30 s each: 10 simulated minutes.
    let mut retry = ProcessorConfig::new("gpt-4o-mini");
    retry.retry = RetryPreset::OpencodeClassic;
    retry.max_retries = 20;
    let mut storm: Vec<Vec<StreamEvent>> = (0..20)
        .map(|_| {
            vec![StreamEvent::Error(ProviderError {
                class: ErrorClass::RateLimited,
                status: Some(429),
                message: "Too Many Requests".into(),
                retryable: true,
                retry_after_ms: Some(30_000),
                code: None,
            })]
        })
        .collect();
    storm.extend(tool_loop(1));
    assert!(
        drive(&retry, &storm) >= 600_000,
        "10 simulated minutes of waits"
    );
    c.bench_function("processor/retry_storm_10_min", |b| {
        b.iter(|| black_box(drive(&retry, &storm)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
