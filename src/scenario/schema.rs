//! The parsed, validated scenario. Built only by the loader (`load`), so every value here has
//! been checked: names parse, counts are in range, cassettes exist (unless not asked to check).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::conversation::ToolSpec;
use crate::processor::config::{CompactionMode, DetectorSpec, DoomAction, RetryPreset};
use crate::provider::Api;

use super::expect::Expectations;

/// A scenario: the world the model acts in, the cassettes to replay, and what to expect.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `name`, or the file stem.
    pub name: String,
    pub description: Option<String>,
    /// The wire API; absent = take it from each cassette's header.
    pub api: Option<Api>,
    /// The model; absent = take it from each cassette's header.
    pub model: Option<String>,
    /// The provider name (for recording and reports); absent = from the cassette header.
    pub provider: Option<String>,
    /// Cassettes to replay, in file order; several = provider comparison.
    pub cassettes: Vec<CassetteRef>,
    pub system: Option<String>,
    pub prompt: String,
    pub limits: Limits,
    pub policy: Policy,
    /// Tools offered to the model, in file order.
    pub tools: Vec<ScenarioTool>,
    pub expect: Expectations,
    /// `[agent]`: the agent `tapeloop exec` runs for this scenario, if the scenario names one.
    pub agent: Option<super::AgentTable>,
}

impl Scenario {
    /// The tool specs to offer the model.
    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec.clone()).collect()
    }

    /// The agent's tool set: the `[[tools]]` names, or `None` when the scenario declares no
    /// tools (then every call counts as a call to a tool the agent has). With a set, a call to
    /// any other name is rerouted as opencode does (`processor::toolset`).
    pub fn tool_names(&self) -> Option<BTreeSet<String>> {
        (!self.tools.is_empty()).then(|| self.tools.iter().map(|t| t.spec.name.clone()).collect())
    }
}

/// A cassette entry: as written in the file, and resolved against the file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CassetteRef {
    pub written: String,
    pub path: PathBuf,
}

/// `[limits]`: absent values are left to the processor's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Hard limit: the run ends with `max-steps` after this many steps.
    pub max_steps: Option<u32>,
    /// opencode's soft limit: from this step on the request carries the "maximum steps
    /// reached" message; the run is not stopped.
    pub soft_max_steps: Option<u32>,
    /// Hard guard on retries, also for policies that retry forever.
    pub max_retries: Option<u32>,
    /// Model context limit for the compaction check (default: the price table).
    pub context: Option<u64>,
    /// Model output limit for the compaction check (default: the price table).
    pub output: Option<u64>,
}

crate::string_enum! {
    /// How replayed requests are checked against the cassette (`[policy] match`).
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub enum MatchMode: "match mode" {
        /// Requests are answered by the recorded interactions in order; bodies are not
        /// compared.
        #[default]
        Sequence = "sequence",
        /// As `sequence`, and each request body must equal the recorded one (parsed JSON,
        /// redacted values excepted); the first difference ends the run with `divergence`.
        Strict = "strict",
    }
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Detectors to run side by side; the first listed wins ties. Default `[opencode]`;
    /// an explicit empty list runs none.
    pub doom_loop: Vec<DetectorSpec>,
    pub doom_action: DoomAction,
    pub retry: RetryPreset,
    /// Jitter seed: the same seed replays the same retry schedule.
    pub seed: u64,
    pub compaction: CompactionMode,
    pub match_mode: MatchMode,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            doom_loop: vec![DetectorSpec::Opencode],
            doom_action: DoomAction::default(),
            retry: RetryPreset::default(),
            seed: 0,
            compaction: CompactionMode::default(),
            match_mode: MatchMode::default(),
        }
    }
}

/// One `[[tools]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioTool {
    pub spec: ToolSpec,
    /// `[[tools.results]]` in file order; empty = answered from the cassette's `tool` lines.
    pub results: Vec<ResultRule>,
}

/// One `[[tools.results]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRule {
    /// Matches a call when every key is present in the arguments with an equal value
    /// (recursively for objects); `None` matches every call.
    pub when: Option<Map<String, Value>>,
    pub answer: ToolAnswer,
    /// 1-based line of the entry in the scenario file (for warnings).
    pub line: usize,
}

/// A tool result to send back to the model: a `[[tools.results]]` entry's answer, and what
/// [`ToolScripts`](super::ToolScripts) answers a call with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAnswer {
    pub output: String,
    pub is_error: bool,
}
