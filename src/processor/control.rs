//! Loop control: opening the next step, retrying or ending a failed attempt, closing steps
//! into the history, stopping the run, and the bookkeeping every call shares (clock, warnings).

use std::sync::Arc;

use super::action::Action;
use super::config::{CompactionMode, DoomAction};
use super::messages::replay_messages;
use super::outcome::{Detection, RequestKind, RetryDecision, StepRecord, StepStatus, Termination};
use super::step::{PartKind, StepState, ToolStatus, TOOL_ABORTED};
use super::{Phase, Processor};
use crate::conversation::Conversation;
use crate::event::{ProviderError, Usage};

/// At most this many warnings are kept; later ones are counted in a final line.
const MAX_WARNINGS: usize = 200;

impl Processor {
    /// A failed attempt: retry (Wait), or end the step (reference §3, §7).
    pub(super) fn on_failure(
        &mut self,
        mut step: StepState,
        err: ProviderError,
        now_ms: u64,
    ) -> Action {
        let verdict = self.retry.classify(&err);
        let retries_so_far = step.attempt - 1;
        let limit = self.retry.max_retries().min(self.config.max_retries);
        if verdict.retryable && retries_so_far < limit {
            let delay = self.retry.delay_ms(retries_so_far + 1, &err);
            self.outcome.retries.push(RetryDecision {
                step: step.number,
                attempt: step.attempt,
                status: err.status,
                delay_ms: delay,
                reason: verdict.reason,
                class: err.class,
                retry_after_ms: err.retry_after_ms,
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
    pub(super) fn next_step(&mut self, kind: RequestKind, now_ms: u64) -> Action {
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
        self.step = Some(StepState::new(number, kind));
        self.phase = Phase::Streaming;
        Action::Send(request)
    }

    /// Close a step: commit the successful attempt's usage, close open tool parts (§1.3) and
    /// append its message to the history (compaction summaries are not appended: a
    /// successful one replaces the history instead).
    pub(super) fn close_step(&mut self, mut step: StepState, status: StepStatus, now_ms: u64) {
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
            let history = Arc::make_mut(&mut self.history);
            history.messages.extend(assistant);
            history.messages.extend(tools);
        }
    }

    /// End the run, closing the open step (if any) with `status`.
    pub(super) fn finish_run(
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
        self.outcome.conversation = Conversation::clone(&self.history);
        self.phase = Phase::Done;
    }

    pub(super) fn stop(
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
    pub(super) fn apply_detections(&mut self, fired: Vec<Detection>, now_ms: u64) {
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
    pub(super) fn current_action(&self) -> Action {
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

    pub(super) fn step_mut(&mut self) -> &mut StepState {
        self.step.as_mut().expect("a step is open while streaming")
    }

    pub(super) fn touch(&mut self, now_ms: u64) {
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

    pub(super) fn warn(&mut self, message: String) {
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
