//! The run record of one replay: the processor's outcome, what the driver saw, and how the
//! cassette ended, in the report's terms.

use std::path::{Path, PathBuf};

use crate::cassette::Header;
use crate::replay::ReplayEnd;
use crate::report::{DetectorResult, DoomLoopHit, Finish, RetryRecord, RunRecord, StepDetail};
use crate::scenario::Scenario;
use crate::session::SessionEnd;

/// What the replay loop saw besides the processor's own outcome.
#[derive(Debug, Default)]
pub(super) struct DriverStats {
    pub ttft_ms: Option<u64>,
    pub stream_ms: u64,
    pub divergence: Option<String>,
    pub warnings: Vec<String>,
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
    let model = header
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| sc.model.clone())
        .unwrap_or_default();
    let provider = header
        .provider
        .clone()
        .or_else(|| sc.provider.clone())
        .unwrap_or_else(|| "unknown".to_string());
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
    rec.detectors = outcome
        .detectors
        .iter()
        .map(|d| DetectorResult {
            detector: d.detector.to_string(),
            step: d.first.as_ref().map(|f| f.step),
            tool: d.first.as_ref().map(|f| f.tool.clone()),
        })
        .collect();
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
    rec
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
