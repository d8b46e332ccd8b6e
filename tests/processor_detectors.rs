//! Doom-loop detectors on their positive and negative shapes (FORMATS.md table, reference §2),
//! and the doom actions.

mod processor_support;

use processor_support::*;
use serde_json::json;
use tapeloop::event::{StreamEvent, ToolCall};
use tapeloop::processor::{DetectorSpec, DoomAction, StepStatus, Termination};

use tapeloop::conversation::Message;

type Expect = &'static [(&'static str, Option<(u32, &'static str)>)];

struct Case {
    name: &'static str,
    steps: Vec<Vec<StreamEvent>>,
    /// Tool outputs, consumed in call order (then "ok").
    outputs: &'static [&'static str],
    expect: Expect,
}

fn a(id: &str) -> Vec<StreamEvent> {
    call(id, "read", json!({"path": "src/main.rs"}))
}
fn b(id: &str) -> Vec<StreamEvent> {
    call(id, "grep", json!({"pattern": "fn main"}))
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "A,A,A in one response",
            steps: vec![tool_step(vec![a("1"), a("2"), a("3")]), final_text("done")],
            outputs: &[],
            expect: &[
                ("opencode", Some((1, "read"))),
                ("seed", Some((1, "read"))),
                ("consecutive:3", Some((1, "read"))),
            ],
        },
        Case {
            name: "A,A,A across steps",
            steps: vec![
                tool_step(vec![a("1")]),
                tool_step(vec![a("2")]),
                tool_step(vec![a("3")]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[
                ("opencode", None),
                ("seed", Some((3, "read"))),
                ("consecutive:3", Some((3, "read"))),
                ("consecutive:4", None),
            ],
        },
        Case {
            name: "A,B,A,B,A,B across steps",
            steps: vec![
                tool_step(vec![a("1")]),
                tool_step(vec![b("2")]),
                tool_step(vec![a("3")]),
                tool_step(vec![b("4")]),
                tool_step(vec![a("5")]),
                tool_step(vec![b("6")]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[
                ("cycle:2:3", Some((6, "grep"))),
                ("cycle:1:3", None),
                ("consecutive:2", None),
                ("seed", None),
                ("opencode", None),
            ],
        },
        Case {
            name: "A,B,A,B,A,B in one response",
            steps: vec![
                tool_step(vec![a("1"), b("2"), a("3"), b("4"), a("5"), b("6")]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[
                ("cycle:2:3", Some((1, "grep"))),
                ("cycle:4:2", Some((1, "grep"))),
                ("opencode", None),
                ("seed", None),
            ],
        },
        Case {
            name: "key-reordered arguments in one response",
            steps: vec![
                tool_step(vec![
                    call_raw("1", "read", r#"{"path":"a.rs","limit":10}"#),
                    call_raw("2", "read", r#"{"limit":10,"path":"a.rs"}"#),
                    call_raw("3", "read", r#"{"path":"a.rs","limit":10}"#),
                ]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("opencode", None), ("seed", Some((1, "read")))],
        },
        Case {
            name: "integer-like keys are hoisted by JS, so opencode sees them equal",
            steps: vec![
                tool_step(vec![
                    call_raw("1", "read", r#"{"b":1,"2":0}"#),
                    call_raw("2", "read", r#"{"2":0,"b":1}"#),
                    call_raw("3", "read", r#"{"b":1,"2":0}"#),
                ]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("opencode", Some((1, "read"))), ("seed", Some((1, "read")))],
        },
        Case {
            name: "whitespace-different arguments in one response",
            steps: vec![
                tool_step(vec![
                    call_raw("1", "read", r#"{"path":"a.rs"}"#),
                    call_raw("2", "read", "{ \"path\" :\n \"a.rs\" }"),
                    call_raw("3", "read", r#"{"path":   "a.rs"}"#),
                ]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("opencode", Some((1, "read"))), ("seed", Some((1, "read")))],
        },
        Case {
            name: "text between calls resets opencode",
            steps: vec![
                tool_step(vec![a("1"), text("t", "checking again"), a("2"), a("3")]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("opencode", None), ("seed", Some((1, "read")))],
        },
        Case {
            name: "reasoning between calls resets opencode too",
            steps: vec![
                tool_step(vec![
                    a("1"),
                    vec![
                        StreamEvent::ReasoningStart {
                            id: "r".into(),
                            metadata: None,
                        },
                        StreamEvent::ReasoningDelta {
                            id: "r".into(),
                            text: "hmm".into(),
                        },
                        StreamEvent::ReasoningEnd {
                            id: "r".into(),
                            metadata: None,
                        },
                    ],
                    a("2"),
                    a("3"),
                ]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("opencode", None), ("seed", Some((1, "read")))],
        },
        Case {
            name: "an empty text part is never persisted, so it does not reset opencode",
            steps: vec![
                tool_step(vec![
                    a("1"),
                    vec![StreamEvent::TextStart { id: "t".into() }],
                    a("2"),
                    a("3"),
                ]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("opencode", Some((1, "read")))],
        },
        Case {
            name: "identical call with changing result (polling)",
            steps: vec![
                tool_step(vec![a("1")]),
                tool_step(vec![a("2")]),
                tool_step(vec![a("3")]),
                final_text("done"),
            ],
            outputs: &["pending", "running", "finished"],
            expect: &[
                ("no-progress:3", None),
                ("consecutive:3", Some((3, "read"))),
            ],
        },
        Case {
            name: "identical call with identical result",
            steps: vec![
                tool_step(vec![a("1")]),
                tool_step(vec![a("2")]),
                tool_step(vec![a("3")]),
                final_text("done"),
            ],
            outputs: &["same", "same", "same"],
            expect: &[
                ("no-progress:3", Some((3, "read"))),
                ("no-progress:4", None),
            ],
        },
        Case {
            name: "re-running tests after a fix is not no-progress",
            steps: vec![
                tool_step(vec![call("1", "bash", json!({"cmd": "cargo test"}))]),
                tool_step(vec![call("2", "edit", json!({"path": "a.rs"}))]),
                tool_step(vec![call("3", "bash", json!({"cmd": "cargo test"}))]),
                tool_step(vec![call("4", "bash", json!({"cmd": "cargo test"}))]),
                final_text("done"),
            ],
            outputs: &["FAILED 1 test", "ok", "FAILED 1 test", "ok 12 passed"],
            expect: &[
                ("no-progress:2", None),
                ("cycle:2:3", None),
                ("consecutive:2", Some((4, "bash"))),
            ],
        },
        Case {
            name: "repeated fan-out, any order",
            steps: vec![
                tool_step(vec![a("1"), b("2")]),
                tool_step(vec![b("3"), a("4")]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[
                ("fanout:2", Some((2, "grep,read"))),
                ("fanout:3", None),
                ("opencode", None),
            ],
        },
        Case {
            name: "fan-outs that differ, or single calls, are not fan-out loops",
            steps: vec![
                tool_step(vec![a("1"), b("2")]),
                tool_step(vec![a("3"), call("4", "grep", json!({"pattern": "other"}))]),
                tool_step(vec![a("5")]),
                tool_step(vec![a("6")]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[("fanout:2", None)],
        },
        Case {
            name: "repeated text",
            steps: vec![
                tool_step(vec![text("t", "Let me check the file.  "), a("1")]),
                tool_step(vec![
                    text("t", "Let me check the file."),
                    call("2", "read", json!({"path": "b.rs"})),
                ]),
                final_text("done"),
            ],
            outputs: &[],
            expect: &[
                ("text-repeat:2", Some((2, ""))),
                ("text-repeat:3", None),
                ("seed", None),
            ],
        },
        Case {
            name: "different or empty texts do not repeat",
            steps: vec![
                tool_step(vec![a("1")]),
                tool_step(vec![a("2")]),
                tool_step(vec![text("t", "one"), b("3")]),
                final_text("two"),
            ],
            outputs: &[],
            expect: &[("text-repeat:2", None)],
        },
    ]
}

#[test]
fn detectors_fire_on_their_shapes_and_miss_the_others() {
    for case in cases() {
        let specs: Vec<&str> = case.expect.iter().map(|(d, _)| *d).collect();
        let mut config = with_detectors(&specs);
        config.doom_action = DoomAction::Allow;
        let mut outputs = case.outputs.iter();
        let r = run_with(config, case.steps, |_| {
            (outputs.next().copied().unwrap_or("ok").to_string(), false)
        });
        let o = &r.outcome;
        assert_eq!(o.termination, Some(Termination::Completed), "{}", case.name);
        assert_eq!(o.detectors.len(), case.expect.len());
        for ((name, want), report) in case.expect.iter().zip(&o.detectors) {
            assert_eq!(report.detector.to_string(), *name);
            let got = report.first.as_ref().map(|d| (d.step, d.tool.as_str()));
            assert_eq!(got, *want, "{}: detector {name}", case.name);
            if let Some(d) = &report.first {
                assert!(!d.rule.is_empty());
            }
        }
    }
}

#[test]
fn opencode_fires_on_parallel_calls_once_none_is_pending() {
    // All three tool-input-starts stream first (pending parts), then the tool-calls.
    let mut body = Vec::new();
    for id in ["1", "2", "3"] {
        body.push(StreamEvent::ToolInputStart {
            id: id.into(),
            tool: "read".into(),
            provider_executed: false,
        });
    }
    for id in ["1", "2", "3"] {
        body.push(StreamEvent::ToolCall(ToolCall {
            id: id.into(),
            tool: "read".into(),
            input: json!({"path": "a"}),
            provider_executed: false,
            metadata: None,
        }));
    }
    let r = run(config(), vec![tool_step(vec![body]), final_text("done")]);
    let d = r.outcome.doom_loop.expect("fires");
    assert_eq!((d.step, d.call_index), (1, 3));
    assert_eq!(r.outcome.termination, Some(Termination::DoomLoop));
}

#[test]
fn run_doom_loop_is_the_earliest_call_then_the_first_listed() {
    let steps = || {
        vec![
            tool_step(vec![a("1"), a("2"), a("3"), a("4")]),
            final_text("done"),
        ]
    };
    let mut c = with_detectors(&["consecutive:4", "opencode", "seed"]);
    c.doom_action = DoomAction::Allow;
    let o = run(c, steps()).outcome;
    let d = o.doom_loop.unwrap();
    assert_eq!((d.detector, d.call_index), (DetectorSpec::Opencode, 3));
    assert_eq!(o.detectors[0].first.as_ref().unwrap().call_index, 4);

    let mut c = with_detectors(&["seed", "opencode"]);
    c.doom_action = DoomAction::Allow;
    assert_eq!(
        run(c, steps()).outcome.doom_loop.unwrap().detector,
        DetectorSpec::Seed
    );
}

#[test]
fn doom_actions() {
    let script = || vec![tool_step(vec![a("1"), a("2"), a("3")]), final_text("done")];
    for (action, termination, status) in [
        (
            DoomAction::Allow,
            Termination::Completed,
            StepStatus::Completed,
        ),
        (
            DoomAction::AskAllow,
            Termination::Completed,
            StepStatus::Completed,
        ),
        (
            DoomAction::Deny,
            Termination::DoomLoop,
            StepStatus::DoomLoop,
        ),
        (
            DoomAction::AskReject,
            Termination::DoomLoop,
            StepStatus::DoomLoop,
        ),
    ] {
        let mut c = config();
        c.doom_action = action;
        let r = run(c, script());
        let o = &r.outcome;
        assert_eq!(o.termination, Some(termination), "{action}");
        assert_eq!(o.steps[0].status, status, "{action}");
        assert!(
            o.doom_loop.is_some(),
            "{action}: the detection is reported either way"
        );
        // The call that triggered the detection is still executed (reference §2.2).
        assert_eq!(r.executed.len(), 3, "{action}");
        if termination == Termination::DoomLoop {
            assert_eq!(o.steps.len(), 1);
            assert!(o
                .termination_detail
                .as_deref()
                .unwrap()
                .starts_with("opencode: "));
            // Era A cleanup: the triggering call's part is closed as aborted.
            let Some(Message::Tool { results }) = o.conversation.messages.last() else {
                panic!("tool results in history")
            };
            assert_eq!(results.len(), 3);
            assert_eq!(results[2].output, "Tool execution aborted");
            assert!(results[2].is_error);
        } else {
            assert_eq!(o.steps.len(), 2);
        }
    }
}

#[test]
fn result_and_finish_time_detectors_stop_at_the_next_event() {
    // no-progress fires when the result arrives; the run stops at the next event.
    let mut c = with_detectors(&["no-progress:2"]);
    c.doom_action = DoomAction::Deny;
    let r = run_with(
        c,
        vec![tool_step(vec![a("1"), a("2"), a("3")]), final_text("done")],
        |_| ("same".into(), false),
    );
    assert_eq!(r.outcome.termination, Some(Termination::DoomLoop));
    assert_eq!(r.executed.len(), 2);
    assert_eq!(r.outcome.doom_loop.unwrap().call_index, 2);

    let mut c = with_detectors(&["text-repeat:2"]);
    c.doom_action = DoomAction::AskReject;
    let r = run(
        c,
        vec![
            tool_step(vec![text("t", "Retrying."), a("1")]),
            tool_step(vec![text("t", "Retrying."), b("2")]),
            final_text("done"),
        ],
    );
    assert_eq!(r.outcome.termination, Some(Termination::DoomLoop));
    assert_eq!(r.outcome.steps.len(), 2);
    assert_eq!(r.outcome.steps[1].status, StepStatus::DoomLoop);
    // The step finished, so its usage counts.
    assert_eq!(r.outcome.usage.input, 200);
}

#[test]
fn no_detectors_means_no_detection() {
    let mut c = config();
    c.detectors.clear();
    let r = run(
        c,
        vec![tool_step(vec![a("1"), a("2"), a("3")]), final_text("done")],
    );
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
    assert!(r.outcome.doom_loop.is_none());
    assert!(r.outcome.detectors.is_empty());
}

#[test]
fn seed_detector_treats_null_arguments_as_empty_object() {
    let mut c = with_detectors(&["seed"]);
    c.doom_action = DoomAction::Allow;
    let r = run(
        c,
        vec![
            tool_step(vec![call("1", "list", json!({}))]),
            tool_step(vec![call("2", "list", json!(null))]),
            tool_step(vec![call("3", "list", json!({}))]),
            final_text("done"),
        ],
    );
    assert_eq!(
        r.outcome.detectors[0].first.as_ref().map(|d| d.step),
        Some(3)
    );
    // A null input is not an object: the call fails as invalid arguments, not executed.
    assert_eq!(r.executed.len(), 2);
}
