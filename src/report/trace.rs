//! What the HTML drill-down draws beyond the JSON report: each attempt's stream timing, the
//! tool calls with their results, what the server asked to wait, the doom action and why the
//! run stopped.
//!
//! It rides on [`RunRecord::trace`](super::RunRecord) as `#[serde(skip)]`, so the JSON report
//! (FORMATS.md, fixed fields) keeps every byte; a report read back from JSON (`merge`,
//! `compare a.json b.json`) has an empty trace and the drill-down draws what `step_details`
//! and `retries` still say.

/// Extra per-run detail filled in by the runner (empty in reports read from JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTrace {
    /// Request attempts in the order they were sent.
    pub attempts: Vec<AttemptTrace>,
    /// Client tool calls in call order.
    pub tools: Vec<ToolCallTrace>,
    /// Per retry (parallel to `RunRecord::retries`): the wait the server asked for.
    pub retry_after_ms: Vec<Option<u64>>,
    /// Per step number (index = step - 1): `step` or `compaction`.
    pub step_kinds: Vec<String>,
    /// The doom action in force (`deny`, `allow`, `ask-reject`, `ask-allow`).
    pub doom_action: Option<String>,
    /// The processor's detail on why the run stopped (the error message, the detector rule).
    pub finish_detail: Option<String>,
}

/// One request attempt on the virtual clock.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptTrace {
    pub step: u32,
    pub attempt: u32,
    pub started_ms: u64,
    /// Time to the first content chunk, from the attempt's start.
    pub ttft_ms: Option<u64>,
    /// From the attempt's start to its last recorded byte.
    pub duration_ms: u64,
    /// HTTP status of the response, `None` when the connection failed before one.
    pub status: Option<u16>,
}

/// One client tool call and the result the model got back.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallTrace {
    pub step: u32,
    pub tool: String,
    /// The arguments as compact JSON.
    pub input: String,
    /// The result sent back; `None` when the run ended before one was sent.
    pub output: Option<String>,
    pub is_error: bool,
}

impl RunTrace {
    /// The attempts of one step.
    pub fn attempts_of(&self, step: u32) -> impl Iterator<Item = &AttemptTrace> {
        self.attempts.iter().filter(move |a| a.step == step)
    }

    /// The tool calls of one step.
    pub fn tools_of(&self, step: u32) -> impl Iterator<Item = &ToolCallTrace> {
        self.tools.iter().filter(move |t| t.step == step)
    }

    /// `step` or `compaction` for a step number (`step` when unknown).
    pub fn step_kind(&self, step: u32) -> &str {
        step.checked_sub(1)
            .and_then(|i| self.step_kinds.get(i as usize))
            .map_or("step", String::as_str)
    }
}
