//! The run record of one replay: the processor's outcome, what the driver saw, and how the
//! cassette ended, in the report's terms.

use std::path::{Path, PathBuf};

use crate::cassette::Header;
use crate::conversation::{AssistantPart, Message};
use crate::event::ToolCall;
use crate::processor::{Outcome, RequestKind};
use crate::replay::ReplayEnd;
use crate::report::{
    AttemptTrace, DetectorResult, DoomLoopHit, Finish, RetryRecord, RunRecord, RunTrace,
    StepDetail, ToolCallTrace,
};
use crate::scenario::Scenario;
use crate::session::SessionEnd;

/// What the replay loop saw besides the processor's own outcome.
#[derive(Debug, Default)]
pub(super) struct DriverStats {
    pub ttft_ms: Option<u64>,
    pub stream_ms: u64,
    pub divergence: Option<String>,
    pub warnings: Vec<String>,
    /// Every request attempt's timing, for the HTML drill-down.
    pub attempts: Vec<AttemptTrace>,
    /// The doom action in force.
    pub doom_action: Option<String>,
}

pub(super) fn build_record(
    sc: &Scenario,
    header: &Header,
    cassette_path: &Path,
    session: SessionEnd,
    stats: DriverStats,
    end: &ReplayEnd,
) -> RunRecord {
    let outcome = session.outcome;
    let finish = outcome
        .termination
        .and_then(|t| t.as_str().parse::<Finish>().ok())
        .unwrap_or(Finish::Aborted);
    let model = header.model_or(sc.model.as_deref());
    let provider = header.provider_or(sc.provider.as_deref());
    let mut rec = RunRecord::new(
        sc.name.clone(),
        display_path(cassette_path),
        header.api,
        provider,
        model,
        finish,
    );
    rec.steps = outcome.steps.len() as u32;
    rec.tool_calls = outcome.tool_calls;
    rec.doom_loop = outcome.doom_loop.as_ref().map(|d| DoomLoopHit {
        step: d.step,
        tool: d.tool.clone(),
        detector: d.detector.to_string(),
        ..Default::default()
    });
    rec.detectors = outcome.detectors.iter().map(DetectorResult::from).collect();
    rec.retries = outcome
        .retries
        .iter()
        .map(|r| RetryRecord {
            step: r.step,
            attempt: r.attempt,
            status: r.status,
            delay_ms: r.delay_ms,
            reason: r.reason.clone(),
            ..Default::default()
        })
        .collect();
    rec.tokens = outcome.usage;
    rec.cost_usd = round_cost(outcome.cost_usd);
    rec.sim_ms = outcome.sim_ms;
    rec.ttft_ms = stats.ttft_ms;
    rec.unused_interactions = end.unused as u32;
    rec.truncated = end.truncated;
    rec.warnings = outcome.warnings.clone();
    rec.warnings.extend(session.warnings);
    rec.warnings.extend(stats.warnings);
    rec.divergence = stats.divergence;
    rec.stream_ms = Some(stats.stream_ms);
    rec.step_details = outcome
        .steps
        .iter()
        .map(|s| StepDetail {
            step: s.number,
            status: s.status.as_str().to_string(),
            finish: s.finish_reason.map(|f| f.to_string()),
            tool_calls: s.tool_calls.len() as u32,
            tokens: s.usage,
            cost_usd: round_cost(s.cost_usd),
            started_ms: s.started_ms,
            finished_ms: s.finished_ms.unwrap_or(s.started_ms),
        })
        .collect();
    rec.trace = RunTrace {
        attempts: stats.attempts,
        tools: tool_calls(&outcome),
        retry_after_ms: outcome.retries.iter().map(|r| r.retry_after_ms).collect(),
        step_kinds: outcome
            .steps
            .iter()
            .map(|s| match s.kind {
                RequestKind::Step => "step".to_string(),
                RequestKind::Compaction => "compaction".to_string(),
            })
            .collect(),
        doom_action: stats.doom_action,
        finish_detail: outcome.termination_detail.clone(),
    };
    rec
}

/// The client tool calls with their results, each assigned to its step.
///
/// The steps list the names they called (all attempts); the final history holds the calls that
/// were kept, with their arguments and results, in the same order. Walking both together pairs
/// a step's call with the next history call when the names agree; calls of failed attempts
/// (not in the history) stay unpaired and are shown by name only.
fn tool_calls(outcome: &Outcome) -> Vec<ToolCallTrace> {
    let mut results = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for m in &outcome.conversation.messages {
        match m {
            Message::Assistant { parts } => {
                for p in parts {
                    if let AssistantPart::ToolCall(ToolCall {
                        id,
                        tool,
                        input,
                        provider_executed: false,
                        ..
                    }) = p
                    {
                        calls.push((id.as_str(), tool.as_str(), input.to_string()));
                    }
                }
            }
            Message::Tool { results: rs } => {
                for r in rs {
                    results.insert(r.call_id.as_str(), (r.output.clone(), r.is_error));
                }
            }
            Message::User { .. } => {}
        }
    }
    let mut history = calls.into_iter().peekable();
    let mut out = Vec::new();
    for s in &outcome.steps {
        for name in &s.tool_calls {
            let kept = history.next_if(|(_, tool, _)| tool == name);
            let (input, output, is_error) = match kept {
                Some((id, _, input)) => match results.get(id) {
                    Some((o, e)) => (input, Some(o.clone()), *e),
                    None => (input, None, false),
                },
                None => (String::new(), None, false),
            };
            out.push(ToolCallTrace {
                step: s.number,
                tool: name.clone(),
                input,
                output,
                is_error,
            });
        }
    }
    out
}

/// Costs are reported to a tenth of a micro-dollar so float noise never shows in diffs.
fn round_cost(c: f64) -> f64 {
    (c * 1e7).round() / 1e7
}

/// Paths in reports are relative to the working directory when possible, with `/`.
pub fn display_path(p: &Path) -> String {
    // Read once: tapeloop never changes directory, and `getcwd` per replay showed in profiles.
    static CWD: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let cwd = CWD.get_or_init(|| std::env::current_dir().ok());
    let rel = cwd
        .as_deref()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf());
    let s = rel.to_string_lossy().replace('\\', "/");
    normalize(&s)
}

/// Collapse `a/../b` and `./` segments without touching the file system.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "." => {}
            "" if !out.is_empty() => {}
            ".." if out.last().is_some_and(|s| *s != ".." && !s.is_empty()) => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_relative_paths() {
        assert_eq!(
            normalize("scenarios/../recordings/a.jsonl"),
            "recordings/a.jsonl"
        );
        assert_eq!(normalize("./a/./b"), "a/b");
        assert_eq!(normalize("/abs/x/../y"), "/abs/y");
        assert_eq!(normalize("../up/a"), "../up/a");
    }
}
