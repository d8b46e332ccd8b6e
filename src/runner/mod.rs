//! The runner: replays each scenario × cassette through the processor on virtual time, scores
//! the expectations and builds the run report.
//!
//! One replay is single-threaded and deterministic: the clock is the cassette's recorded `ms`
//! offsets plus the processor's virtual retry waits, tool results come from the scenario's
//! scripts or the cassette's `tool` lines, and nothing reads the wall clock except the
//! `wall_ms` field. Replays run in parallel over a worker pool; results are collected by job
//! index, so the report order never depends on scheduling.
//!
//! Tool-result precedence (FORMATS.md "Tool results"): a tool with `[[tools.results]]` is
//! answered by the scenario; otherwise by the cassette's `tool` lines (same `call_id`, else the
//! next unused line for that tool); otherwise the call gets an error result and the run a
//! warning — the chain of [`crate::session::SessionDriver`], shared with live recording.
//!
//! - [`pool`]: the worker pool (`run` and `bench`);
//! - [`drive`]: one replay of a scenario against a cassette;
//! - [`verdict`]: the run record built from the processor's outcome.

mod drive;
pub mod pool;
mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::cassette::{CassetteError, CassetteStream};
use crate::conversation::{Conversation, Message};
use crate::processor::{PriceTable, ProcessorConfig};
use crate::report::{RunRecord, RunReport};
use crate::scenario::{MatchMode, Scenario};

pub use drive::{replay, replay_stream};
pub use verdict::display_path;

/// Settings that apply to every replay of a run.
#[derive(Clone)]
pub struct RunOptions {
    /// Worker threads; 0 = one per core.
    pub jobs: usize,
    /// Override every scenario's request match mode.
    pub match_mode: Option<MatchMode>,
    /// Override every scenario's detectors (policy work: replay the corpus under another
    /// detector).
    pub detectors: Option<Vec<crate::processor::config::DetectorSpec>>,
    /// Override every scenario's retry policy.
    pub retry: Option<crate::processor::config::RetryPreset>,
    /// Override every scenario's doom action.
    pub doom_action: Option<crate::processor::config::DoomAction>,
    /// Override every scenario's compaction mode.
    pub compaction: Option<crate::processor::config::CompactionMode>,
    /// Override the agent's tool set (default: the scenario's `[[tools]]`): `tapeloop exec
    /// --vs-processor` gives the processor the tools the real agent declared.
    pub tools: Option<std::collections::BTreeSet<String>>,
    pub prices: Arc<PriceTable>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 0,
            match_mode: None,
            detectors: None,
            retry: None,
            doom_action: None,
            compaction: None,
            tools: None,
            prices: PriceTable::bundled(),
        }
    }
}

/// One unit of work: a scenario replayed against one of its cassettes.
#[derive(Debug, Clone)]
pub struct Job {
    pub scenario: Arc<Scenario>,
    pub cassette: PathBuf,
}

/// Every scenario × cassette pair, in scenario order then cassette order.
pub fn plan(scenarios: &[Arc<Scenario>]) -> Vec<Job> {
    scenarios
        .iter()
        .flat_map(|s| {
            s.cassettes.iter().map(move |c| Job {
                scenario: Arc::clone(s),
                cassette: c.path.clone(),
            })
        })
        .collect()
}

/// A replay that could not run at all (the cassette is unreadable).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Cassette(#[from] CassetteError),
}
/// Run every job on a worker pool and build the report. `on_done` is called after each job
/// (for a progress bar). Harness errors (unreadable cassettes) are returned together.
pub fn run_jobs(
    jobs: &[Job],
    opts: &RunOptions,
    on_done: &(dyn Fn(&Job) + Sync),
) -> Result<RunReport, Vec<RunError>> {
    let run = pool::run(
        pool::resolve_workers(opts.jobs),
        jobs.len(),
        &|| {},
        &mut || {},
        &|i| {
            let r = replay_job(&jobs[i], opts).map(|r| r.record);
            on_done(&jobs[i]);
            Ok(r)
        },
    );
    let mut runs = Vec::with_capacity(jobs.len());
    let mut errors = Vec::new();
    for r in run.results.into_iter().flatten() {
        match r {
            Ok(rec) => runs.push(rec),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The canonical order (scenario, then cassette) is the order `merge` produces, so an
    // unsharded report and the merge of its shards are byte-identical.
    let mut report = RunReport::new(runs);
    report.sort_runs();
    Ok(report)
}

/// Expectation keys a replay through the processor cannot show: it makes no real waits, so
/// whether `retry-after` was honoured is a question for `tapeloop exec`.
pub const NOT_OBSERVABLE: &[&str] = &["retry_after"];

/// One job's replay: its scored record and how many normalized events it consumed.
#[derive(Debug)]
pub struct Replayed {
    pub record: RunRecord,
    pub events: u64,
}

/// Replay one job, streaming its cassette, and score its expectations.
pub fn replay_job(job: &Job, opts: &RunOptions) -> Result<Replayed, RunError> {
    let started = Instant::now();
    let stream = CassetteStream::open(&job.cassette)?;
    let sc = &job.scenario;
    let (mut record, events) = replay_stream(sc, stream, &job.cassette, opts)?;
    sc.expect.score(
        &mut record,
        NOT_OBSERVABLE,
        "in a replay through the built-in processor",
    );
    record.wall_ms = Some(started.elapsed().as_millis() as u64);
    Ok(Replayed { record, events })
}

/// The processor configuration a scenario asks for, with the run's overrides applied.
pub fn processor_config(
    sc: &Scenario,
    opts: &RunOptions,
    provider: Option<&str>,
) -> ProcessorConfig {
    let mut cfg = ProcessorConfig::new(sc.model.clone().unwrap_or_default());
    cfg.provider = sc.provider.clone().or_else(|| provider.map(str::to_string));
    cfg.detectors = opts
        .detectors
        .clone()
        .unwrap_or_else(|| sc.policy.doom_loop.clone());
    cfg.doom_action = opts.doom_action.unwrap_or(sc.policy.doom_action);
    cfg.retry = opts.retry.unwrap_or(sc.policy.retry);
    cfg.seed = sc.policy.seed;
    cfg.max_steps = sc.limits.max_steps;
    cfg.soft_max_steps = sc.limits.soft_max_steps;
    if let Some(n) = sc.limits.max_retries {
        cfg.max_retries = n;
    }
    cfg.context_limit = sc.limits.context;
    cfg.output_limit = sc.limits.output;
    cfg.compaction = opts.compaction.unwrap_or(sc.policy.compaction);
    cfg.tools = opts.tools.clone().or_else(|| sc.tool_names());
    cfg.prices = Arc::clone(&opts.prices);
    cfg
}

/// The conversation a scenario starts from: system prompt, user prompt, tools.
pub fn initial_conversation(sc: &Scenario) -> Conversation {
    Conversation {
        system: sc.system.clone(),
        messages: vec![Message::User {
            content: sc.prompt.clone(),
        }],
        tools: sc.tool_specs(),
    }
}
