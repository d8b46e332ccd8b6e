//! Baselines: a saved report to compare later runs against, and the regression rules.
//!
//! A baseline is a run report (JSON, format 1) stored as `<dir>/<NAME>.json`, by default under
//! [`DEFAULT_BASELINE_DIR`]. It is saved without `wall_ms` so that re-saving an unchanged suite
//! gives an identical file.
//!
//! [`compare_to_baseline`] matches runs by scenario × cassette and reports, per run:
//!
//! | metric | default rule ([`RegressionRules::default`]) |
//! |---|---|
//! | `steps`, `tool_calls`, `retries` (count) | any increase |
//! | `tokens` (total of all five classes), `cost_usd` | an increase of more than 5% |
//! | `sim_ms` | an increase of more than 5% |
//! | `doom_loop` | detected at a later step, no longer detected, or newly detected |
//! | `passed` | passed in the baseline, fails now |
//! | `run` | present in the baseline, missing now |
//!
//! A numeric metric regresses when its increase exceeds **both** the absolute and the
//! relative threshold: `current − baseline > abs` and `current − baseline > rel × baseline`.
//! Decreases are never regressions. Runs new in the current report are not regressions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::model::{RunRecord, RunReport};
use super::text::format_usd;
use super::ReportError;

/// Where baselines live unless the caller says otherwise.
pub const DEFAULT_BASELINE_DIR: &str = ".tapeloop/baselines";

/// When an increase counts: it must exceed both `abs` (in the metric's unit) and `rel` (a
/// fraction of the baseline value, 0.05 = 5%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub abs: f64,
    pub rel: f64,
}

impl Threshold {
    /// Any increase.
    pub const ANY: Threshold = Threshold { abs: 0.0, rel: 0.0 };

    /// An increase of more than `rel` (fraction) of the baseline.
    pub const fn relative(rel: f64) -> Threshold {
        Threshold { abs: 0.0, rel }
    }

    /// Whether going from `baseline` to `current` exceeds the threshold. A tiny tolerance
    /// absorbs float rounding so that exactly +5% is not a regression under a 5% rule.
    pub fn exceeded(&self, baseline: f64, current: f64) -> bool {
        let delta = current - baseline;
        let tol = |limit: f64| limit + 1e-9 * limit.abs().max(1e-9);
        delta > tol(self.abs) && delta > tol(self.rel * baseline.abs())
    }
}

/// Per-metric thresholds; `None` turns a metric's check off.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionRules {
    pub steps: Option<Threshold>,
    pub tool_calls: Option<Threshold>,
    pub retries: Option<Threshold>,
    pub tokens: Option<Threshold>,
    pub cost_usd: Option<Threshold>,
    pub sim_ms: Option<Threshold>,
    /// Steps by which a doom loop may be detected later than in the baseline (default 0).
    /// `None` turns all doom-loop checks off.
    pub doom_loop_later_by: Option<u32>,
    /// A doom loop that the baseline did not have is a regression (default true).
    pub doom_loop_new: bool,
    /// A doom loop that the baseline had and the current run does not is a regression
    /// (default true).
    pub doom_loop_lost: bool,
    /// A run that passed in the baseline and fails now (default true).
    pub newly_failing: bool,
    /// A run present in the baseline and missing now (default true).
    pub missing_runs: bool,
}

impl Default for RegressionRules {
    fn default() -> Self {
        RegressionRules {
            steps: Some(Threshold::ANY),
            tool_calls: Some(Threshold::ANY),
            retries: Some(Threshold::ANY),
            tokens: Some(Threshold::relative(0.05)),
            cost_usd: Some(Threshold::relative(0.05)),
            sim_ms: Some(Threshold::relative(0.05)),
            doom_loop_later_by: Some(0),
            doom_loop_new: true,
            doom_loop_lost: true,
            newly_failing: true,
            missing_runs: true,
        }
    }
}

/// One regressed metric of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    pub scenario: String,
    pub cassette: String,
    /// `steps`, `tool_calls`, `retries`, `tokens`, `cost_usd`, `sim_ms`, `doom_loop`, `passed`
    /// or `run`.
    pub metric: String,
    /// The baseline value (doom loop: its step, 0 when none; passed/run: 1 or 0).
    pub baseline: f64,
    pub current: f64,
    /// `read-loop [read-loop.openai.jsonl]: steps regressed 5 → 7 (+2)`.
    pub message: String,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The file of baseline `name` under `dir`. Names are plain file names: letters, digits, `.`,
/// `_`, `-`, not starting with `.` (so a name can never escape the directory).
pub fn baseline_path(dir: &Path, name: &str) -> Result<PathBuf, ReportError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(ReportError::BadBaselineName(name.to_string()));
    }
    Ok(dir.join(format!("{name}.json")))
}

/// Save `report` as baseline `name` under `dir` (created if missing), without wall-clock
/// times. Written to a temporary file and renamed, so a crash never leaves half a baseline.
pub fn save_baseline(report: &RunReport, dir: &Path, name: &str) -> Result<PathBuf, ReportError> {
    let path = baseline_path(dir, name)?;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ReportError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{name}.json.tmp"));
    std::fs::write(&tmp, report.deterministic().to_json()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

/// Load baseline `name` from `dir`.
pub fn load_baseline(dir: &Path, name: &str) -> Result<RunReport, ReportError> {
    RunReport::read(&baseline_path(dir, name)?)
}

fn fmt_num(metric: &str, v: f64) -> String {
    if metric == "cost_usd" {
        format_usd(v)
    } else {
        format!("{}", v as u64)
    }
}

fn numeric_message(label: &str, metric: &str, base: f64, cur: f64) -> String {
    let delta = cur - base;
    let abs = if metric == "cost_usd" {
        format!("+{}", format_usd(delta))
    } else {
        format!("+{}", delta as u64)
    };
    let rel = if base > 0.0 {
        format!(", +{:.1}%", delta / base * 100.0)
    } else {
        String::new()
    };
    format!(
        "{label}: {metric} regressed {} → {} ({abs}{rel})",
        fmt_num(metric, base),
        fmt_num(metric, cur)
    )
}

/// Compare a report against a baseline under `rules`; regressions come in baseline run order,
/// metrics in the table's order.
pub fn compare_to_baseline(
    current: &RunReport,
    baseline: &RunReport,
    rules: &RegressionRules,
) -> Vec<Regression> {
    let now: HashMap<(&str, &str), &RunRecord> = current
        .runs
        .iter()
        .map(|r| ((r.scenario.as_str(), r.cassette.as_str()), r))
        .collect();
    let mut out = Vec::new();
    for base in &baseline.runs {
        let label = base.label();
        let mut push = |metric: &str, b: f64, c: f64, message: String| {
            out.push(Regression {
                scenario: base.scenario.clone(),
                cassette: base.cassette.clone(),
                metric: metric.to_string(),
                baseline: b,
                current: c,
                message,
            })
        };
        let Some(cur) = now.get(&(base.scenario.as_str(), base.cassette.as_str())) else {
            if rules.missing_runs {
                push(
                    "run",
                    1.0,
                    0.0,
                    format!("{label}: run missing (in the baseline, not in this report)"),
                );
            }
            continue;
        };
        if rules.newly_failing && base.passed && !cur.passed {
            let why = if cur.failures.is_empty() {
                String::new()
            } else {
                format!(": {}", cur.failures.join("; "))
            };
            push(
                "passed",
                1.0,
                0.0,
                format!("{label}: passed before, fails now{why}"),
            );
        }
        let numeric: [(&str, Option<Threshold>, f64, f64); 6] = [
            ("steps", rules.steps, base.steps as f64, cur.steps as f64),
            (
                "tool_calls",
                rules.tool_calls,
                base.tool_calls as f64,
                cur.tool_calls as f64,
            ),
            (
                "retries",
                rules.retries,
                base.retries.len() as f64,
                cur.retries.len() as f64,
            ),
            (
                "tokens",
                rules.tokens,
                base.tokens.total() as f64,
                cur.tokens.total() as f64,
            ),
            ("cost_usd", rules.cost_usd, base.cost_usd, cur.cost_usd),
            (
                "sim_ms",
                rules.sim_ms,
                base.sim_ms as f64,
                cur.sim_ms as f64,
            ),
        ];
        for (metric, rule, b, c) in numeric {
            if let Some(t) = rule {
                if t.exceeded(b, c) {
                    push(metric, b, c, numeric_message(&label, metric, b, c));
                }
            }
        }
        let Some(later_by) = rules.doom_loop_later_by else {
            continue;
        };
        match (&base.doom_loop, &cur.doom_loop) {
            (Some(b), Some(c)) if c.step > b.step.saturating_add(later_by) => push(
                "doom_loop",
                b.step as f64,
                c.step as f64,
                format!(
                    "{label}: doom_loop detected later: step {} → step {} (+{})",
                    b.step,
                    c.step,
                    c.step - b.step
                ),
            ),
            (Some(b), None) if rules.doom_loop_lost => push(
                "doom_loop",
                b.step as f64,
                0.0,
                format!(
                    "{label}: doom_loop no longer detected (was step {}, {}, {})",
                    b.step, b.tool, b.detector
                ),
            ),
            (None, Some(c)) if rules.doom_loop_new => push(
                "doom_loop",
                0.0,
                c.step as f64,
                format!(
                    "{label}: doom_loop newly detected at step {} ({}, {})",
                    c.step, c.tool, c.detector
                ),
            ),
            _ => {}
        }
    }
    out
}
