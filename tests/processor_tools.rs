//! The agent's tool set (reference §7 tier 1): calls to tools the agent does not have are
//! rerouted to opencode's `invalid` tool, completed without the driver, and compared by the
//! doom-loop check as `invalid` calls.

mod processor_support;

use std::collections::BTreeSet;

use processor_support::*;
use serde_json::{json, Value};
use tapeloop::conversation::{AssistantPart, Message};
use tapeloop::event::{StreamEvent, ToolCall};
use tapeloop::processor::toolset::INVALID_TOOL;
use tapeloop::processor::{ProcessorConfig, Termination};

/// The error text opencode puts in the `invalid` input for `name`, with tools `read` and
/// `grep` (alphabetical, `invalid` included).
fn unavailable(name: &str) -> String {
    format!("Model tried to call unavailable tool '{name}'. Available tools: grep, invalid, read.")
}

/// The agent's tool names; `None` = no tool set.
type Tools<'a> = Option<&'a [&'a str]>;
/// A step's tool calls (tool, input) and results (output, is_error) as the model sees them.
type Replayed = (Vec<(String, Value)>, Vec<(String, bool)>);

fn with_tools(names: Tools<'_>) -> ProcessorConfig {
    let mut c = config();
    c.tools = names.map(|n| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    c
}

/// The tool calls and results of step 1 as the next request replays them.
fn replayed(conversation: &tapeloop::conversation::Conversation) -> Replayed {
    let calls = match &conversation.messages[1] {
        Message::Assistant { parts } => parts
            .iter()
            .filter_map(|p| match p {
                AssistantPart::ToolCall(ToolCall { tool, input, .. }) => {
                    Some((tool.clone(), input.clone()))
                }
                _ => None,
            })
            .collect(),
        other => panic!("not an assistant message: {other:?}"),
    };
    let results = match &conversation.messages[2] {
        Message::Tool { results } => results
            .iter()
            .map(|r| (r.output.clone(), r.is_error))
            .collect(),
        other => panic!("not tool results: {other:?}"),
    };
    (calls, results)
}

#[test]
fn calls_to_unavailable_tools_are_rerouted() {
    let read = &["read", "grep"][..];
    // (case, tool set, the model's calls in step 1, tools the driver executes, the calls as
    // replayed to the model)
    type Case<'a> = (
        &'a str,
        Tools<'a>,
        Vec<(&'a str, Value)>,
        Vec<&'a str>,
        Vec<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "no tool set: every call is executed",
            None,
            vec![("get_weather", json!({"city": "Paris"}))],
            vec!["get_weather"],
            vec!["get_weather"],
        ),
        (
            "a declared tool is executed",
            Some(read),
            vec![("read", json!({"path": "a"}))],
            vec!["read"],
            vec!["read"],
        ),
        (
            "an unknown tool becomes `invalid` and is not executed",
            Some(read),
            vec![("get_weather", json!({"city": "Paris"}))],
            vec![],
            vec![INVALID_TOOL],
        ),
        (
            "a case variant of a tool is renamed and executed",
            Some(read),
            vec![("Read", json!({"path": "a"}))],
            vec!["read"],
            vec!["read"],
        ),
        (
            "known and unknown calls in one response",
            Some(read),
            vec![
                ("read", json!({"path": "a"})),
                ("check_job", json!({"id": 1})),
            ],
            vec!["read"],
            vec!["read", INVALID_TOOL],
        ),
    ];
    for (case, tools, calls, executed, replayed_tools) in cases {
        let body = calls
            .iter()
            .enumerate()
            .map(|(i, (tool, input))| call(&format!("c{i}"), tool, input.clone()))
            .collect();
        let r = run(with_tools(tools), vec![tool_step(body), final_text("done")]);
        assert_eq!(
            r.outcome.termination,
            Some(Termination::Completed),
            "{case}"
        );
        assert_eq!(
            r.executed
                .iter()
                .map(|i| i.tool.as_str())
                .collect::<Vec<_>>(),
            executed,
            "{case}"
        );
        assert_eq!(
            r.outcome.tool_calls as usize,
            calls.len(),
            "{case}: every call counts"
        );
        let (replayed_calls, results) = replayed(&r.sends[1].conversation);
        assert_eq!(
            replayed_calls
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>(),
            replayed_tools,
            "{case}"
        );
        for (((tool, input), (output, is_error)), (original, _)) in
            replayed_calls.iter().zip(&results).zip(&calls)
        {
            assert!(
                !is_error,
                "{case}: the `invalid` tool completes, it does not fail"
            );
            if tool == INVALID_TOOL {
                let error = unavailable(original);
                assert_eq!(input, &json!({"tool": original, "error": error}), "{case}");
                assert_eq!(
                    serde_json::to_string(input).unwrap(),
                    format!(r#"{{"tool":"{original}","error":"{error}"}}"#),
                    "{case}: key order is opencode's"
                );
                assert_eq!(
                    output,
                    &format!("The arguments provided to the tool are invalid: {error}"),
                    "{case}"
                );
            } else {
                assert_eq!(output, &format!("{tool} ok"), "{case}");
            }
        }
        assert_eq!(results.len(), calls.len(), "{case}: one result per call");
    }
}

#[test]
fn repeated_unknown_calls_fire_the_opencode_check_whatever_their_arguments() {
    let tools = Some(&["read", "grep"][..]);
    let three = |tool: &str, same_args: bool| {
        tool_step(
            (0..3)
                .map(|i| {
                    let arg = if same_args { 0 } else { i };
                    call(&format!("c{i}"), tool, json!({ "n": arg }))
                })
                .collect(),
        )
    };
    // (case, tool set, responses, finish, doom-loop step and tool)
    type Case<'a> = (
        &'a str,
        Tools<'a>,
        Vec<Vec<StreamEvent>>,
        Termination,
        Option<(u32, &'a str)>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "three calls to one unknown tool, different arguments",
            tools,
            vec![three("get_weather", false), final_text("done")],
            Termination::DoomLoop,
            Some((1, INVALID_TOOL)),
        ),
        (
            "the same calls without a tool set are three different calls",
            None,
            vec![three("get_weather", false), final_text("done")],
            Termination::Completed,
            None,
        ),
        (
            "three different unknown tools are three different `invalid` inputs",
            tools,
            vec![
                tool_step(vec![
                    call("a", "get_weather", json!({})),
                    call("b", "check_job", json!({})),
                    call("c", "get_capital", json!({})),
                ]),
                final_text("done"),
            ],
            Termination::Completed,
            None,
        ),
        (
            "one unknown call per step is never caught (opencode is blind across steps)",
            tools,
            vec![
                tool_step(vec![call("a", "get_weather", json!({"n": 1}))]),
                tool_step(vec![call("b", "get_weather", json!({"n": 2}))]),
                tool_step(vec![call("c", "get_weather", json!({"n": 3}))]),
                final_text("done"),
            ],
            Termination::Completed,
            None,
        ),
        (
            "renamed calls compare as the agent's tool",
            tools,
            vec![three("READ", true), final_text("done")],
            Termination::DoomLoop,
            Some((1, "read")),
        ),
    ];
    for (case, tools, responses, finish, doom) in cases {
        let r = run(with_tools(tools), responses);
        assert_eq!(r.outcome.termination, Some(finish), "{case}");
        assert_eq!(
            r.outcome
                .doom_loop
                .as_ref()
                .map(|d| (d.step, d.tool.as_str())),
            doom,
            "{case}"
        );
    }
}

#[test]
fn era_a_dropped_unknown_calls_are_not_executed() {
    // `tool-call` without `tool-input-start`, era A: no part, and the `invalid` tool is
    // opencode's own, so the driver is asked for nothing.
    let mut c = with_tools(Some(&["read"]));
    c.ensure_tool_call = false;
    let step = vec![
        StreamEvent::StartStep,
        StreamEvent::ToolCall(ToolCall {
            id: "x".into(),
            tool: "get_weather".into(),
            input: json!({}),
            provider_executed: false,
            metadata: None,
        }),
        finish(tapeloop::event::FinishReason::ToolCalls, usage(10, 1)),
    ];
    let r = run(c, vec![step, final_text("done")]);
    assert!(r.executed.is_empty());
    assert_eq!(r.outcome.tool_calls, 1);
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
}

#[test]
fn provider_executed_calls_are_never_rerouted() {
    let mut step = vec![StreamEvent::StartStep];
    step.extend(server_call("ws", "web_search", json!({"q": "rust"})));
    step.extend([finish(tapeloop::event::FinishReason::Stop, usage(10, 1))]);
    let r = run(with_tools(Some(&["read"])), vec![step]);
    let Message::Assistant { parts } = &r.outcome.conversation.messages[1] else {
        panic!()
    };
    assert!(
        matches!(&parts[0], AssistantPart::ToolCall(ToolCall { tool, .. }) if tool == "web_search")
    );
    assert!(r.outcome.warnings.iter().all(|w| !w.contains("rerouted")));
}
