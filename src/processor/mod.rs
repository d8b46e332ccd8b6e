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

pub mod compaction;
pub mod config;
pub mod detector;
pub mod json;
pub mod outcome;
pub mod pricing;
pub mod retry;
pub mod rng;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub use config::{CompactionMode, DetectorSpec, DoomAction, RetryPreset};
pub use outcome::{
    Detection, DetectorReport, Outcome, RequestKind, RetryRecord, StepRecord, StepStatus,
    Termination,
};
pub use pricing::{ModelCost, ModelInfo, ModelLimit, PriceTable, PricingError, TierCost};

use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions, ToolResult};
use crate::event::{FinishReason, ProviderError, StreamEvent, Usage};
use compaction::{Limits, COMPACTION_PROMPT};
use detector::{opencode_fires, CallSig, DetectorSet, PartView};
use retry::RetryPolicy;

/// opencode's `MAX_STEPS` prompt (session/prompt/max-steps.txt), appended as an assistant
/// prefill once the soft step limit is reached (reference §4.2 step 9).
pub const MAX_STEPS_PROMPT: &str = "CRITICAL - MAXIMUM STEPS REACHED

The maximum number of steps allowed for this task has been reached. Tools are disabled until next user input. Respond with text only.

STRICT REQUIREMENTS:
1. Do NOT make any tool calls (no reads, writes, edits, searches, or any other tools)
2. MUST provide a text response summarizing work done so far
3. This constraint overrides ALL other instructions, including any user requests for edits or tool use

Response must include:
- Statement that maximum steps for this agent have been reached
- Summary of what has been accomplished so far
- List of any remaining tasks that were not completed
- Recommendations for what should be done next

Any attempts to use tools is a violation of this constraint. Pause and respond with text only.";

/// Error text of tool parts still open when a step closes (reference §1.3).
pub const TOOL_ABORTED: &str = "Tool execution aborted";
/// Result text of a pending/running tool part replayed to the model (reference §1.3).
pub const TOOL_INTERRUPTED: &str = "[Tool execution was interrupted]";
/// Error of a tool call made while generating a compaction summary ([C], reference §1.2).
pub const TOOL_IN_SUMMARY: &str = "Tool call not allowed while generating summary";

/// At most this many warnings are kept; later ones are counted in a final line.
const MAX_WARNINGS: usize = 200;

/// Everything the processor needs to know about a run.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub model: String,
    /// Pricing lookup hint ("openai", "anthropic", …).
    pub provider: Option<String>,
    /// Detectors run side by side; may be empty.
    pub detectors: Vec<DetectorSpec>,
    pub doom_action: DoomAction,
    pub retry: RetryPreset,
    /// Jitter seed: same seed, same schedule.
    pub seed: u64,
    /// Hard limit (the seed's): stop with `max-steps` after this many steps.
    pub max_steps: Option<u32>,
    /// opencode's soft limit: from this step on, append the MAX_STEPS assistant prefill;
    /// never stops (reference §4.3).
    pub soft_max_steps: Option<u32>,
    /// Hard guard on retries per request, also for policies that retry forever.
    pub max_retries: u32,
    /// Context limit for the overflow check; else the price table's.
    pub context_limit: Option<u64>,
    /// Output limit for the overflow check; else the price table's.
    pub output_limit: Option<u64>,
    pub compaction: CompactionMode,
    pub prices: Arc<PriceTable>,
    /// [C] `ensureToolCall`: a `tool-call` without a preceding `tool-input-start` creates its
    /// tool part (default). `false` is era A: the call gets no part, so it is missing from the
    /// message and the history, and the `opencode` detector never sees it; the AI SDK still
    /// executes it, so it is still executed and counted (reference §1.2, §8).
    pub ensure_tool_call: bool,
}

impl ProcessorConfig {
    /// Defaults: detectors `[opencode]`, `ask-reject`, retry `opencode`, seed 0, no step
    /// limits, `max_retries` 10, compaction `stop`, the bundled price table.
    pub fn new(model: impl Into<String>) -> Self {
        ProcessorConfig {
            model: model.into(),
            provider: None,
            detectors: vec![DetectorSpec::Opencode],
            doom_action: DoomAction::AskReject,
            retry: RetryPreset::Opencode,
            seed: 0,
            max_steps: None,
            soft_max_steps: None,
            max_retries: 10,
            context_limit: None,
            output_limit: None,
            compaction: CompactionMode::Stop,
            prices: PriceTable::bundled(),
            ensure_tool_call: true,
        }
    }
}

/// A model request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub step: u32,
    pub attempt: u32,
    pub kind: RequestKind,
    pub conversation: Conversation,
    pub options: RequestOptions,
}

/// A client tool call to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInvocation {
    pub step: u32,
    pub call_id: String,
    pub tool: String,
    pub input: Value,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(SendRequest),
    ExecuteTool(ToolInvocation),
    /// Advance the simulated clock by `ms`, then call `on_wait_elapsed`.
    Wait {
        ms: u64,
    },
    Stop(Termination),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolStatus {
    Pending,
    Running,
    Completed,
    Error,
}

#[derive(Debug, Clone)]
struct ToolPart {
    call_id: String,
    tool: String,
    status: ToolStatus,
    input: Value,
    /// Completed output, or the error text.
    output: String,
    /// A provider-executed tool's result as the provider sent it.
    provider_output: Option<Value>,
    provider_executed: bool,
    metadata: Option<Value>,
    /// The session-wide call index the detectors know this call by.
    call_index: Option<u64>,
}

impl ToolPart {
    /// A call whose input is still streaming (`tool-input-start`, or a `tool-call` that arrives
    /// without one).
    fn pending(call_id: &str, tool: &str, provider_executed: bool) -> Self {
        ToolPart {
            call_id: call_id.to_string(),
            tool: tool.to_string(),
            status: ToolStatus::Pending,
            input: Value::Object(Default::default()),
            output: String::new(),
            provider_output: None,
            provider_executed,
            metadata: None,
            call_index: None,
        }
    }
}

#[derive(Debug, Clone)]
enum PartKind {
    StepStart,
    Text(String),
    Refusal(String),
    Reasoning {
        text: String,
        metadata: Option<Value>,
    },
    Tool(Box<ToolPart>),
    StepFinish,
}

/// A part of the step's assistant message. Parts keep their creation order (opencode orders
/// by part id, allocated at creation) but only count once persisted (reference §1.2: text and
/// reasoning persist at their first non-empty delta or at their end).
#[derive(Debug, Clone)]
struct Part {
    attempt: u32,
    persisted: bool,
    kind: PartKind,
}

/// The open step: its request and its assistant message.
#[derive(Debug, Clone)]
struct StepState {
    number: u32,
    kind: RequestKind,
    attempt: u32,
    parts: Vec<Part>,
    /// Open tool parts by call id (`toolcalls`; survives retries, reference §3.3).
    toolcalls: BTreeMap<String, usize>,
    /// Calls dropped by era A (no part), by call id → session call index.
    dropped: BTreeMap<String, u64>,
    /// Whether any event arrived for this step (any attempt).
    got_event: bool,
    // Per-attempt state, reset by a retry.
    current_text: Option<usize>,
    reasoning: BTreeMap<String, usize>,
    refusals: BTreeMap<String, usize>,
    started: bool,
    failed: Option<ProviderError>,
    /// The stream is no longer read (after an error, or the overflow break of §1.2).
    closed: bool,
    finish: Option<FinishReason>,
    usage: Usage,
    cost: f64,
    overflow: bool,
    attempt_calls: Vec<CallSig>,
}

impl StepState {
    fn reset_attempt(&mut self) {
        self.current_text = None;
        self.reasoning.clear();
        self.refusals.clear();
        self.started = false;
        self.failed = None;
        self.closed = false;
        self.finish = None;
        self.usage = Usage::default();
        self.cost = 0.0;
        self.overflow = false;
        self.attempt_calls.clear();
    }

    fn push(&mut self, persisted: bool, kind: PartKind) -> usize {
        self.parts.push(Part {
            attempt: self.attempt,
            persisted,
            kind,
        });
        self.parts.len() - 1
    }

    /// The trimmed text the current attempt produced.
    fn attempt_text(&self) -> String {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter(|p| p.persisted && p.attempt == self.attempt)
            .filter_map(|p| match &p.kind {
                PartKind::Text(t) | PartKind::Refusal(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n").trim().to_string()
    }
}

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
    /// The conversation the next request is built from (system, tools, messages so far).
    history: Conversation,
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
            history: conversation,
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
            StreamEvent::TextStart { .. } => {
                let step = self.step_mut();
                let idx = step.push(false, PartKind::Text(String::new()));
                step.current_text = Some(idx);
            }
            StreamEvent::TextDelta { text, .. } => self.on_text_delta(text),
            StreamEvent::TextEnd { .. } => self.on_text_end(),
            StreamEvent::RefusalDelta { id, text } => {
                let step = self.step_mut();
                let idx = match step.refusals.get(id) {
                    Some(i) => *i,
                    None => {
                        let i = step.push(false, PartKind::Refusal(String::new()));
                        step.refusals.insert(id.clone(), i);
                        i
                    }
                };
                let part = &mut step.parts[idx];
                if let PartKind::Refusal(t) = &mut part.kind {
                    t.push_str(text);
                    part.persisted |= !t.is_empty();
                }
            }
            StreamEvent::ReasoningStart { id, metadata } => {
                let step = self.step_mut();
                if !step.reasoning.contains_key(id) {
                    let idx = step.push(
                        false,
                        PartKind::Reasoning {
                            text: String::new(),
                            metadata: metadata.clone(),
                        },
                    );
                    step.reasoning.insert(id.clone(), idx);
                }
            }
            StreamEvent::ReasoningDelta { id, text } => {
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
            StreamEvent::ReasoningEnd { id, metadata } => {
                let step = self.step_mut();
                match step.reasoning.remove(id) {
                    Some(idx) => {
                        let part = &mut step.parts[idx];
                        if let PartKind::Reasoning { text, metadata: m } = &mut part.kind {
                            text.truncate(text.trim_end().len());
                            if metadata.is_some() {
                                *m = metadata.clone();
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
            StreamEvent::ToolInputStart {
                id,
                tool,
                provider_executed,
            } => self.on_tool_input_start(id, tool, *provider_executed),
            StreamEvent::ToolInputDelta { .. } | StreamEvent::ToolInputEnd { .. } => {}
            StreamEvent::ToolCall {
                id,
                tool,
                input,
                provider_executed,
                metadata,
            } => self.on_tool_call(
                id,
                tool,
                input,
                *provider_executed,
                metadata.as_ref(),
                now_ms,
                actions,
            ),
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
            StreamEvent::Error(err) => {
                let step = self.step_mut();
                step.failed = Some(err.clone());
                step.closed = true;
            }
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
            self.history.messages = compaction::compacted_history(&summary);
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

    // ---- event handlers -------------------------------------------------------------------

    fn on_start_step(&mut self) {
        let step = self.step_mut();
        let duplicate = step.started;
        step.started = true;
        step.push(true, PartKind::StepStart);
        if duplicate {
            let n = step.number;
            self.warn(format!("step {n}: second `start-step` in one response"));
        }
    }

    fn on_text_delta(&mut self, text: &str) {
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

    fn on_text_end(&mut self) {
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

    /// Upsert a pending tool part (reference §1.2 `tool-input-start`).
    fn on_tool_input_start(&mut self, id: &str, tool: &str, provider_executed: bool) {
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

    /// `tool-call` (reference §1.2): pending → running, then the doom-loop check (§2).
    #[allow(clippy::too_many_arguments)]
    fn on_tool_call(
        &mut self,
        id: &str,
        tool: &str,
        input: &Value,
        provider_executed: bool,
        metadata: Option<&Value>,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
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
            let (index, fired) = self.detectors.on_call(number, tool, input, false);
            step.dropped.insert(id.to_string(), index);
            if !provider_executed && input.is_object() {
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
        if !input.is_object() {
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
    fn on_provider_tool_result(&mut self, id: &str, output: &Value, is_error: bool, now_ms: u64) {
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
    /// which stops reading the stream.
    fn on_finish_step(&mut self, reason: FinishReason, usage: &Usage, now_ms: u64) {
        let cost = self.cost.map(|c| c.cost_usd(usage)).unwrap_or(0.0);
        let overflow = self.limits.is_overflow(usage);
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

    // ---- loop control ---------------------------------------------------------------------

    /// A failed attempt: retry (Wait), or end the step (reference §3, §7).
    fn on_failure(&mut self, mut step: StepState, err: ProviderError, now_ms: u64) -> Action {
        let verdict = self.retry.classify(&err);
        let retries_so_far = step.attempt - 1;
        let limit = self.retry.max_retries().min(self.config.max_retries);
        if verdict.retryable && retries_so_far < limit {
            let delay = self.retry.delay_ms(retries_so_far + 1, &err);
            self.outcome.retries.push(RetryRecord {
                step: step.number,
                attempt: step.attempt,
                status: err.status,
                delay_ms: delay,
                reason: verdict.reason,
                class: err.class,
            });
            step.closed = true;
            self.step = Some(step);
            self.phase = Phase::Waiting { ms: delay };
            return Action::Wait { ms: delay };
        }
        let kind = step.kind;
        self.step = Some(step);
        if verdict.retryable {
            let detail = format!(
                "{} (gave up after {retries_so_far} retr{})",
                err.message,
                if retries_so_far == 1 { "y" } else { "ies" }
            );
            return self.stop(
                Termination::RetriesExhausted,
                Some(detail),
                now_ms,
                StepStatus::Error,
            );
        }
        if err.class == crate::event::ErrorClass::ContextOverflow {
            if kind == RequestKind::Step && self.config.compaction == CompactionMode::Compact {
                let step = self.step.take().expect("step is open");
                self.close_step(step, StepStatus::Error, now_ms);
                return self.next_step(RequestKind::Compaction, now_ms);
            }
            return self.stop(
                Termination::ContextOverflow,
                Some(err.message),
                now_ms,
                StepStatus::Error,
            );
        }
        self.stop(
            Termination::ProviderError,
            Some(err.message),
            now_ms,
            StepStatus::Error,
        )
    }

    /// Open the next request (step or compaction), or stop at the hard step limit.
    fn next_step(&mut self, kind: RequestKind, now_ms: u64) -> Action {
        let done = self.outcome.steps.len() as u32;
        if let Some(max) = self.config.max_steps {
            if done >= max {
                return self.stop(
                    Termination::MaxSteps,
                    Some(format!(
                        "the loop wanted to continue after {done} steps (max_steps = {max})"
                    )),
                    now_ms,
                    StepStatus::Completed,
                );
            }
        }
        let number = done + 1;
        let request = self.build_request(number, kind, 1);
        self.outcome.steps.push(StepRecord {
            number,
            kind,
            started_ms: now_ms,
            finished_ms: None,
            status: StepStatus::Running,
            tool_calls: Vec::new(),
            finish_reason: None,
            usage: Usage::default(),
            cost_usd: 0.0,
            attempts: 1,
        });
        self.step = Some(StepState {
            number,
            kind,
            attempt: 1,
            parts: Vec::new(),
            toolcalls: BTreeMap::new(),
            dropped: BTreeMap::new(),
            got_event: false,
            current_text: None,
            reasoning: BTreeMap::new(),
            refusals: BTreeMap::new(),
            started: false,
            failed: None,
            closed: false,
            finish: None,
            usage: Usage::default(),
            cost: 0.0,
            overflow: false,
            attempt_calls: Vec::new(),
        });
        self.phase = Phase::Streaming;
        Action::Send(request)
    }

    /// The request of step `number`: the history, plus the MAX_STEPS prefill from the soft
    /// limit on (reference §4.2 step 9), or the compaction prompt without tools (§6.3). The
    /// history does not change between attempts, so a retry rebuilds the same request.
    fn build_request(&self, number: u32, kind: RequestKind, attempt: u32) -> SendRequest {
        let mut conversation = self.history.clone();
        match kind {
            RequestKind::Step => {
                if self
                    .config
                    .soft_max_steps
                    .is_some_and(|soft| number >= soft)
                {
                    conversation.messages.push(Message::Assistant {
                        parts: vec![AssistantPart::Text {
                            text: MAX_STEPS_PROMPT.to_string(),
                        }],
                    });
                }
            }
            RequestKind::Compaction => {
                conversation.system = None;
                conversation.tools.clear();
                conversation.messages.push(Message::User {
                    content: COMPACTION_PROMPT.to_string(),
                });
            }
        }
        SendRequest {
            step: number,
            attempt,
            kind,
            conversation,
            // opencode sends `min(limit.output, 32_000)` with every request (reference §8);
            // tapeloop does when the scenario states the output limit, and otherwise leaves
            // the provider's default, so recordings do not depend on the price table.
            options: RequestOptions {
                max_output_tokens: self
                    .config
                    .output_limit
                    .map(|_| self.limits.max_output_tokens()),
                ..RequestOptions::new(self.config.model.clone())
            },
        }
    }

    /// Close a step: commit the successful attempt's usage, close open tool parts (§1.3) and
    /// append its message to the history (compaction summaries are not appended: a
    /// successful one replaces the history instead).
    fn close_step(&mut self, mut step: StepState, status: StepStatus, now_ms: u64) {
        let succeeded = step.failed.is_none() && step.finish.is_some();
        if let Some(rec) = self.outcome.steps.last_mut() {
            if rec.status == StepStatus::Running {
                rec.status = status;
            }
            rec.finished_ms = Some(now_ms);
            rec.attempts = step.attempt;
            if succeeded {
                rec.finish_reason = step.finish;
                rec.usage = step.usage;
                rec.cost_usd = step.cost;
            }
        }
        if succeeded {
            self.outcome.usage.add(&step.usage);
            self.outcome.cost_usd += step.cost;
        }
        for part in &mut step.parts {
            if let PartKind::Tool(tp) = &mut part.kind {
                if matches!(tp.status, ToolStatus::Pending | ToolStatus::Running) {
                    tp.status = ToolStatus::Error;
                    tp.output = TOOL_ABORTED.to_string();
                }
            }
        }
        if step.kind == RequestKind::Step {
            let (assistant, tools) = replay_messages(&step.parts);
            self.history.messages.extend(assistant);
            self.history.messages.extend(tools);
        }
    }

    /// End the run, closing the open step (if any) with `status`.
    fn finish_run(
        &mut self,
        reason: Termination,
        detail: Option<String>,
        now_ms: u64,
        status: StepStatus,
    ) {
        if let Some(step) = self.step.take() {
            self.close_step(step, status, now_ms);
        }
        self.outcome.termination = Some(reason);
        self.outcome.termination_detail = detail;
        self.outcome.conversation = self.history.clone();
        self.phase = Phase::Done;
    }

    fn stop(
        &mut self,
        reason: Termination,
        detail: Option<String>,
        now_ms: u64,
        status: StepStatus,
    ) -> Action {
        self.finish_run(reason, detail, now_ms, status);
        Action::Stop(reason)
    }

    /// Report detections; with `deny`/`ask-reject`, the first one ends the turn as an error
    /// (reference §2.3: the rejection is thrown from the processor, result "stop").
    fn apply_detections(&mut self, fired: Vec<Detection>, now_ms: u64) {
        if fired.is_empty() {
            return;
        }
        self.outcome.detectors = self.detectors.reports();
        self.outcome.doom_loop = self.detectors.first();
        let stops = matches!(
            self.config.doom_action,
            DoomAction::Deny | DoomAction::AskReject
        );
        if stops && self.outcome.termination.is_none() {
            let d = &fired[0];
            let detail = format!("{}: {}", d.detector, d.rule);
            self.finish_run(
                Termination::DoomLoop,
                Some(detail),
                now_ms,
                StepStatus::DoomLoop,
            );
        }
    }

    /// What the driver should be doing now (for calls in the wrong phase).
    fn current_action(&self) -> Action {
        if let Some(t) = self.outcome.termination {
            return Action::Stop(t);
        }
        match (self.phase, &self.step) {
            (Phase::Waiting { ms }, _) => Action::Wait { ms },
            (_, Some(step)) => {
                Action::Send(self.build_request(step.number, step.kind, step.attempt))
            }
            _ => Action::Stop(Termination::Aborted),
        }
    }

    fn step_mut(&mut self) -> &mut StepState {
        self.step.as_mut().expect("a step is open while streaming")
    }

    fn touch(&mut self, now_ms: u64) {
        let start = *self.start_ms.get_or_insert(now_ms);
        if now_ms < self.last_ms {
            self.warn(format!(
                "clock went backwards ({now_ms} ms after {} ms)",
                self.last_ms
            ));
        }
        self.last_ms = self.last_ms.max(now_ms);
        self.outcome.sim_ms = self.last_ms.saturating_sub(start);
    }

    fn warn(&mut self, message: String) {
        if self.outcome.warnings.len() < MAX_WARNINGS {
            self.outcome.warnings.push(message);
        } else {
            self.suppressed_warnings += 1;
            let line = format!("… {} more warnings suppressed", self.suppressed_warnings);
            if self.suppressed_warnings == 1 {
                self.outcome.warnings.push(line);
            } else if let Some(last) = self.outcome.warnings.last_mut() {
                *last = line;
            }
        }
    }
}

/// The messages a closed step contributes to the history (reference §1.3 history replay):
/// the assistant message (text, reasoning, tool calls, provider tool results) and the client
/// tool results in call order. Pending/running parts replay as "[Tool execution was
/// interrupted]".
fn replay_messages(parts: &[Part]) -> (Option<Message>, Option<Message>) {
    let mut assistant = Vec::new();
    let mut results = Vec::new();
    for part in parts.iter().filter(|p| p.persisted) {
        match &part.kind {
            PartKind::Text(t) | PartKind::Refusal(t) if !t.is_empty() => {
                assistant.push(AssistantPart::Text { text: t.clone() })
            }
            PartKind::Reasoning { text, metadata } if !text.is_empty() || metadata.is_some() => {
                assistant.push(AssistantPart::Reasoning {
                    text: text.clone(),
                    metadata: metadata.clone(),
                })
            }
            PartKind::Tool(tp) => {
                assistant.push(AssistantPart::ToolCall {
                    id: tp.call_id.clone(),
                    tool: tp.tool.clone(),
                    input: tp.input.clone(),
                    provider_executed: tp.provider_executed,
                    metadata: tp.metadata.clone(),
                });
                let (output, is_error) = match tp.status {
                    ToolStatus::Completed => (tp.output.clone(), false),
                    ToolStatus::Error => (tp.output.clone(), true),
                    ToolStatus::Pending | ToolStatus::Running => {
                        (TOOL_INTERRUPTED.to_string(), true)
                    }
                };
                if tp.provider_executed {
                    if let Some(out) = &tp.provider_output {
                        assistant.push(AssistantPart::ToolResult {
                            id: tp.call_id.clone(),
                            tool: tp.tool.clone(),
                            output: out.clone(),
                        });
                    }
                } else {
                    results.push(ToolResult {
                        call_id: tp.call_id.clone(),
                        tool: tp.tool.clone(),
                        output,
                        is_error,
                    });
                }
            }
            _ => {}
        }
    }
    let assistant = (!assistant.is_empty()).then_some(Message::Assistant { parts: assistant });
    let tools = (!results.is_empty()).then_some(Message::Tool { results });
    (assistant, tools)
}
