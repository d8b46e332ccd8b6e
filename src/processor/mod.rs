//! The agent-loop processor: opencode's `SessionProcessor` and `SessionPrompt.loop` as a pure,
//! synchronous state machine (reference `opencode-processor.md`, era A with the later fixes
//! marked [B]/[C] where DESIGN.md asks for them; the seeds' Python processor is the `seed`
//! preset of each policy).
//!
//! # Driver contract
//!
//! The processor does no I/O, never sleeps and never reads a clock: the driver passes the
//! simulated time (`now_ms`) into every call and does what the returned [`Action`]s say.
//!
//! 1. Call [`Processor::start`]; it returns `Send` for step 1, attempt 1.
//! 2. For a `Send`, feed the attempt's normalized events in order with
//!    [`Processor::on_event`]. When it pushes [`Action::ExecuteTool`], run the tool and answer
//!    with [`Processor::on_tool_result`] **before** feeding the next event: tool results arrive
//!    before `finish-step`, as with the AI SDK (reference §1.1). Provider-executed calls are
//!    never pushed. If it pushes [`Action::Stop`], still answer the `ExecuteTool`s pushed
//!    with it if you like (they are accepted and ignored), then end the run.
//! 3. After the attempt's last event (also after an `error` event, a cut-off stream or an HTTP
//!    error), call [`Processor::on_attempt_end`]. It returns `Send` (the next step, or the
//!    compaction request), `Wait { ms }` (a retry) or `Stop`.
//! 4. For `Wait { ms }`, advance the clock by `ms` and call [`Processor::on_wait_elapsed`],
//!    which returns the retry's `Send` (same step, next attempt, same request).
//! 5. `Stop(reason)` ends the run; read [`Processor::outcome`]. The driver may stop a run
//!    itself at any point with [`Processor::terminate`] (divergence, cassette exhausted,
//!    abort).
//!
//! Misuse (events out of order, unknown ids, a finish without a start, calls in the wrong
//! phase) never panics: the processor does the sensible thing and records a warning in the
//! outcome. Output is deterministic: no hash-map iteration, jitter from the seeded generator.
//!
//! # Model of a step
//!
//! Each step is one request and one assistant message with parts (reference §1.1):
//! `step-start`, text, reasoning, tool parts (`pending → running → completed | error`) and
//! `step-finish`. A retry re-runs the same request on the same message: text and reasoning
//! state is reset, parts written by the failed attempt stay (reference §3.3), and the failed
//! attempt's usage is not counted. When the step closes, open tool parts become errors "Tool
//! execution aborted" (reference §1.3) and the message is appended to the history the next
//! request is built from.
//!
//! # Where things live
//!
//! This file holds the [`Processor`] and its lifecycle (the driver-facing calls). The types
//! the driver exchanges with it are in `action` ([`Action`], [`SendRequest`],
//! [`ToolInvocation`]) and [`outcome`] ([`Termination`], [`Outcome`]); the configuration in
//! [`config`]; the part/step model in `step`; the per-event handlers in `handlers`; loop
//! control (next step, retry, close, stop) in `control`; requests and history replay in
//! `messages`. Detectors, retry policies, compaction, prices and JSON serializations have
//! their own modules.

mod action;
pub mod compaction;
pub mod config;
mod control;
pub mod detector;
mod handlers;
pub mod json;
mod messages;
pub mod outcome;
pub mod pricing;
pub mod retry;
pub mod rng;
mod step;
pub mod toolset;

pub use action::{Action, SendRequest, ToolInvocation};
pub use config::{CompactionMode, DetectorSpec, DoomAction, ProcessorConfig, RetryPreset};
pub use messages::MAX_STEPS_PROMPT;
pub use outcome::{
    Detection, DetectorReport, Outcome, RequestKind, RetryDecision, StepRecord, StepStatus,
    Termination,
};
pub use pricing::{ModelCost, ModelInfo, ModelLimit, PriceTable, PricingError, TierCost};
pub use step::{TOOL_ABORTED, TOOL_INTERRUPTED, TOOL_IN_SUMMARY};

use std::sync::Arc;

use crate::conversation::Conversation;
use crate::event::{FinishReason, StreamEvent, Usage};
use compaction::Limits;
use detector::DetectorSet;
use retry::RetryPolicy;
use step::{PartKind, StepState, ToolStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Streaming,
    Waiting { ms: u64 },
    Done,
}

/// The agent-loop processor. See the module docs for the driver contract.
#[derive(Debug, Clone)]
pub struct Processor {
    config: ProcessorConfig,
    cost: Option<ModelCost>,
    limits: Limits,
    /// The conversation the next request is built from (system, tools, messages so far),
    /// shared with the requests built from it ([`SendRequest::conversation`]).
    history: Arc<Conversation>,
    detectors: DetectorSet,
    retry: RetryPolicy,
    phase: Phase,
    step: Option<StepState>,
    outcome: Outcome,
    start_ms: Option<u64>,
    last_ms: u64,
    suppressed_warnings: usize,
}

impl Processor {
    pub fn new(config: ProcessorConfig, conversation: Conversation) -> Self {
        let info = config
            .prices
            .lookup(config.provider.as_deref(), &config.model)
            .cloned();
        let mut warnings = Vec::new();
        if info.is_none() {
            warnings.push(format!(
                "no price for model `{}`{}: cost counted as 0",
                config.model,
                config
                    .provider
                    .as_deref()
                    .map(|p| format!(" (provider `{p}`)"))
                    .unwrap_or_default()
            ));
        }
        let table_limit = info.as_ref().map(|i| i.limit).unwrap_or_default();
        let limits = Limits {
            context: config.context_limit.unwrap_or(table_limit.context),
            output: config.output_limit.unwrap_or(table_limit.output),
            // The table's input limit belongs to the table's context; an explicit context
            // limit replaces both.
            input: if config.context_limit.is_some() {
                None
            } else {
                table_limit.input
            },
        };
        let detectors = DetectorSet::new(config.detectors.clone());
        let retry = RetryPolicy::new(config.retry, config.seed, config.provider.clone());
        let outcome = Outcome {
            termination: None,
            termination_detail: None,
            steps: Vec::new(),
            retries: Vec::new(),
            doom_loop: None,
            detectors: detectors.reports(),
            usage: Usage::default(),
            cost_usd: 0.0,
            tool_calls: 0,
            sim_ms: 0,
            warnings,
            conversation: conversation.clone(),
        };
        Processor {
            cost: info.map(|i| i.cost),
            limits,
            history: Arc::new(conversation),
            detectors,
            retry,
            phase: Phase::Idle,
            step: None,
            outcome,
            start_ms: None,
            last_ms: 0,
            suppressed_warnings: 0,
            config,
        }
    }

    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// The limits the overflow check uses (config, else price table; 0 = unknown).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Begin the run: `Send` for step 1, attempt 1.
    pub fn start(&mut self, now_ms: u64) -> Action {
        self.touch(now_ms);
        if self.phase != Phase::Idle {
            self.warn("start called twice".to_string());
            return self.current_action();
        }
        self.next_step(RequestKind::Step, now_ms)
    }

    /// Feed one event of the current attempt. May push `ExecuteTool` and `Stop`.
    pub fn on_event(&mut self, event: &StreamEvent, now_ms: u64, actions: &mut Vec<Action>) {
        self.touch(now_ms);
        if let Some(t) = self.outcome.termination {
            actions.push(Action::Stop(t));
            return;
        }
        if self.phase != Phase::Streaming {
            self.warn(format!(
                "`{}` event outside a request: ignored",
                event.type_name()
            ));
            return;
        }
        let Some(step) = self.step.as_mut() else {
            return;
        };
        if step.closed {
            // opencode stops reading the stream after an error or the overflow break.
            return;
        }
        step.got_event = true;
        let mut warning = None;
        if !step.started && !matches!(event, StreamEvent::StartStep | StreamEvent::Error(_)) {
            warning = Some(format!(
                "step {}: `{}` before `start-step`",
                step.number,
                event.type_name()
            ));
            step.started = true;
            step.push(true, PartKind::StepStart);
        }
        if let Some(w) = warning {
            self.warn(w);
        }
        match event {
            StreamEvent::StartStep => self.on_start_step(),
            StreamEvent::TextStart { .. } => self.on_text_start(),
            StreamEvent::TextDelta { text, .. } => self.on_text_delta(text),
            StreamEvent::TextEnd { .. } => self.on_text_end(),
            StreamEvent::RefusalDelta { id, text } => self.on_refusal_delta(id, text),
            StreamEvent::ReasoningStart { id, metadata } => {
                self.on_reasoning_start(id, metadata.as_ref())
            }
            StreamEvent::ReasoningDelta { id, text } => self.on_reasoning_delta(id, text),
            StreamEvent::ReasoningEnd { id, metadata } => {
                self.on_reasoning_end(id, metadata.as_ref())
            }
            StreamEvent::ToolInputStart {
                id,
                tool,
                provider_executed,
            } => self.on_tool_input_start(id, tool, *provider_executed),
            StreamEvent::ToolInputDelta { .. } | StreamEvent::ToolInputEnd { .. } => {}
            StreamEvent::ToolCall(call) => self.on_tool_call(call, now_ms, actions),
            StreamEvent::ToolResult {
                id,
                output,
                is_error,
                ..
            } => self.on_provider_tool_result(id, output, *is_error, now_ms),
            StreamEvent::FinishStep {
                finish_reason,
                usage,
                ..
            } => self.on_finish_step(*finish_reason, usage, now_ms),
            StreamEvent::Error(err) => self.on_error(err),
        }
        if let Some(t) = self.outcome.termination {
            actions.push(Action::Stop(t));
        }
    }

    /// The result of a client tool call pushed as `ExecuteTool`.
    pub fn on_tool_result(&mut self, call_id: &str, output: String, is_error: bool, now_ms: u64) {
        self.touch(now_ms);
        if self.outcome.termination.is_some() {
            // Results of calls executed alongside a Stop: the step is already closed.
            return;
        }
        let Some(step) = self.step.as_mut() else {
            self.warn(format!(
                "tool result for `{call_id}` outside a step: ignored"
            ));
            return;
        };
        let number = step.number;
        let index = if let Some(&idx) = step.toolcalls.get(call_id) {
            match &mut step.parts[idx].kind {
                PartKind::Tool(tp) if tp.status == ToolStatus::Running => {
                    tp.status = if is_error {
                        ToolStatus::Error
                    } else {
                        ToolStatus::Completed
                    };
                    tp.output = output.clone();
                    step.toolcalls.remove(call_id);
                    tp.call_index
                }
                _ => {
                    self.warn(format!(
                        "step {number}: tool result for `{call_id}`, which is not running: ignored"
                    ));
                    return;
                }
            }
        } else if let Some(&index) = step.dropped.get(call_id) {
            Some(index)
        } else {
            self.warn(format!(
                "step {number}: tool result for unknown call `{call_id}`: ignored"
            ));
            return;
        };
        if let Some(index) = index {
            let fired = self.detectors.on_result(index, &output, is_error);
            self.apply_detections(fired, now_ms);
        }
    }

    /// The current attempt's stream ended. Returns the next `Send`, a retry `Wait`, or `Stop`.
    pub fn on_attempt_end(&mut self, now_ms: u64) -> Action {
        self.touch(now_ms);
        if let Some(t) = self.outcome.termination {
            return Action::Stop(t);
        }
        match self.phase {
            Phase::Streaming => {}
            Phase::Idle => {
                self.warn("on_attempt_end before start: starting".to_string());
                return self.start(now_ms);
            }
            _ => {
                self.warn("on_attempt_end outside a request".to_string());
                return self.current_action();
            }
        }
        let Some(mut step) = self.step.take() else {
            self.warn("on_attempt_end without an open step".to_string());
            return self.current_action();
        };
        if let Some(err) = step.failed.take() {
            return self.on_failure(step, err, now_ms);
        }
        if step.finish.is_none() {
            self.warn(format!(
                "step {}: response ended without `finish-step`; the loop continues (finish unset, reference §4.2)",
                step.number
            ));
        }
        let finish = step.finish;
        let kind = step.kind;
        let overflow = step.overflow;
        let summary = step.attempt_text();
        let usage = step.usage;
        self.close_step(step, StepStatus::Completed, now_ms);

        if overflow {
            if kind == RequestKind::Compaction {
                return self.stop(
                    Termination::ContextOverflow,
                    Some("the compaction request itself overflowed the context".to_string()),
                    now_ms,
                    StepStatus::Error,
                );
            }
            if self.config.compaction == CompactionMode::Compact {
                return self.next_step(RequestKind::Compaction, now_ms);
            }
            let detail = format!(
                "{} tokens (input + cache read + output) exceed the usable context of {}",
                compaction::overflow_count(&usage),
                self.limits.usable().unwrap_or(0)
            );
            return self.stop(
                Termination::ContextOverflow,
                Some(detail),
                now_ms,
                StepStatus::Completed,
            );
        }
        if kind == RequestKind::Compaction {
            if summary.is_empty() {
                self.warn("the compaction summary is empty".to_string());
            }
            Arc::make_mut(&mut self.history).messages = compaction::compacted_history(&summary);
            return self.next_step(RequestKind::Step, now_ms);
        }
        match finish {
            None | Some(FinishReason::ToolCalls) | Some(FinishReason::Unknown) => {
                self.next_step(RequestKind::Step, now_ms)
            }
            Some(reason) => self.stop(
                Termination::Completed,
                Some(format!("finish reason `{reason}`")),
                now_ms,
                StepStatus::Completed,
            ),
        }
    }

    /// A retry wait elapsed: `Send` the retry attempt.
    pub fn on_wait_elapsed(&mut self, now_ms: u64) -> Action {
        self.touch(now_ms);
        if let Some(t) = self.outcome.termination {
            return Action::Stop(t);
        }
        let Phase::Waiting { .. } = self.phase else {
            self.warn("on_wait_elapsed without a wait".to_string());
            return self.current_action();
        };
        let Some(step) = self.step.as_mut() else {
            return self.current_action();
        };
        step.attempt += 1;
        step.reset_attempt();
        let (number, kind, attempts) = (step.number, step.kind, step.attempt);
        let request = self.build_request(number, kind, attempts);
        if let Some(rec) = self.outcome.steps.last_mut() {
            rec.attempts = attempts;
        }
        self.phase = Phase::Streaming;
        Action::Send(request)
    }

    /// Driver-side stop (divergence, cassette exhausted, abort). Open tool parts are closed
    /// as "Tool execution aborted" (reference §7 tier 6). A step that never received an
    /// event (its request was never answered) is dropped from `steps`. Ignored, with a
    /// warning, when the run already ended.
    pub fn terminate(&mut self, reason: Termination, detail: Option<String>, now_ms: u64) {
        self.touch(now_ms);
        if let Some(t) = self.outcome.termination {
            self.warn(format!(
                "terminate({reason}) after the run ended with `{t}`: ignored"
            ));
            return;
        }
        let unanswered = self.step.as_ref().is_some_and(|s| !s.got_event);
        if unanswered {
            self.step = None;
            self.outcome.steps.pop();
        }
        self.finish_run(reason, detail, now_ms, StepStatus::Error);
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    pub fn into_outcome(self) -> Outcome {
        self.outcome
    }

    /// Whether the run has ended.
    pub fn is_done(&self) -> bool {
        self.outcome.termination.is_some()
    }
}
