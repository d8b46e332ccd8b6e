//! The model of the open step (reference §1.1): one request and its assistant message, made
//! of parts (`step-start`, text, reasoning, tool parts, `step-finish`), plus the per-attempt
//! state a retry resets.

use std::collections::BTreeMap;

use serde_json::Value;

use super::detector::CallSig;
use super::outcome::RequestKind;
use crate::event::{FinishReason, ProviderError, Usage};

/// Error text of tool parts still open when a step closes (reference §1.3).
pub const TOOL_ABORTED: &str = "Tool execution aborted";
/// Result text of a pending/running tool part replayed to the model (reference §1.3).
pub const TOOL_INTERRUPTED: &str = "[Tool execution was interrupted]";
/// Error of a tool call made while generating a compaction summary ([C], reference §1.2).
pub const TOOL_IN_SUMMARY: &str = "Tool call not allowed while generating summary";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToolStatus {
    Pending,
    Running,
    Completed,
    Error,
}

#[derive(Debug, Clone)]
pub(super) struct ToolPart {
    pub(super) call_id: String,
    pub(super) tool: String,
    pub(super) status: ToolStatus,
    pub(super) input: Value,
    /// Completed output, or the error text.
    pub(super) output: String,
    /// A provider-executed tool's result as the provider sent it.
    pub(super) provider_output: Option<Value>,
    pub(super) provider_executed: bool,
    pub(super) metadata: Option<Value>,
    /// The session-wide call index the detectors know this call by.
    pub(super) call_index: Option<u64>,
}

impl ToolPart {
    /// A call whose input is still streaming (`tool-input-start`, or a `tool-call` that arrives
    /// without one).
    pub(super) fn pending(call_id: &str, tool: &str, provider_executed: bool) -> Self {
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
pub(super) enum PartKind {
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
pub(super) struct Part {
    pub(super) attempt: u32,
    pub(super) persisted: bool,
    pub(super) kind: PartKind,
}

/// The open step: its request and its assistant message.
#[derive(Debug, Clone)]
pub(super) struct StepState {
    pub(super) number: u32,
    pub(super) kind: RequestKind,
    pub(super) attempt: u32,
    pub(super) parts: Vec<Part>,
    /// Open tool parts by call id (`toolcalls`; survives retries, reference §3.3).
    pub(super) toolcalls: BTreeMap<String, usize>,
    /// Calls dropped by era A (no part), by call id → session call index.
    pub(super) dropped: BTreeMap<String, u64>,
    /// Whether any event arrived for this step (any attempt).
    pub(super) got_event: bool,
    // Per-attempt state, reset by a retry.
    pub(super) current_text: Option<usize>,
    pub(super) reasoning: BTreeMap<String, usize>,
    pub(super) refusals: BTreeMap<String, usize>,
    pub(super) started: bool,
    pub(super) failed: Option<ProviderError>,
    /// The stream is no longer read (after an error, or the overflow break of §1.2).
    pub(super) closed: bool,
    pub(super) finish: Option<FinishReason>,
    pub(super) usage: Usage,
    pub(super) cost: f64,
    pub(super) overflow: bool,
    pub(super) attempt_calls: Vec<CallSig>,
}

impl StepState {
    /// Step `number`, attempt 1, no parts yet.
    pub(super) fn new(number: u32, kind: RequestKind) -> Self {
        StepState {
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
        }
    }

    pub(super) fn reset_attempt(&mut self) {
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

    pub(super) fn push(&mut self, persisted: bool, kind: PartKind) -> usize {
        self.parts.push(Part {
            attempt: self.attempt,
            persisted,
            kind,
        });
        self.parts.len() - 1
    }

    /// The trimmed text the current attempt produced.
    pub(super) fn attempt_text(&self) -> String {
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
