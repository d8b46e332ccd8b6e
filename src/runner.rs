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
//! warning.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cassette::{Cassette, CassetteError, CassetteStream, Header};
use crate::conversation::{Conversation, Message};
use crate::event::{EndOutcome, StreamEvent};
use crate::processor::{Action, Outcome, PriceTable, Processor, ProcessorConfig, Termination};
use crate::provider::ResponseDecoder;
use crate::report::{
    DetectorResult, DoomLoopHit, Finish, RetryRecord, RunRecord, RunReport, StepDetail,
};
use crate::scenario::{MatchMode, Scenario, ToolScripts};
use crate::transport::{CassetteReplay, ReplayEnd, ReplayMiss};

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
    let workers = if opts.jobs == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.jobs
    }
    .clamp(1, jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunRecord, RunError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let r = replay_job(job, opts);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                on_done(job);
            });
        }
    });
    let mut runs = Vec::with_capacity(jobs.len());
    let mut errors = Vec::new();
    for r in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match r.expect("every job ran") {
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

/// Replay one job, streaming its cassette, and score its expectations.
pub fn replay_job(job: &Job, opts: &RunOptions) -> Result<RunRecord, RunError> {
    replay_job_counted(job, opts).map(|(rec, _)| rec)
}

/// [`replay_job`], also returning how many normalized events the replay consumed.
pub fn replay_job_counted(job: &Job, opts: &RunOptions) -> Result<(RunRecord, u64), RunError> {
    let started = Instant::now();
    let stream = CassetteStream::open(&job.cassette)?;
    let sc = &job.scenario;
    let (mut rec, events) = replay_stream(sc, stream, &job.cassette, opts)?;
    let failures = sc.expect.check(&rec);
    rec.set_failures(failures);
    rec.wall_ms = Some(started.elapsed().as_millis() as u64);
    Ok((rec, events))
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
    cfg.compaction = sc.policy.compaction;
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

/// What the driver saw besides the processor's own outcome.
#[derive(Debug, Default)]
struct DriverStats {
    ttft_ms: Option<u64>,
    stream_ms: u64,
    divergence: Option<String>,
    warnings: Vec<String>,
    events: u64,
}

/// Replay a scenario against a loaded cassette. Pure apart from reading nothing: the same
/// inputs give the same record (except `wall_ms`, set by the caller).
pub fn replay(
    sc: &Scenario,
    cassette: &Cassette,
    cassette_path: &Path,
    opts: &RunOptions,
) -> RunRecord {
    replay_counted(sc, cassette, cassette_path, opts).0
}

/// [`replay`], also returning the number of normalized events consumed.
pub fn replay_counted(
    sc: &Scenario,
    cassette: &Cassette,
    cassette_path: &Path,
    opts: &RunOptions,
) -> (RunRecord, u64) {
    let mode = opts.match_mode.unwrap_or(sc.policy.match_mode);
    let replay = CassetteReplay::new(cassette, mode);
    drive(sc, replay, &cassette.header, cassette_path, opts)
        .expect("a loaded cassette has no unread lines to fail on")
}

/// Replay a scenario while reading its cassette (what `tapeloop run` does): memory holds the
/// interactions in flight, not the file. The rest of the file is read and checked after the
/// run stops, so a damaged cassette is an error however early the loop ended.
pub fn replay_stream(
    sc: &Scenario,
    stream: CassetteStream,
    cassette_path: &Path,
    opts: &RunOptions,
) -> Result<(RunRecord, u64), CassetteError> {
    let mode = opts.match_mode.unwrap_or(sc.policy.match_mode);
    let header = stream.header().clone();
    drive(
        sc,
        CassetteReplay::streamed(stream, mode),
        &header,
        cassette_path,
        opts,
    )
}

/// The replay loop shared by loaded and streamed cassettes.
fn drive(
    sc: &Scenario,
    replay: CassetteReplay<'_>,
    header: &Header,
    cassette_path: &Path,
    opts: &RunOptions,
) -> Result<(RunRecord, u64), CassetteError> {
    let mut cfg = processor_config(sc, opts, header.provider.as_deref());
    if let Some(m) = header.model.as_ref().filter(|m| !m.is_empty()) {
        cfg.model = m.clone();
    }
    let mut d = Driver {
        processor: Processor::new(cfg, initial_conversation(sc)),
        pending: Vec::new(),
        scripts: ToolScripts::from_scenario(sc),
        replay,
        stats: DriverStats::default(),
    };
    // Each cassette replays through its own wire API: one scenario may be recorded against
    // several providers for comparison.
    let api = header.api;

    let mut now: u64 = 0;
    let mut action = d.processor.start(now);
    let mut events: Vec<StreamEvent> = Vec::new();
    'run: loop {
        match action {
            Action::Stop(_) => break,
            Action::Wait { ms } => {
                now = now.saturating_add(ms);
                action = d.processor.on_wait_elapsed(now);
            }
            Action::ExecuteTool(inv) => {
                // Not expected outside a stream, but answer it the same way.
                d.answer_tool(&inv, now);
                action = d.processor.on_attempt_end(now);
            }
            Action::Send(req) => {
                let inter = match d
                    .replay
                    .next_response(|| api.request_body(&req.conversation, &req.options))
                {
                    Ok(i) => i,
                    Err(miss) => {
                        let reason = match &miss {
                            ReplayMiss::Exhausted { .. } => Termination::CassetteExhausted,
                            ReplayMiss::Divergence { path, .. } => {
                                d.stats.divergence = Some(path.clone());
                                Termination::Divergence
                            }
                        };
                        // The report must say why: the recorded and sent values at the
                        // differing path, or how many interactions the cassette had.
                        d.stats.warnings.push(format!("{reason}: {miss}"));
                        d.processor.terminate(reason, Some(miss.to_string()), now);
                        break;
                    }
                };
                let start = now;
                let first_attempt_content = d.stats.ttft_ms.is_none();
                let outcome = inter
                    .end
                    .as_ref()
                    .map(|e| e.outcome)
                    .unwrap_or(EndOutcome::Reset);
                let end_ms = inter
                    .end
                    .as_ref()
                    .map(|e| e.ms)
                    .or_else(|| inter.chunks.last().map(|c| c.ms))
                    .or_else(|| inter.response.as_ref().map(|r| r.ms))
                    .unwrap_or(0);
                d.stats.stream_ms += end_ms;
                match &inter.response {
                    Some(head) if (200..300).contains(&head.status) => {
                        // A stream: events reach the processor at their chunk's recorded time.
                        let mut decoder = ResponseDecoder::new(api);
                        for chunk in &inter.chunks {
                            decoder.feed(&chunk.bytes, &mut events);
                            if first_attempt_content
                                && d.stats.ttft_ms.is_none()
                                && events.iter().any(is_content)
                            {
                                d.stats.ttft_ms = Some(chunk.ms);
                            }
                            if d.feed_all(&mut events, start + chunk.ms) {
                                break 'run;
                            }
                        }
                        decoder.finish(outcome, &mut events);
                    }
                    // An error response, or none at all: one classified error at the end.
                    _ => events.extend(inter.decode(api)),
                }
                if d.feed_all(&mut events, start + end_ms) {
                    break 'run;
                }
                now = start + end_ms;
                action = d.processor.on_attempt_end(now);
            }
        }
    }

    let end = d.replay.finish()?;
    if end.truncated {
        d.stats.warnings.push(format!(
            "cassette was cut short (no footer): replayed its {} complete interactions",
            end.interactions
        ));
    }
    let events = d.stats.events;
    Ok((
        build_record(
            sc,
            header,
            cassette_path,
            d.processor.into_outcome(),
            d.stats,
            &end,
        ),
        events,
    ))
}

fn is_content(ev: &StreamEvent) -> bool {
    matches!(
        ev,
        StreamEvent::TextDelta { .. }
            | StreamEvent::ReasoningDelta { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::ToolInputStart { .. }
            | StreamEvent::ToolCall { .. }
    )
}

/// The driver side of one replay: the processor, the actions it asked for, and what answers
/// them (scripted tools, the cassette).
struct Driver<'a> {
    processor: Processor,
    pending: Vec<Action>,
    scripts: ToolScripts,
    replay: CassetteReplay<'a>,
    stats: DriverStats,
}

impl Driver<'_> {
    /// Feed `events` (drained) at time `at`, carrying out the actions each causes. Returns true
    /// when the processor stopped the run.
    fn feed_all(&mut self, events: &mut Vec<StreamEvent>, at: u64) -> bool {
        for ev in events.drain(..) {
            self.stats.events += 1;
            self.processor.on_event(&ev, at, &mut self.pending);
            if self.drain_actions(at) {
                return true;
            }
        }
        false
    }

    /// Carry out the actions the processor pushed while consuming one event. Returns true when
    /// the processor stopped the run.
    fn drain_actions(&mut self, now: u64) -> bool {
        let mut stopped = false;
        // Answering a tool can push more actions; loop until quiet.
        while !self.pending.is_empty() {
            for a in std::mem::take(&mut self.pending) {
                match a {
                    Action::ExecuteTool(inv) => self.answer_tool(&inv, now),
                    Action::Stop(_) => stopped = true,
                    Action::Send(_) | Action::Wait { .. } => {
                        self.stats
                            .warnings
                            .push("processor asked for a request in the middle of a stream".into());
                    }
                }
            }
        }
        stopped
    }

    /// Answer a tool call: the scenario's scripts, else the cassette's `tool` lines, else an
    /// error result and a warning (module docs).
    fn answer_tool(&mut self, inv: &crate::processor::ToolInvocation, now: u64) {
        let (output, is_error) = match self.scripts.answer(&inv.tool, &inv.input) {
            Some(Ok(a)) => (a.output, a.is_error),
            Some(Err(no_match)) => {
                self.stats
                    .warnings
                    .push(format!("step {}: {}", inv.step, no_match.warning()));
                let a = no_match.to_answer();
                (a.output, a.is_error)
            }
            None => match self.replay.tool_result(&inv.call_id, &inv.tool) {
                Some(t) => (
                    match &t.output {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                    t.error,
                ),
                None => {
                    self.stats.warnings.push(format!(
                        "step {}: nothing answers the call to `{}` (no scripted results, no cassette tool line); answered with an error",
                        inv.step, inv.tool
                    ));
                    (
                        format!(
                            "tapeloop: no result recorded or scripted for `{}`",
                            inv.tool
                        ),
                        true,
                    )
                }
            },
        };
        self.processor
            .on_tool_result(&inv.call_id, output, is_error, now);
    }
}

fn build_record(
    sc: &Scenario,
    header: &Header,
    cassette_path: &Path,
    outcome: Outcome,
    stats: DriverStats,
    end: &ReplayEnd,
) -> RunRecord {
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
        })
        .collect();
    rec.tokens = outcome.usage;
    rec.cost_usd = round_cost(outcome.cost_usd);
    rec.sim_ms = outcome.sim_ms;
    rec.ttft_ms = stats.ttft_ms;
    rec.unused_interactions = end.unused as u32;
    rec.truncated = end.truncated;
    rec.warnings = outcome.warnings.clone();
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
