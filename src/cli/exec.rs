//! `tapeloop exec`: run the user's own agent against each scenario's cassettes and score it.

use std::path::PathBuf;

use tapeloop::exec::agent::Agent;
use tapeloop::exec::{self, ExecOptions, JobResult};
use tapeloop::exit::Exit;
use tapeloop::matching::ServeMatch;
use tapeloop::net::serve::Pace;
use tapeloop::report::{self, Format};
use tapeloop::runner::{self, Job};

use super::common::{
    emit_report, interactive, load_scenarios, print_errors, progress_bar, run_options,
    terminal_width, with_exit_codes, OutputArgs,
};

const EXAMPLES: &str = "Examples:
  tapeloop exec scenarios/retry-429-retry-after.toml --retry-after-scale 0.01 -- \\
      python3 examples/agents/loop_agent.py --scenario {scenario} --model {model}
  tapeloop exec --api openai-chat scenarios/ -- python3 examples/agents/loop_agent.py \\
      --scenario {scenario} --model {model}
  tapeloop exec --agent opencode scenarios/          the real opencode ($TAPELOOP_OPENCODE or on PATH)
  tapeloop exec --agent opencode --vs-processor scenarios/doom-cycle.toml
  tapeloop exec scenarios/finish-length.toml --format junit --out exec.xml -- \\
      python3 examples/agents/loop_agent.py --scenario {scenario} --model {model}

The agent gets the server through OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GOOGLE_GEMINI_BASE_URL,
TAPELOOP_BASE_URL (dummy keys in OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY) and these
placeholders in its arguments: {base_url} {openai_base_url} {prompt} {model} {api} {workdir}
{scenario}. Each run gets a fresh working directory and is served as one session.";

#[derive(Debug, clap::Args)]
#[command(after_help = with_exit_codes(EXAMPLES))]
pub struct Args {
    /// Scenario files or directories (searched for *.toml) [default: scenarios]
    pub paths: Vec<PathBuf>,

    /// The agent: a bundled profile (opencode) or a profile file. Without it and without
    /// `-- COMMAND`, each scenario's [agent] table.
    #[arg(long, value_name = "PROFILE", conflicts_with = "command")]
    pub agent: Option<String>,

    /// How requests find their recorded interaction: sequence (default: the agent's own
    /// prompts differ from the recording), conversation or strict (for cassettes recorded
    /// from this same agent: a divergence is a finding).
    #[arg(long = "match", value_name = "MODE", default_value = "sequence")]
    pub matching: ServeMatch,

    /// Multiply every served retry-after (e.g. 0.01), so a retry test takes milliseconds; the
    /// report keeps the recorded and the served wait.
    #[arg(long, value_name = "F")]
    pub retry_after_scale: Option<f64>,

    /// Chunk pacing: instant (default), recorded, or xN.
    #[arg(long, default_value = "instant")]
    pub pace: Pace,

    /// Only the cassettes of this wire API (an agent that speaks one API; a profile already
    /// knows its own).
    #[arg(long, value_name = "API")]
    pub api: Option<tapeloop::provider::Api>,

    /// Also replay each scenario through the built-in processor and show the agreement.
    #[arg(long)]
    pub vs_processor: bool,

    /// Report format: table, json, csv, junit, markdown, html.
    #[arg(short, long, default_value = "table")]
    pub format: Format,

    #[command(flatten)]
    pub output: OutputArgs,

    /// The agent command and its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(f) = args.retry_after_scale {
        if !(f.is_finite() && f > 0.0) {
            anyhow::bail!(
                "--retry-after-scale {f}: give a factor > 0 (0.01 makes a 7 s wait 70 ms)"
            );
        }
    }
    let Some(scenarios) = load_scenarios(&args.paths)? else {
        return Ok(Exit::Error);
    };
    let agent = match (&args.agent, args.command.is_empty()) {
        (Some(p), _) => Some(Agent::profile(p)?),
        (None, false) => Some(Agent::command(args.command.clone())),
        (None, true) => None,
    };
    let prices = run_options(None, args.output.pricing.as_deref())?.prices;
    let opts = ExecOptions {
        agent,
        matching: args.matching,
        pace: args.pace,
        retry_after_scale: args.retry_after_scale,
        prices,
        vs_processor: args.vs_processor,
    };
    let mut jobs = runner::plan(&scenarios);
    if let Some(api) = args.api {
        jobs.retain(|j| cassette_api(&j.cassette) == Some(api));
        if jobs.is_empty() {
            anyhow::bail!("no cassette of api `{api}` among the scenarios given");
        }
    }
    let bar = interactive().then(|| {
        progress_bar(
            jobs.len() as u64,
            "{spinner} running the agent [{bar:30}] {pos}/{len} {wide_msg}",
        )
    });
    let on_done = |job: &Job, _: &JobResult| {
        if let Some(pb) = &bar {
            pb.set_message(job.scenario.name.clone());
            pb.inc(1);
        }
    };
    let result = exec::exec_jobs(&jobs, &opts, &on_done);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let (report, skipped) = match result {
        Ok(r) => r,
        Err(errors) => {
            print_errors(errors);
            return Ok(Exit::Error);
        }
    };
    for note in &skipped {
        eprintln!("skipped: {note}");
    }
    if report.runs.is_empty() {
        anyhow::bail!(
            "no scenario × cassette could be run with this agent ({} skipped)",
            skipped.len()
        );
    }
    let opts = report::RenderOptions {
        color: args.output.color.enabled(),
        width: Some(terminal_width()),
        ..report::RenderOptions::default()
    };
    emit_report(&report, args.format, args.output.out.as_deref(), opts)?;
    if args.vs_processor {
        print!("{}", exec::fidelity::table(&report));
    }
    Ok(Exit::verdict(report.all_passed()))
}

/// The wire API a cassette's header names (None when it cannot be read: the run reports why).
fn cassette_api(path: &std::path::Path) -> Option<tapeloop::provider::Api> {
    tapeloop::cassette::CassetteStream::open(path)
        .ok()
        .map(|s| s.header().api)
}
