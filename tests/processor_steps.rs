//! The stream state machine and the outer loop (reference §1, §4, §7): parts, tool-part
//! transitions, termination reasons, step limits, abort, determinism and robustness.

mod processor_support;

use processor_support::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use tapeloop::conversation::{AssistantPart, Message};
use tapeloop::event::{ErrorClass, FinishReason, ProviderError, StreamEvent, ToolCall};
use tapeloop::processor::{
    Action, Processor, RequestKind, StepStatus, Termination, MAX_STEPS_PROMPT,
};

fn parts_of(m: &Message) -> Vec<Value> {
    match m {
        Message::Assistant { parts } => parts
            .iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect(),
        other => panic!("not an assistant message: {other:?}"),
    }
}

#[test]
fn finish_reasons_continue_or_complete() {
    // reference §4.2: tool-calls and unknown continue; everything else ends the loop.
    let cases = [
        (FinishReason::ToolCalls, 2, Termination::Completed),
        (FinishReason::Unknown, 2, Termination::Completed),
        (FinishReason::Stop, 1, Termination::Completed),
        (FinishReason::Length, 1, Termination::Completed),
        (FinishReason::ContentFilter, 1, Termination::Completed),
        (FinishReason::Error, 1, Termination::Completed),
        (FinishReason::Other, 1, Termination::Completed),
    ];
    for (reason, steps, termination) in cases {
        let r = run(
            config(),
            vec![response(vec![text("t", "hi")], reason), final_text("done")],
        );
        assert_eq!(r.outcome.steps.len(), steps, "{reason}");
        assert_eq!(r.outcome.termination, Some(termination));
        assert_eq!(r.outcome.steps[0].finish_reason, Some(reason));
    }
}

#[test]
fn text_reasoning_and_tool_parts_become_history() {
    let step1 = vec![
        StreamEvent::StartStep,
        StreamEvent::ReasoningStart {
            id: "r".into(),
            metadata: None,
        },
        StreamEvent::ReasoningDelta {
            id: "r".into(),
            text: "think  \n".into(),
        },
        StreamEvent::ReasoningStart {
            id: "r".into(),
            metadata: Some(json!({"ignored": true})),
        },
        StreamEvent::ReasoningEnd {
            id: "r".into(),
            metadata: Some(json!({"signature": "sig"})),
        },
        StreamEvent::TextStart { id: "t".into() },
        StreamEvent::TextDelta {
            id: "t".into(),
            text: "Reading ".into(),
        },
        StreamEvent::TextDelta {
            id: "t".into(),
            text: "the file.  \n".into(),
        },
        StreamEvent::TextEnd { id: "t".into() },
        StreamEvent::ToolInputStart {
            id: "c1".into(),
            tool: "read".into(),
            provider_executed: false,
        },
        StreamEvent::ToolInputDelta {
            id: "c1".into(),
            delta: "{\"pa".into(),
        },
        StreamEvent::ToolInputEnd { id: "c1".into() },
        StreamEvent::ToolCall(ToolCall {
            id: "c1".into(),
            tool: "read".into(),
            input: json!({"path": "a.rs"}),
            provider_executed: false,
            metadata: Some(json!({"k": 1})),
        }),
        StreamEvent::ToolInputStart {
            id: "c2".into(),
            tool: "read".into(),
            provider_executed: false,
        },
        StreamEvent::ToolCall(ToolCall {
            id: "c2".into(),
            tool: "read".into(),
            input: json!({"path": "b.rs"}),
            provider_executed: false,
            metadata: None,
        }),
        finish(FinishReason::ToolCalls, usage(100, 10)),
    ];
    let r = run_with(config(), vec![step1, final_text("done")], |inv| {
        if inv.input["path"] == "b.rs" {
            ("ENOENT".into(), true)
        } else {
            ("fn main() {}".into(), false)
        }
    });
    let o = &r.outcome;
    assert_eq!(o.tool_calls, 2);
    assert_eq!(o.steps[0].tool_calls, vec!["read", "read"]);
    assert_eq!(r.executed.len(), 2);
    let msgs = &r.sends[1].conversation.messages;
    assert_eq!(msgs.len(), 3);
    let parts = parts_of(&msgs[1]);
    assert_eq!(
        parts[0],
        json!({"type": "reasoning", "text": "think", "metadata": {"signature": "sig"}})
    );
    assert_eq!(
        parts[1],
        json!({"type": "text", "text": "Reading the file."})
    );
    assert_eq!(
        parts[2],
        json!({"type": "tool-call", "id": "c1", "tool": "read", "input": {"path": "a.rs"}, "metadata": {"k": 1}})
    );
    let Message::Tool { results } = &msgs[2] else {
        panic!()
    };
    assert_eq!(
        (results[0].output.as_str(), results[0].is_error),
        ("fn main() {}", false)
    );
    // A tool error does not stop the loop; it goes back as a result (reference §7 tier 1).
    assert_eq!(
        (results[1].output.as_str(), results[1].is_error),
        ("ENOENT", true)
    );
    assert_eq!(o.termination, Some(Termination::Completed));
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
}

#[test]
fn tool_call_without_input_start_is_selectable() {
    let bare = |id: &str| {
        StreamEvent::ToolCall(ToolCall {
            id: id.into(),
            tool: "read".into(),
            input: json!({"path": "a"}),
            provider_executed: false,
            metadata: None,
        })
    };
    let script = || {
        vec![
            response(
                vec![vec![bare("1"), bare("2"), bare("3")]],
                FinishReason::ToolCalls,
            ),
            final_text("done"),
        ]
    };
    // [C] ensureToolCall (default): parts are created, opencode sees the loop.
    let r = run(config(), script());
    assert_eq!(r.outcome.termination, Some(Termination::DoomLoop));
    // Era A: no part, no history entry, opencode blind; the SDK still executes the calls.
    let mut c = config();
    c.ensure_tool_call = false;
    let r = run(c, script());
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
    assert_eq!(r.executed.len(), 3);
    assert_eq!(r.outcome.tool_calls, 3);
    assert_eq!(
        r.sends[1].conversation.messages.len(),
        1,
        "nothing appended"
    );
    assert_eq!(r.outcome.warnings.len(), 3);
}

#[test]
fn invalid_arguments_become_a_tool_error() {
    let r = run(
        config(),
        vec![
            tool_step(vec![call("1", "read", json!("a.rs"))]),
            final_text("done"),
        ],
    );
    assert!(r.executed.is_empty());
    let Message::Tool { results } = &r.sends[1].conversation.messages[2] else {
        panic!()
    };
    assert!(results[0].is_error);
    assert!(
        results[0]
            .output
            .starts_with("Invalid arguments for tool `read`"),
        "{}",
        results[0].output
    );
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
}

#[test]
fn provider_executed_tools_are_recorded_not_executed() {
    let mut step = vec![StreamEvent::StartStep];
    step.extend(server_call("ws", "web_search", json!({"q": "rust"})));
    step.extend([
        StreamEvent::ToolResult {
            id: "ws".into(),
            tool: "web_search".into(),
            output: json!([{"url": "https://rust-lang.org"}]),
            is_error: false,
        },
        StreamEvent::ToolResult {
            id: "nope".into(),
            tool: "web_search".into(),
            output: json!(null),
            is_error: false,
        },
        finish(FinishReason::Stop, usage(10, 1)),
    ]);
    let r = run(config(), vec![step]);
    assert!(r.executed.is_empty());
    // Server tools are recorded in the history but are not the loop's tool calls.
    assert_eq!(r.outcome.tool_calls, 0);
    let parts = parts_of(&r.outcome.conversation.messages[1]);
    assert_eq!(parts[0]["provider_executed"], json!(true));
    assert_eq!(
        parts[1],
        json!({"type": "tool-result", "id": "ws", "tool": "web_search", "output": [{"url": "https://rust-lang.org"}]})
    );
    assert_eq!(
        r.outcome.conversation.messages.len(),
        2,
        "no client tool results message"
    );
    assert_eq!(r.outcome.warnings.len(), 1, "{:?}", r.outcome.warnings);
}

#[test]
fn results_apply_only_to_running_parts() {
    let mut p = Processor::new(config(), conversation());
    let mut acts = Vec::new();
    assert!(matches!(p.start(0), Action::Send(_)));
    p.on_event(&StreamEvent::StartStep, 1, &mut acts);
    p.on_event(
        &StreamEvent::ToolInputStart {
            id: "c".into(),
            tool: "read".into(),
            provider_executed: false,
        },
        2,
        &mut acts,
    );
    // Pending, not running: ignored with a warning.
    p.on_tool_result("c", "early".into(), false, 3);
    p.on_tool_result("zzz", "unknown".into(), false, 3);
    assert_eq!(p.outcome().warnings.len(), 2);
    p.on_event(
        &StreamEvent::ToolCall(ToolCall {
            id: "c".into(),
            tool: "read".into(),
            input: json!({}),
            provider_executed: false,
            metadata: None,
        }),
        4,
        &mut acts,
    );
    assert!(matches!(&acts[..], [Action::ExecuteTool(inv)] if inv.call_id == "c" && inv.step == 1));
    p.on_tool_result("c", "ok".into(), false, 5);
    p.on_tool_result("c", "again".into(), false, 5);
    assert_eq!(p.outcome().warnings.len(), 3);
    p.on_event(&finish(FinishReason::Stop, usage(1, 1)), 6, &mut acts);
    assert_eq!(p.on_attempt_end(7), Action::Stop(Termination::Completed));
    let Message::Tool { results } = &p.outcome().conversation.messages[2] else {
        panic!()
    };
    assert_eq!(results[0].output, "ok");
}

#[test]
fn hard_and_soft_step_limits() {
    let loop_steps = |n: usize| -> Vec<Vec<StreamEvent>> {
        (0..n)
            .map(|i| tool_step(vec![call(&i.to_string(), "read", json!({"path": i}))]))
            .collect()
    };
    // Hard: stop with max-steps after this many steps.
    let mut c = config();
    c.max_steps = Some(3);
    let r = run(c, loop_steps(10));
    assert_eq!(r.outcome.termination, Some(Termination::MaxSteps));
    assert_eq!(r.outcome.steps.len(), 3);
    assert!(r
        .outcome
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Completed));
    // A final answer on the last allowed step is a completion, not max-steps.
    let mut c = config();
    c.max_steps = Some(2);
    let r = run(c, vec![loop_steps(1).remove(0), final_text("done")]);
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
    // Soft: the prefill from step 3 on, tools still offered, never stops.
    let mut c = config();
    c.soft_max_steps = Some(3);
    let mut script = loop_steps(5);
    script.push(final_text("done"));
    let r = run(c, script);
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
    assert_eq!(r.outcome.steps.len(), 6);
    for send in &r.sends {
        let last = send.conversation.messages.last().unwrap();
        let prefilled = matches!(last, Message::Assistant { parts } if parts == &vec![AssistantPart::Text { text: MAX_STEPS_PROMPT.into() }]);
        assert_eq!(prefilled, send.step >= 3, "step {}", send.step);
        assert_eq!(send.conversation.tools.len(), 1);
    }
    assert!(MAX_STEPS_PROMPT.starts_with("CRITICAL - MAXIMUM STEPS REACHED"));
    assert!(MAX_STEPS_PROMPT
        .contains("Tools are disabled until next user input. Respond with text only."));
    // The prefill is never stored.
    assert!(!serde_json::to_string(&r.outcome.conversation)
        .unwrap()
        .contains("CRITICAL"));
    // max_steps 0: nothing is sent.
    let mut c = config();
    c.max_steps = Some(0);
    let mut p = Processor::new(c, conversation());
    assert_eq!(p.start(0), Action::Stop(Termination::MaxSteps));
}

#[test]
fn abort_closes_open_tool_parts() {
    let mut p = Processor::new(config(), conversation());
    let mut acts = Vec::new();
    p.start(0);
    p.on_event(&StreamEvent::StartStep, 1, &mut acts);
    p.on_event(
        &StreamEvent::ToolInputStart {
            id: "a".into(),
            tool: "read".into(),
            provider_executed: false,
        },
        2,
        &mut acts,
    );
    p.on_event(
        &StreamEvent::ToolCall(ToolCall {
            id: "a".into(),
            tool: "read".into(),
            input: json!({"path": "x"}),
            provider_executed: false,
            metadata: None,
        }),
        3,
        &mut acts,
    );
    p.terminate(Termination::Aborted, Some("ctrl-c".into()), 10);
    p.terminate(Termination::Divergence, None, 11);
    let o = p.outcome();
    assert_eq!(o.termination, Some(Termination::Aborted));
    assert_eq!(o.termination_detail.as_deref(), Some("ctrl-c"));
    assert_eq!(o.steps[0].status, StepStatus::Error);
    assert_eq!(o.steps[0].finished_ms, Some(10));
    let Message::Tool { results } = &o.conversation.messages[2] else {
        panic!()
    };
    assert_eq!(results[0].output, "Tool execution aborted");
    // After the end, everything answers Stop.
    acts.clear();
    p.on_event(&StreamEvent::StartStep, 12, &mut acts);
    assert_eq!(acts, vec![Action::Stop(Termination::Aborted)]);
    assert_eq!(p.on_attempt_end(13), Action::Stop(Termination::Aborted));
    assert_eq!(p.on_wait_elapsed(13), Action::Stop(Termination::Aborted));
}

#[test]
fn an_unanswered_request_is_not_a_step() {
    let r = run(
        config(),
        vec![tool_step(vec![call("1", "read", json!({}))])],
    );
    assert_eq!(r.outcome.termination, Some(Termination::CassetteExhausted));
    assert_eq!(r.outcome.steps.len(), 1);
    assert_eq!(r.sends.len(), 2);
}

/// A step is a model request with its retries: opencode's assistant message, created before
/// the request. A step whose every attempt failed (no 2xx, so no `start-step`) still counts,
/// once, however many attempts it made.
#[test]
fn a_step_that_only_failed_counts_once() {
    use tapeloop::processor::RetryPreset;
    let storm = |n: usize| -> Vec<Vec<StreamEvent>> {
        (0..n)
            .map(|_| http_error(500, ErrorClass::Server, true, None))
            .collect()
    };
    let before = |mut first: Vec<Vec<StreamEvent>>, rest: Vec<Vec<StreamEvent>>| {
        first.extend(rest);
        first
    };
    // (case, retry preset, responses, finish, steps, attempts of the last step)
    let cases = [
        (
            "5xx storm: opencode gives up after 5 retries",
            RetryPreset::Opencode,
            storm(6),
            Termination::RetriesExhausted,
            1,
            6,
        ),
        (
            "a non-retryable error",
            RetryPreset::Opencode,
            vec![http_error(400, ErrorClass::InvalidRequest, false, None)],
            Termination::ProviderError,
            1,
            1,
        ),
        // The fourth attempt is sent and never answered: it counts as an attempt, not a step.
        (
            "5xx storm until the cassette runs out",
            RetryPreset::OpencodeClassic,
            storm(3),
            Termination::CassetteExhausted,
            1,
            4,
        ),
        (
            "a storm after a successful step",
            RetryPreset::Opencode,
            before(
                vec![tool_step(vec![call("1", "read", json!({}))])],
                storm(6),
            ),
            Termination::RetriesExhausted,
            2,
            6,
        ),
    ];
    for (case, preset, responses, finish, steps, attempts) in cases {
        let mut c = config();
        c.retry = preset;
        let r = run(c, responses);
        let o = &r.outcome;
        assert_eq!(o.termination, Some(finish), "{case}");
        assert_eq!(o.steps.len(), steps, "{case}");
        let last = o.steps.last().unwrap();
        assert_eq!(last.status, StepStatus::Error, "{case}");
        assert_eq!(last.attempts, attempts, "{case}");
        assert_eq!(last.finish_reason, None, "{case}");
    }
}

#[test]
fn steps_carry_times_tokens_and_cost() {
    let r = run(
        config(),
        vec![
            tool_step(vec![call("1", "read", json!({}))]),
            final_text("done"),
        ],
    );
    let o = &r.outcome;
    let s = &o.steps[0];
    assert_eq!(
        (s.number, s.kind, s.started_ms, s.attempts),
        (1, RequestKind::Step, 0, 1)
    );
    assert_eq!(s.finished_ms, Some(5));
    assert_eq!(o.steps[1].started_ms, 5);
    assert_eq!(o.usage.input, 200);
    assert_eq!(o.usage.output, 20);
    // gpt-4o-mini: 0.15 in, 0.60 out per million.
    let want = 200.0 * 0.15 / 1e6 + 20.0 * 0.6 / 1e6;
    assert!((o.cost_usd - want).abs() < 1e-12, "{}", o.cost_usd);
    assert!((s.cost_usd - want / 2.0).abs() < 1e-12);
    assert_eq!(o.sim_ms, o.steps[1].finished_ms.unwrap());
}

#[test]
fn replaying_twice_gives_identical_outcomes() {
    let script = || {
        vec![
            rate_limited(None),
            tool_step(vec![
                text("t", "Let me read."),
                call("1", "read", json!({"path": "a", "n": 1.5})),
            ]),
            http_error(503, ErrorClass::Overloaded, true, None),
            tool_step(vec![call("2", "read", json!({"path": "a", "n": 1.5}))]),
            final_text("done"),
        ]
    };
    let mut c = with_detectors(&[
        "opencode",
        "seed",
        "cycle:3:2",
        "no-progress:2",
        "text-repeat:2",
        "fanout:2",
    ]);
    c.seed = 42;
    let a = serde_json::to_string(&run(c.clone(), script()).outcome).unwrap();
    let b = serde_json::to_string(&run(c, script()).outcome).unwrap();
    assert_eq!(a, b);
    assert!(
        a.contains("\"retries\":[{\"step\":1,\"attempt\":1,\"status\":429"),
        "{a}"
    );
}

#[test]
fn anomalies_are_warnings_not_panics() {
    let weird = vec![
        StreamEvent::TextDelta {
            id: "x".into(),
            text: "no start".into(),
        },
        StreamEvent::TextEnd { id: "x".into() },
        StreamEvent::TextEnd { id: "x".into() },
        StreamEvent::ReasoningDelta {
            id: "nope".into(),
            text: "?".into(),
        },
        StreamEvent::ReasoningEnd {
            id: "nope".into(),
            metadata: None,
        },
        StreamEvent::StartStep,
        StreamEvent::RefusalDelta {
            id: "r".into(),
            text: "I can't".into(),
        },
        finish(FinishReason::Stop, usage(1, 1)),
        finish(FinishReason::Stop, usage(1, 1)),
    ];
    let r = run(config(), vec![weird]);
    let o = &r.outcome;
    assert_eq!(o.termination, Some(Termination::Completed));
    assert_eq!(o.usage.input, 2);
    assert!(o.warnings.len() >= 6, "{:?}", o.warnings);
    let parts = parts_of(&o.conversation.messages[1]);
    assert_eq!(parts[0]["text"], "no start");
    assert_eq!(parts[1]["text"], "I can't");

    // A response without finish-step continues the loop (finish unset), with a warning.
    let r = run(
        config(),
        vec![vec![StreamEvent::StartStep], final_text("done")],
    );
    assert_eq!(r.outcome.steps.len(), 2);
    assert!(r.outcome.warnings[0].contains("without `finish-step`"));

    // Calls in the wrong phase.
    let mut p = Processor::new(config(), conversation());
    let mut acts = Vec::new();
    p.on_event(&StreamEvent::StartStep, 0, &mut acts);
    assert!(matches!(
        p.on_wait_elapsed(0),
        Action::Stop(_) | Action::Send(_)
    ));
    assert!(matches!(p.on_attempt_end(0), Action::Send(_)));
    assert!(matches!(p.start(0), Action::Send(_)));
    assert!(!p.outcome().warnings.is_empty());
}

fn arb_event() -> impl Strategy<Value = StreamEvent> {
    let id = prop_oneof![Just("a".to_string()), Just("b".to_string())];
    let reason = prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::ToolCalls),
        Just(FinishReason::Unknown)
    ];
    prop_oneof![
        Just(StreamEvent::StartStep),
        id.clone().prop_map(|id| StreamEvent::TextStart { id }),
        id.clone().prop_map(|id| StreamEvent::TextDelta {
            id,
            text: "x ".into()
        }),
        id.clone().prop_map(|id| StreamEvent::TextEnd { id }),
        id.clone()
            .prop_map(|id| StreamEvent::ReasoningStart { id, metadata: None }),
        id.clone().prop_map(|id| StreamEvent::ReasoningDelta {
            id,
            text: "r".into()
        }),
        id.clone()
            .prop_map(|id| StreamEvent::ReasoningEnd { id, metadata: None }),
        id.clone().prop_map(|id| StreamEvent::ToolInputStart {
            id,
            tool: "read".into(),
            provider_executed: false
        }),
        (id.clone(), any::<bool>(), any::<bool>()).prop_map(|(id, pe, obj)| {
            StreamEvent::ToolCall(ToolCall {
                id,
                tool: "read".into(),
                input: if obj { json!({"p": 1}) } else { json!(1) },
                provider_executed: pe,
                metadata: None,
            })
        }),
        id.clone().prop_map(|id| StreamEvent::ToolResult {
            id,
            tool: "read".into(),
            output: json!("o"),
            is_error: false
        }),
        (reason, 0u64..300_000).prop_map(|(r, n)| finish(r, usage(n, 10))),
        (any::<bool>(), any::<bool>()).prop_map(|(retryable, overflow)| StreamEvent::Error(
            ProviderError {
                class: if overflow {
                    ErrorClass::ContextOverflow
                } else {
                    ErrorClass::Server
                },
                status: Some(500),
                message: "x".into(),
                retryable,
                retry_after_ms: None,
                code: None,
            }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_event_sequence_terminates_without_panic(
        attempts in prop::collection::vec(prop::collection::vec(arb_event(), 0..12), 0..8),
        compact in any::<bool>(),
    ) {
        let mut c = with_detectors(&["opencode", "seed", "no-progress:2", "fanout:2", "text-repeat:2"]);
        c.context_limit = Some(100_000);
        c.compaction = if compact { tapeloop::processor::CompactionMode::Compact } else { tapeloop::processor::CompactionMode::Stop };
        let r = run(c, attempts);
        prop_assert!(r.outcome.termination.is_some());
        prop_assert!(r.outcome.steps.iter().all(|s| s.status != StepStatus::Running));
    }
}

/// `[limits] output` caps every request at opencode's `min(limit.output, 32_000)`; without it
/// the provider's default applies (no cap sent).
#[test]
fn output_limit_caps_every_request() {
    use tapeloop::conversation::Conversation;
    use tapeloop::processor::{Action, Processor, ProcessorConfig};
    let first_cap = |output: Option<u64>| {
        let mut cfg = ProcessorConfig::new("gpt-4o-mini");
        cfg.output_limit = output;
        match Processor::new(cfg, Conversation::default()).start(0) {
            Action::Send(req) => req.options.max_output_tokens,
            other => panic!("expected a request, got {other:?}"),
        }
    };
    assert_eq!(first_cap(Some(50_000)), Some(32_000));
    assert_eq!(first_cap(Some(4_096)), Some(4_096));
    assert_eq!(first_cap(None), None);
}

/// A request shares the history instead of copying it: a retry sends the very same
/// conversation, and a request kept by the driver still holds the history it was built from
/// after the loop has moved on.
#[test]
fn requests_share_the_history_and_keep_their_own_snapshot() {
    let r = run(
        config(),
        vec![
            http_error(500, ErrorClass::Server, true, None),
            tool_step(vec![call("1", "read", json!({"path": "a"}))]),
            final_text("done"),
        ],
    );
    let [first, retry, next] = r.sends.as_slice() else {
        panic!("{} requests", r.sends.len());
    };
    assert_eq!((retry.step, retry.attempt), (1, 2));
    assert!(
        std::sync::Arc::ptr_eq(&first.conversation, &retry.conversation),
        "a retry rebuilt the conversation instead of sharing it"
    );
    assert_eq!(first.conversation.messages.len(), 1);
    assert_eq!(next.step, 2);
    assert_eq!(next.conversation.messages.len(), 3, "user, assistant, tool");
    assert_eq!(r.outcome.conversation.messages.len(), 4);
}
