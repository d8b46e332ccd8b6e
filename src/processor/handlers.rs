//! The stream-event handlers: how each normalized event of an attempt changes the open step's
//! parts (reference §1.2), runs the doom-loop detectors and asks for tool executions.

use std::borrow::Cow;

use serde_json::Value;

use super::action::{Action, ToolInvocation};
use super::config::{CompactionMode, DetectorSpec};
use super::detector::{self, opencode_fires, CallSig, PartView};
use super::json;
use super::outcome::RequestKind;
use super::step::{Part, PartKind, ToolPart, ToolStatus, TOOL_IN_SUMMARY};
use super::toolset::{self, Repair, INVALID_TOOL};
use super::Processor;
use crate::event::{FinishReason, ProviderError, ToolCall, Usage};

impl Processor {
    pub(super) fn on_start_step(&mut self) {
        let step = self.step_mut();
        let duplicate = step.started;
        step.started = true;
        step.push(true, PartKind::StepStart);
        if duplicate {
            let n = step.number;
            self.warn(format!("step {n}: second `start-step` in one response"));
        }
    }

    pub(super) fn on_text_start(&mut self) {
        let step = self.step_mut();
        let idx = step.push(false, PartKind::Text(String::new()));
        step.current_text = Some(idx);
    }

    pub(super) fn on_text_delta(&mut self, text: &str) {
        let step = self.step_mut();
        let idx = match step.current_text {
            Some(i) => i,
            None => {
                let i = step.push(false, PartKind::Text(String::new()));
                step.current_text = Some(i);
                let n = step.number;
                self.warn(format!("step {n}: text-delta without text-start"));
                i
            }
        };
        let part = &mut self.step_mut().parts[idx];
        if let PartKind::Text(t) = &mut part.kind {
            t.push_str(text);
            part.persisted |= !t.is_empty();
        }
    }

    pub(super) fn on_text_end(&mut self) {
        let step = self.step_mut();
        match step.current_text.take() {
            Some(idx) => {
                let part = &mut step.parts[idx];
                if let PartKind::Text(t) = &mut part.kind {
                    t.truncate(t.trim_end().len());
                }
                part.persisted = true;
            }
            None => {
                let n = step.number;
                self.warn(format!("step {n}: text-end without text-start"));
            }
        }
    }

    /// Refusal text persists like text, one part per refusal id.
    pub(super) fn on_refusal_delta(&mut self, id: &str, text: &str) {
        let step = self.step_mut();
        let idx = match step.refusals.get(id) {
            Some(i) => *i,
            None => {
                let i = step.push(false, PartKind::Refusal(String::new()));
                step.refusals.insert(id.to_string(), i);
                i
            }
        };
        let part = &mut step.parts[idx];
        if let PartKind::Refusal(t) = &mut part.kind {
            t.push_str(text);
            part.persisted |= !t.is_empty();
        }
    }

    pub(super) fn on_reasoning_start(&mut self, id: &str, metadata: Option<&Value>) {
        let step = self.step_mut();
        if !step.reasoning.contains_key(id) {
            let idx = step.push(
                false,
                PartKind::Reasoning {
                    text: String::new(),
                    metadata: metadata.cloned(),
                },
            );
            step.reasoning.insert(id.to_string(), idx);
        }
    }

    pub(super) fn on_reasoning_delta(&mut self, id: &str, text: &str) {
        let step = self.step_mut();
        match step.reasoning.get(id).copied() {
            Some(idx) => {
                let part = &mut step.parts[idx];
                if let PartKind::Reasoning { text: t, .. } = &mut part.kind {
                    t.push_str(text);
                    part.persisted |= !t.is_empty();
                }
            }
            None => {
                let n = step.number;
                self.warn(format!(
                    "step {n}: reasoning-delta for unknown id `{id}` dropped"
                ))
            }
        }
    }

    pub(super) fn on_reasoning_end(&mut self, id: &str, metadata: Option<&Value>) {
        let step = self.step_mut();
        match step.reasoning.remove(id) {
            Some(idx) => {
                let part = &mut step.parts[idx];
                if let PartKind::Reasoning { text, metadata: m } = &mut part.kind {
                    text.truncate(text.trim_end().len());
                    if metadata.is_some() {
                        *m = metadata.cloned();
                    }
                }
                part.persisted = true;
            }
            None => {
                let n = step.number;
                self.warn(format!("step {n}: reasoning-end for unknown id `{id}`"))
            }
        }
    }

    /// Upsert a pending tool part (reference §1.2 `tool-input-start`).
    pub(super) fn on_tool_input_start(&mut self, id: &str, tool: &str, provider_executed: bool) {
        let step = self.step_mut();
        let fresh = ToolPart::pending(id, tool, provider_executed);
        match step.toolcalls.get(id) {
            Some(&idx) => step.parts[idx].kind = PartKind::Tool(Box::new(fresh)),
            None => {
                let idx = step.push(true, PartKind::Tool(Box::new(fresh)));
                step.toolcalls.insert(id.to_string(), idx);
            }
        }
    }

    /// `tool-call` (reference §1.2): a call to a tool the agent does not have is first
    /// repaired (`toolset`), then pending → running, then the doom-loop check (§2).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_tool_call(&mut self, call: &ToolCall, now_ms: u64, actions: &mut Vec<Action>) {
        let ToolCall {
            id,
            tool,
            input,
            provider_executed,
            metadata,
        } = call;
        let (id, tool, provider_executed, metadata) = (
            id.as_str(),
            tool.as_str(),
            *provider_executed,
            metadata.as_ref(),
        );
        let ensure = self.config.ensure_tool_call;
        let step = self.step_mut();
        let number = step.number;
        if step.kind == RequestKind::Compaction {
            step.push(
                true,
                PartKind::Tool(Box::new(ToolPart {
                    call_id: id.to_string(),
                    tool: tool.to_string(),
                    status: ToolStatus::Error,
                    input: input.clone(),
                    output: TOOL_IN_SUMMARY.to_string(),
                    provider_output: None,
                    provider_executed,
                    metadata: metadata.cloned(),
                    call_index: None,
                })),
            );
            self.warn(format!(
                "step {number}: `{tool}` call in the compaction summary: not executed"
            ));
            return;
        }
        // opencode repairs calls to tools the agent does not have before the processor sees
        // them (`toolset`); provider-executed calls are the provider's, never repaired.
        let repair = match &self.config.tools {
            Some(tools) if !provider_executed => toolset::repair(tools, tool),
            _ => Repair::Keep,
        };
        // The call's own input is borrowed: it is copied only where it is kept.
        let (tool, input, invalid_output) = match repair {
            Repair::Keep => (tool.to_string(), Cow::Borrowed(input), None),
            Repair::Rename(name) => {
                self.warn(format!(
                    "step {number}: call to `{tool}` renamed to the agent's `{name}`"
                ));
                (name, Cow::Borrowed(input), None)
            }
            Repair::Invalid { input, output } => {
                self.warn(format!(
                    "step {number}: call to unavailable tool `{tool}` rerouted to `{INVALID_TOOL}`"
                ));
                (INVALID_TOOL.to_string(), Cow::Owned(input), Some(output))
            }
        };
        let (tool, input) = (tool.as_str(), input.as_ref());
        let step = self.step_mut();
        let existing = step.toolcalls.get(id).copied();
        let idx = match existing {
            Some(idx) => Some(idx),
            None if ensure => {
                let idx = step.push(
                    true,
                    PartKind::Tool(Box::new(ToolPart::pending(id, tool, provider_executed))),
                );
                step.toolcalls.insert(id.to_string(), idx);
                Some(idx)
            }
            None => None,
        };
        step.attempt_calls.push(CallSig::new(tool, input));
        // `tool_calls` counts the calls the loop itself executes; provider-executed (server)
        // tools run inside the provider's response and are not the agent's tool calls.
        if !provider_executed {
            if let Some(rec) = self.outcome.steps.last_mut() {
                rec.tool_calls.push(tool.to_string());
            }
            self.outcome.tool_calls += 1;
        }
        let step = self.step.as_mut().expect("step is open");

        let Some(idx) = idx else {
            // Era A: no part, but the AI SDK still executes the call.
            let (index, mut fired) = self.detectors.on_call(number, tool, input, false);
            step.dropped.insert(id.to_string(), index);
            if let Some(output) = &invalid_output {
                fired.extend(self.detectors.on_result(index, output, false));
            } else if !provider_executed && input.is_object() {
                actions.push(Action::ExecuteTool(ToolInvocation {
                    step: number,
                    call_id: id.to_string(),
                    tool: tool.to_string(),
                    input: input.clone(),
                }));
            }
            self.warn(format!(
                "step {number}: `tool-call` {id} without `tool-input-start` dropped (era A)"
            ));
            self.apply_detections(fired, now_ms);
            return;
        };

        if let PartKind::Tool(tp) = &mut step.parts[idx].kind {
            tp.status = ToolStatus::Running;
            tp.input = input.clone();
            tp.tool = tool.to_string();
            tp.provider_executed |= provider_executed;
            tp.metadata = metadata.cloned();
        }
        let opencode = self.detectors.specs().contains(&DetectorSpec::Opencode) && {
            let mut last: Vec<&Part> = step
                .parts
                .iter()
                .rev()
                .filter(|p| p.persisted)
                .take(detector::DOOM_LOOP_THRESHOLD)
                .collect();
            last.reverse();
            let views: Vec<PartView<'_>> = last
                .into_iter()
                .map(|p| match &p.kind {
                    PartKind::Tool(tp) => PartView::Tool {
                        tool: &tp.tool,
                        pending: tp.status == ToolStatus::Pending,
                        input: &tp.input,
                    },
                    _ => PartView::Other,
                })
                .collect();
            opencode_fires(&views, tool, input)
        };
        let (index, mut fired) = self.detectors.on_call(number, tool, input, opencode);
        let step = self.step.as_mut().expect("step is open");
        let PartKind::Tool(tp) = &mut step.parts[idx].kind else {
            return;
        };
        tp.call_index = Some(index);
        if let Some(output) = invalid_output {
            // The `invalid` tool is opencode's own: it completes without the driver.
            tp.status = ToolStatus::Completed;
            tp.output = output.clone();
            step.toolcalls.remove(id);
            fired.extend(self.detectors.on_result(index, &output, false));
        } else if !input.is_object() {
            // The AI SDK rejects the call (`invalid` tool) and opencode sees a tool error.
            let error = format!(
                "Invalid arguments for tool `{tool}`: expected a JSON object, got {}",
                json::js_stringify(input)
            );
            tp.status = ToolStatus::Error;
            tp.output = error.clone();
            step.toolcalls.remove(id);
            fired.extend(self.detectors.on_result(index, &error, true));
        } else if !provider_executed && !tp.provider_executed {
            actions.push(Action::ExecuteTool(ToolInvocation {
                step: number,
                call_id: id.to_string(),
                tool: tool.to_string(),
                input: input.clone(),
            }));
        }
        self.apply_detections(fired, now_ms);
    }

    /// A provider-executed tool's result: applies only to a running part (reference §1.2).
    pub(super) fn on_provider_tool_result(
        &mut self,
        id: &str,
        output: &Value,
        is_error: bool,
        now_ms: u64,
    ) {
        let step = self.step_mut();
        let number = step.number;
        let Some(idx) = step.toolcalls.get(id).copied() else {
            self.warn(format!(
                "step {number}: tool-result for unknown call `{id}`: ignored"
            ));
            return;
        };
        let PartKind::Tool(tp) = &mut step.parts[idx].kind else {
            return;
        };
        if tp.status != ToolStatus::Running {
            self.warn(format!(
                "step {number}: tool-result for `{id}`, which is not running: ignored"
            ));
            return;
        }
        let text = match output {
            Value::String(s) => s.clone(),
            other => json::canonical(other),
        };
        tp.status = if is_error {
            ToolStatus::Error
        } else {
            ToolStatus::Completed
        };
        tp.output = text.clone();
        tp.provider_output = Some(output.clone());
        let index = tp.call_index;
        step.toolcalls.remove(id);
        if let Some(index) = index {
            let fired = self.detectors.on_result(index, &text, is_error);
            self.apply_detections(fired, now_ms);
        }
    }

    /// `finish-step` (reference §1.2): usage and cost (committed when the attempt succeeds),
    /// the step-finish part, the step-level detectors, then the era A overflow check (§6.1),
    /// which stops reading the stream. With compaction `off` there is no check
    /// (`isOverflow` is false when `compaction.auto === false`).
    pub(super) fn on_finish_step(&mut self, reason: FinishReason, usage: &Usage, now_ms: u64) {
        let cost = self.cost.map(|c| c.cost_usd(usage)).unwrap_or(0.0);
        let overflow =
            self.config.compaction != CompactionMode::Off && self.limits.is_overflow(usage);
        let step = self.step_mut();
        let number = step.number;
        let repeated = step.finish.is_some();
        step.finish = Some(reason);
        step.usage.add(usage);
        step.cost += cost;
        step.push(true, PartKind::StepFinish);
        let fired = if step.kind == RequestKind::Step {
            let calls = step.attempt_calls.clone();
            let text = step.attempt_text();
            self.detectors.on_step_finish(number, &calls, &text)
        } else {
            Vec::new()
        };
        if overflow {
            let step = self.step_mut();
            step.overflow = true;
            step.closed = true;
        }
        if repeated {
            self.warn(format!(
                "step {number}: several `finish-step` events in one response: usage summed"
            ));
        }
        self.apply_detections(fired, now_ms);
    }

    /// An `error` event fails the attempt; opencode stops reading the stream.
    pub(super) fn on_error(&mut self, err: &ProviderError) {
        let step = self.step_mut();
        step.failed = Some(err.clone());
        step.closed = true;
    }
}
