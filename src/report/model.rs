//! The run report (`--format json`), field for field as FORMATS.md "Run report".
//!
//! Field order in the structs is the serialized order and matches FORMATS.md. Fields beyond the
//! fixed ones are optional extras, skipped when empty so reports stay small and diffable:
//!
//! | field | meaning |
//! |---|---|
//! | `unused_interactions` | recorded interactions the run never asked for (skipped when 0) |
//! | `truncated` | the cassette had no footer: it was cut short while recording (skipped when false) |
//! | `warnings` | non-fatal problems, e.g. a tool call nothing could answer (skipped when empty) |
//! | `divergence` | the first differing JSON path of a request the cassette could not answer |
//! | `stream_ms` | recorded stream duration: the sum over answered interactions of the last chunk's `ms` |
//! | `wall_ms` | wall-clock duration of the replay — the **only nondeterministic field**; determinism comparisons drop it ([`RunRecord::deterministic`]) |
//! | `step_details` | per step: number, status, finish reason, tool calls, tokens, cost, simulated start/finish |
//!
//! `trace` ([`RunTrace`]) is never serialized: the HTML drill-down's extra detail.
//!
//! Readers ([`RunReport::from_json`]) accept only `format == 1` and ignore unknown fields, so a
//! newer tapeloop can add extras without breaking older consumers.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::event::Usage;
use crate::provider::Api;

use super::trace::RunTrace;
use super::ReportError;

/// The report format version this code reads and writes.
pub const REPORT_FORMAT: u32 = 1;

/// Why a run ended (FORMATS.md "Termination reasons"): the processor's termination, under
/// the name reports and scenarios use.
pub use crate::processor::Termination as Finish;

/// Every termination reason name, in FORMATS.md order (for messages and suggestions); the
/// last two only `tapeloop exec` reports.
pub const FINISH_REASONS: &[&str] = &Finish::NAMES;

/// A whole report: every run of one `tapeloop run` plus the pass/fail summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The tapeloop version that produced the report.
    pub tapeloop: String,
    /// Always [`REPORT_FORMAT`].
    pub format: u32,
    pub runs: Vec<RunRecord>,
    pub summary: Summary,
}

/// Run counts; always consistent with `runs` after [`RunReport::new`] or [`RunReport::recompute_summary`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
}

/// The first detection that counted as the run's doom loop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoomLoopHit {
    pub step: u32,
    pub tool: String,
    /// The detector name as written in scenarios (`opencode`, `consecutive:4`, …).
    pub detector: String,
    /// `tapeloop exec` only: whether the agent stopped at the detection (no further request,
    /// or a rejection sent as the call's result). Absent for the built-in processor, which
    /// always acts on its own detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
}

/// One detector's own first detection; `step`/`tool` are `null` when it never fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorResult {
    pub detector: String,
    pub step: Option<u32>,
    pub tool: Option<String>,
}

impl From<&crate::processor::DetectorReport> for DetectorResult {
    fn from(r: &crate::processor::DetectorReport) -> Self {
        DetectorResult {
            detector: r.detector.to_string(),
            step: r.first.as_ref().map(|f| f.step),
            tool: r.first.as_ref().map(|f| f.tool.clone()),
        }
    }
}

/// One failed attempt that was retried (or that exhausted the retries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRecord {
    pub step: u32,
    /// The number of the attempt that failed.
    pub attempt: u32,
    /// HTTP status; `null` for an in-stream or network error.
    pub status: Option<u16>,
    /// The (virtual) wait before the next attempt.
    pub delay_ms: u64,
    pub reason: String,
    /// `tapeloop exec` only: the `retry-after` wait as recorded, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_ms: Option<u64>,
    /// `tapeloop exec` only: the wait served to the agent (after `--retry-after-scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_ms: Option<u64>,
    /// `tapeloop exec` only: the agent's real gap between the error and its next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
}

/// Per-step detail (optional extra `step_details`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDetail {
    /// 1-based step number.
    pub step: u32,
    /// `running`, `completed`, `error` or `doom_loop`.
    pub status: String,
    /// The provider's finish reason of the step's last response, if any.
    #[serde(default)]
    pub finish: Option<String>,
    #[serde(default)]
    pub tool_calls: u32,
    #[serde(default)]
    pub tokens: Usage,
    #[serde(default)]
    pub cost_usd: f64,
    /// Simulated time at which the step started and finished.
    #[serde(default)]
    pub started_ms: u64,
    #[serde(default)]
    pub finished_ms: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The outcome of replaying one scenario against one cassette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub scenario: String,
    /// The cassette path as the runner names it (relative to the working directory).
    pub cassette: String,
    pub api: Api,
    pub provider: String,
    pub model: String,
    pub finish: Finish,
    pub steps: u32,
    pub tool_calls: u32,
    pub doom_loop: Option<DoomLoopHit>,
    #[serde(default)]
    pub detectors: Vec<DetectorResult>,
    #[serde(default)]
    pub retries: Vec<RetryRecord>,
    #[serde(default)]
    pub tokens: Usage,
    pub cost_usd: f64,
    pub sim_ms: u64,
    #[serde(default)]
    pub ttft_ms: Option<u64>,
    pub passed: bool,
    #[serde(default)]
    pub failures: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unused_interactions: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_ms: Option<u64>,
    /// Wall-clock time: the only nondeterministic field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_details: Vec<StepDetail>,
    /// Drill-down detail for the HTML report; never serialized ([`RunTrace`]).
    #[serde(skip)]
    pub trace: RunTrace,
    /// Expected keys this run cannot show (`tapeloop exec`: a black-box agent has no virtual
    /// time; `run`: the processor makes no real waits): neither passed nor failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_observable: Vec<String>,
    /// `tapeloop exec` only: how the agent's process ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentOutcome>,
    /// `tapeloop exec --vs-processor`: agreement with the built-in processor, per field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<Fidelity>,
}

/// `fidelity: {agree, fields: {NAME: {agent, processor, agree}}}` (`exec --vs-processor`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    pub agree: bool,
    pub fields: IndexMap<String, FieldAgreement>,
}

/// One compared field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldAgreement {
    pub agent: serde_json::Value,
    pub processor: serde_json::Value,
    pub agree: bool,
}

/// How an agent under test ended (`tapeloop exec`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOutcome {
    /// `null` when it was killed (timeout) or ended by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub wall_ms: u64,
    /// The last lines of its output, for the report.
    pub stdout_tail: String,
    pub stderr_tail: String,
}

impl RunRecord {
    /// A record with every metric zero, for the runner (and tests) to fill in.
    pub fn new(
        scenario: impl Into<String>,
        cassette: impl Into<String>,
        api: Api,
        provider: impl Into<String>,
        model: impl Into<String>,
        finish: Finish,
    ) -> Self {
        RunRecord {
            scenario: scenario.into(),
            cassette: cassette.into(),
            api,
            provider: provider.into(),
            model: model.into(),
            finish,
            steps: 0,
            tool_calls: 0,
            doom_loop: None,
            detectors: Vec::new(),
            retries: Vec::new(),
            tokens: Usage::default(),
            cost_usd: 0.0,
            sim_ms: 0,
            ttft_ms: None,
            passed: true,
            failures: Vec::new(),
            unused_interactions: 0,
            truncated: false,
            warnings: Vec::new(),
            divergence: None,
            stream_ms: None,
            wall_ms: None,
            step_details: Vec::new(),
            trace: RunTrace::default(),
            not_observable: Vec::new(),
            agent: None,
            fidelity: None,
        }
    }

    /// The cassette's file name (the last path component), as shown in tables and JUnit names.
    pub fn cassette_file(&self) -> &str {
        self.cassette
            .rsplit(['/', '\\'])
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.cassette)
    }

    /// `scenario [cassette file]`, the run's label in messages.
    pub fn label(&self) -> String {
        format!("{} [{}]", self.scenario, self.cassette_file())
    }

    /// Total time waited before retries.
    pub fn retry_wait_ms(&self) -> u64 {
        self.retries.iter().map(|r| r.delay_ms).sum()
    }

    /// The record without its nondeterministic field (`wall_ms`), for determinism comparisons.
    pub fn deterministic(&self) -> RunRecord {
        RunRecord {
            wall_ms: None,
            ..self.clone()
        }
    }

    /// Record the outcome of the expectation check: `passed` is true exactly when there are no
    /// failures.
    pub fn set_failures(&mut self, failures: Vec<String>) {
        self.passed = failures.is_empty();
        self.failures = failures;
    }
}

impl RunReport {
    /// A report of these runs by this tapeloop version, summary computed.
    pub fn new(runs: Vec<RunRecord>) -> Self {
        let mut report = RunReport {
            tapeloop: crate::VERSION.to_string(),
            format: REPORT_FORMAT,
            runs,
            summary: Summary::default(),
        };
        report.recompute_summary();
        report
    }

    /// Recount `summary` from `runs`.
    pub fn recompute_summary(&mut self) {
        let passed = self.runs.iter().filter(|r| r.passed).count();
        self.summary = Summary {
            runs: self.runs.len(),
            passed,
            failed: self.runs.len() - passed,
        };
    }

    /// Sort runs by scenario, then cassette: the canonical order of merged reports.
    pub fn sort_runs(&mut self) {
        self.runs.sort_by(|a, b| {
            (a.scenario.as_str(), a.cassette.as_str())
                .cmp(&(b.scenario.as_str(), b.cassette.as_str()))
        });
    }

    /// True when every run passed.
    pub fn all_passed(&self) -> bool {
        self.runs.iter().all(|r| r.passed)
    }

    /// The report without wall-clock times, for determinism comparisons.
    pub fn deterministic(&self) -> RunReport {
        RunReport {
            runs: self.runs.iter().map(RunRecord::deterministic).collect(),
            ..self.clone()
        }
    }

    /// Pretty, stable JSON (field order as FORMATS.md), with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Serialization of plain data only fails for non-finite floats, which serde_json
            // writes as null anyway; keep the failure visible rather than panic.
            format!("{{\"error\":\"{e}\"}}")
        });
        s.push('\n');
        s
    }

    /// Read a report: `format` must be 1; unknown fields are ignored. `origin` names the
    /// source in errors (a path, or `<stdin>`).
    pub fn from_json(text: &str, origin: &str) -> Result<RunReport, ReportError> {
        // Check the version first so a future format gets a clear message instead of a
        // field error.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ReportError::Json {
                origin: origin.to_string(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        match value.get("format").and_then(|f| f.as_u64()) {
            Some(1) => {}
            Some(other) => {
                return Err(ReportError::UnsupportedFormat {
                    origin: origin.to_string(),
                    found: other.to_string(),
                })
            }
            None => {
                return Err(ReportError::UnsupportedFormat {
                    origin: origin.to_string(),
                    found: value
                        .get("format")
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "nothing (no `format` field)".into()),
                })
            }
        }
        serde_json::from_str(text).map_err(|e| ReportError::Json {
            origin: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Read a report file (see [`RunReport::from_json`]).
    pub fn read(path: &std::path::Path) -> Result<RunReport, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        RunReport::from_json(&text, &path.display().to_string())
    }
}
