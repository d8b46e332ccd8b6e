//! What a run produced: termination reason, per-step records, retries, doom-loop detections,
//! usage and cost, warnings and the final conversation. Field names follow FORMATS.md (run
//! report) so the runner can map them one to one.

use serde::{Deserialize, Serialize};

use super::config::DetectorSpec;
use crate::conversation::Conversation;
use crate::event::{ErrorClass, FinishReason, Usage};

crate::string_enum! {
    /// Why a run ended (FORMATS.md "Termination reasons").
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum Termination: "termination reason" {
        /// The model finished with a reason other than `tool-calls`/`unknown` (reference §4.2).
        Completed = "completed",
        /// The hard step limit was reached while the loop wanted to continue.
        MaxSteps = "max-steps",
        /// A doom-loop detector fired and the doom action ended the turn (reference §2.3).
        DoomLoop = "doom-loop",
        /// A retryable error outlived the retry policy or the `max_retries` guard.
        RetriesExhausted = "retries-exhausted",
        /// The context overflowed (finish-step check or provider error) and compaction is
        /// off, or the compaction request itself overflowed (reference §6).
        ContextOverflow = "context-overflow",
        /// A non-retryable provider error (reference §7, tier 4).
        ProviderError = "provider-error",
        /// The driver aborted the run.
        Aborted = "aborted",
        /// The loop asked for something the cassette cannot answer.
        Divergence = "divergence",
        /// The cassette ran out of interactions.
        CassetteExhausted = "cassette-exhausted",
    }
}

crate::string_enum! {
    /// Status of one step, as in the seed's `StepInfo.status`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum StepStatus: "step status" {
        Running = "running",
        Completed = "completed",
        Error = "error",
        DoomLoop = "doom_loop",
    }
}

/// What a model request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// A normal agent-loop step.
    Step,
    /// The summary request of a compaction (reference §6.3): no tools, history plus the
    /// compaction prompt.
    Compaction,
}

/// One step: one model request and its retries (reference §4.3 "a step is one model request").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based; compaction requests are numbered like steps (opencode's loop counts them).
    pub number: u32,
    pub kind: RequestKind,
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
    pub status: StepStatus,
    /// Names of the client tools the model called in this step, in call order (all attempts;
    /// provider-executed server tools are not counted).
    pub tool_calls: Vec<String>,
    pub finish_reason: Option<FinishReason>,
    /// Usage of the successful attempt (failed attempts are not counted).
    pub usage: Usage,
    pub cost_usd: f64,
    /// Attempts made for this step (1 + retries).
    pub attempts: u32,
}

/// One retry decision of the policy: the attempt that failed, the wait before the next one
/// and why (the report shows it as a `report::RetryRecord`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryDecision {
    pub step: u32,
    /// The number of the attempt that failed (1-based).
    pub attempt: u32,
    /// HTTP status; `None` for in-stream and network errors.
    pub status: Option<u16>,
    pub delay_ms: u64,
    /// The policy's message for the retry (opencode's `retryable()` text, else the error's).
    pub reason: String,
    pub class: ErrorClass,
    /// The wait the server asked for (`retry-after` and kin), whether or not it was honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// One doom-loop detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub detector: DetectorSpec,
    pub step: u32,
    /// The tool whose call fired; for `fanout` the step's tools joined by `,`; empty for
    /// `text-repeat`, which fires on text.
    pub tool: String,
    /// 1-based index of the session's tool call at which the detector fired (for `fanout` and
    /// `text-repeat`, evaluated at finish-step: the number of calls made so far).
    pub call_index: u64,
    /// Human-readable description of what matched.
    pub rule: String,
}

/// One configured detector and its first detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorReport {
    pub detector: DetectorSpec,
    pub first: Option<Detection>,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub termination: Option<Termination>,
    pub termination_detail: Option<String>,
    pub steps: Vec<StepRecord>,
    pub retries: Vec<RetryDecision>,
    /// The run's first detection: earliest call, ties go to the detector listed first.
    pub doom_loop: Option<Detection>,
    pub detectors: Vec<DetectorReport>,
    pub usage: Usage,
    pub cost_usd: f64,
    /// Client tool calls the model made (all attempts). Provider-executed server tools (web
    /// search, code execution) run inside the provider's response and are not counted.
    pub tool_calls: u32,
    /// Simulated milliseconds from `start` to the last call into the processor.
    pub sim_ms: u64,
    pub warnings: Vec<String>,
    /// The final history (system, messages, tools); filled in when the run ends (until then
    /// it is the starting conversation).
    pub conversation: Conversation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_names_round_trip() {
        for t in Termination::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(t.as_str().parse::<Termination>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert!("done".parse::<Termination>().is_err());
    }

    #[test]
    fn step_status_serializes_snake_case() {
        assert_eq!(
            serde_json::to_string(&StepStatus::DoomLoop).unwrap(),
            "\"doom_loop\""
        );
        assert_eq!(StepStatus::Running.as_str(), "running");
    }
}
