//! `tapeloop exec`: put the user's own agent under test. For each scenario × cassette, serve
//! the cassette in-process on an ephemeral loopback port, run the agent command in a fresh
//! working directory, watch what it asks for, and score it with the scenario's expectations
//! like `run` scores the built-in processor.

pub mod agent;
pub mod fidelity;
pub mod observe;
pub mod process;

use std::sync::Arc;

use serde_json::Value;

use crate::cassette::{CassetteError, CassetteIndex, CassetteStream};
use crate::event::StreamEvent;
use crate::matching::ServeMatch;
use crate::net::serve::{self, LogEntry, Pace, ServeOptions};
use crate::processor::PriceTable;
use crate::provider::tool_results;
use crate::report::{AgentOutcome, RunRecord, RunReport};
use crate::runner::{Job, RunOptions};

use agent::{Agent, AgentError, Placeholders};
use observe::{Observation, RetryAfter, Served};

/// Expectation keys a black-box agent cannot show.
pub const NOT_OBSERVABLE: &[&str] = &["sim_ms"];

/// Settings of one `tapeloop exec`.
#[derive(Clone)]
pub struct ExecOptions {
    /// The agent from the command line (a command or a profile); `None` = each scenario's
    /// `[agent]`.
    pub agent: Option<Agent>,
    /// How the server matches the agent's requests (`sequence` by default: an agent's own
    /// prompts and tools rarely equal a recording made with another client).
    pub matching: ServeMatch,
    pub pace: Pace,
    pub retry_after_scale: Option<f64>,
    pub prices: Arc<PriceTable>,
    /// Also replay each scenario through the built-in processor and compare (`fidelity`).
    pub vs_processor: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            agent: None,
            matching: ServeMatch::Sequence,
            pace: Pace::Instant,
            retry_after_scale: None,
            prices: PriceTable::bundled(),
            vs_processor: false,
        }
    }
}

/// Why an agent run could not be scored at all (a harness error, exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Cassette(#[from] CassetteError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("{scenario}: {message}")]
    Setup { scenario: String, message: String },
}

/// What became of one job.
pub enum JobResult {
    Scored(Box<RunRecord>),
    /// The agent does not speak this cassette's API (a note, not a failure).
    Skipped(String),
}

/// Run every job, one at a time (agents are whole programs: running them side by side would
/// measure the machine, not the agent), and build the report from the scored runs.
pub fn exec_jobs(
    jobs: &[Job],
    opts: &ExecOptions,
    on_done: &dyn Fn(&Job, &JobResult),
) -> Result<(RunReport, Vec<String>), Vec<ExecError>> {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Err(vec![ExecError::Setup {
                scenario: "tapeloop exec".into(),
                message: format!("starting the async runtime: {e}"),
            }])
        }
    };
    for job in jobs {
        match exec_job(&rt, job, opts) {
            Ok(r) => {
                on_done(job, &r);
                match r {
                    JobResult::Scored(rec) => runs.push(*rec),
                    JobResult::Skipped(note) => skipped.push(note),
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut report = RunReport::new(runs);
    report.sort_runs();
    Ok((report, skipped))
}

/// One scenario × cassette: serve, run the agent, score.
pub fn exec_job(
    rt: &tokio::runtime::Runtime,
    job: &Job,
    opts: &ExecOptions,
) -> Result<JobResult, ExecError> {
    let sc = &job.scenario;
    let agent = Agent::resolve(opts.agent.as_ref(), sc)?;
    // Indexed, not loaded: the server reads bodies from the file as it plays them, and scoring
    // reads back only the interactions that were served.
    let cassette = CassetteIndex::open(&job.cassette)?;
    let api = cassette.header.api;
    if !agent.apis.is_empty() && !agent.apis.contains(&api) {
        return Ok(JobResult::Skipped(format!(
            "{} × {}: the agent `{}` speaks {}, this cassette is {api}",
            sc.name,
            crate::runner::display_path(&job.cassette),
            agent.name,
            agent
                .apis
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let setup_error = |message: String| ExecError::Setup {
        scenario: sc.path.display().to_string(),
        message,
    };
    let server_opts = ServeOptions {
        pace: opts.pace,
        matching: opts.matching,
        retry_after_scale: opts.retry_after_scale,
        session: Some("exec".into()),
        observe: true,
        ..ServeOptions::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let server = rt
        .block_on(serve::start(vec![cassette.clone()], server_opts))
        .map_err(|e| setup_error(format!("starting the replay server: {e}")))?;
    let base_url = format!("http://{}", server.addr());
    let workdir = tempfile::Builder::new()
        .prefix("tapeloop-exec-")
        .tempdir()
        .map_err(|e| setup_error(format!("creating the working directory: {e}")))?;
    let model = cassette.header.model_or(sc.model.as_deref());
    let info = opts
        .prices
        .lookup(cassette.header.provider.as_deref(), &model);
    let limits = (
        sc.limits
            .context
            .or_else(|| info.map(|i| i.limit.context).filter(|n| *n > 0))
            .unwrap_or(128_000),
        sc.limits
            .output
            .or_else(|| info.map(|i| i.limit.output).filter(|n| *n > 0))
            .unwrap_or(8_192),
    );
    let cost = info.map(|i| i.cost).unwrap_or_default();
    let scenario_path = std::fs::canonicalize(&sc.path).unwrap_or_else(|_| sc.path.clone());
    let placeholders = Placeholders::new(
        &base_url,
        &sc.prompt,
        &model,
        api,
        workdir.path(),
        &scenario_path,
        limits,
        (cost.input, cost.output, cost.cache_read),
    );
    process::prepare(&agent, &placeholders, workdir.path()).map_err(setup_error)?;
    // The server runs on the runtime's worker threads while this thread waits for the agent.
    let run = process::run(&agent, &placeholders, workdir.path()).map_err(setup_error)?;
    let observed = server.observed();
    rt.block_on(server.shutdown());
    let served = served_requests(&cassette, observed, opts.retry_after_scale)?;
    let mut rec = observe::score(&Observation {
        scenario: sc,
        header: &cassette.header,
        interactions: cassette.interactions.len(),
        cassette_path: &job.cassette,
        served: &served,
        agent: &run,
        prices: &opts.prices,
        stop_exit_codes: &agent.stop_exit_codes,
    });
    rec.agent = Some(AgentOutcome {
        exit_code: run.exit_code,
        timed_out: run.timed_out,
        wall_ms: run.wall_ms,
        stdout_tail: run.stdout_tail.clone(),
        stderr_tail: run.stderr_tail.clone(),
    });
    if rec.finish == crate::processor::Termination::AgentError {
        let last = run
            .stderr_tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no output on stderr)");
        rec.warnings.push(format!(
            "the agent exited with {}: {last}",
            run.exit_code
                .map_or("a signal".to_string(), |c| format!("code {c}"))
        ));
    }
    if run.timed_out {
        rec.warnings.push(format!(
            "the agent did not finish within {} s and was stopped",
            agent.timeout.as_secs_f64()
        ));
    }
    sc.expect
        .score(&mut rec, NOT_OBSERVABLE, "for an agent under test");
    if opts.vs_processor {
        // The processor gets what models this agent: the profile's policy, and the tools the
        // agent itself declared in its first request (calls to others are rerouted as the
        // agent reroutes them).
        let eq = agent.processor.clone().unwrap_or_default();
        let declared = served
            .first()
            .map(|s| tool_results::declared_tools(api, &s.body))
            .filter(|t| !t.is_empty());
        let run_opts = RunOptions {
            prices: Arc::clone(&opts.prices),
            detectors: eq.doom_loop,
            doom_action: eq.doom_action,
            retry: eq.retry,
            compaction: eq.compaction,
            tools: declared.map(|t| t.into_iter().collect()),
            ..RunOptions::default()
        };
        // Streamed as in `run`, so memory holds the interactions in flight, not the file. A
        // cassette the processor refuses (nothing to replay, undecodable) is the same harness
        // error as in `run`.
        let stream = CassetteStream::open(&job.cassette)?;
        let (processor, _) = crate::runner::replay_stream(sc, stream, &job.cassette, &run_opts)?;
        rec.fidelity = Some(fidelity::compare(&rec, &processor));
    }
    Ok(JobResult::Scored(Box::new(rec)))
}

/// The server's log entries for model requests, in arrival order, as [`Served`], each with the
/// events of the interaction that answered it (read back from the cassette file once).
fn served_requests(
    cassette: &CassetteIndex,
    mut observed: Vec<LogEntry>,
    scale: Option<f64>,
) -> Result<Vec<Served>, CassetteError> {
    observed.sort_by_key(|e| e.ms);
    let api = cassette.header.api;
    let mut out = Vec::new();
    for e in observed.into_iter().filter(|e| e.body.is_some()) {
        let interaction = e
            .interaction
            .and_then(|id| cassette.interactions.iter().position(|i| i.id == id));
        let events = match interaction {
            Some(k) => cassette.interaction(k)?.decode(api),
            None => Vec::new(),
        };
        let recorded = events.iter().find_map(|ev| match ev {
            StreamEvent::Error(err) => err.retry_after_ms,
            _ => None,
        });
        let served_wait = e
            .retry_after
            .iter()
            .find_map(|c| served_ms(&c.field, &c.served))
            .or_else(|| recorded.map(|r| scale.map_or(r, |f| (r as f64 * f).ceil() as u64)));
        let answered = !matches!(e.result.as_str(), "miss" | "exhausted");
        out.push(Served {
            at_ms: e.ms,
            end_ms: e.end_ms.max(e.ms),
            body: e.body.as_deref().cloned().unwrap_or(Value::Null),
            interaction: if answered { interaction } else { None },
            events: if answered { events } else { Vec::new() },
            status: e.status.unwrap_or(0),
            read_to_end: e.outcome == "complete",
            retry_after: recorded.zip(served_wait).map(|(r, s)| RetryAfter {
                recorded_ms: r,
                served_ms: s,
            }),
            miss: e.error.clone(),
        });
    }
    Ok(out)
}

/// A served `retry-after` (seconds), `retry-after-ms` or `retryDelay` (`"1.5s"`) in ms.
fn served_ms(field: &str, value: &str) -> Option<u64> {
    let v = value.trim();
    match field {
        "retry-after-ms" => v.parse::<f64>().ok().map(|ms| ms.ceil() as u64),
        "retryDelay" => crate::http::parse_duration_ms(v),
        _ => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s * 1000.0).ceil() as u64),
    }
}
