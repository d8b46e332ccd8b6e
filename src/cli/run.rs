//! `tapeloop run`: replay scenarios, score expectations, report; baselines, accept, sharding.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use tapeloop::exit::Exit;
use tapeloop::processor::config::{DetectorSpec, DoomAction, RetryPreset};
use tapeloop::replay::MatchMode;
use tapeloop::report::{self, Format, RenderOptions, RunReport};
use tapeloop::runner;
use tapeloop::scenario::{self, Scenario};

use super::common::{
    emit_report, execute, load_scenarios, run_options, terminal_width, with_exit_codes, OutputArgs,
};

const EXAMPLES: &str = "Examples:
  tapeloop run                                  every scenario under scenarios/, as a table
  tapeloop run --wide                           every metric (tokens per class, simulated time)
  tapeloop run --columns scenario,cassette,verdict,steps,cost
  tapeloop run --format html --out report.html  a browsable report with step timelines
  tapeloop run --format markdown --out summary.md   for a PR comment or a CI job summary
  tapeloop run scenarios/doom-cycle.toml        one scenario
  tapeloop run --format junit --out junit.xml   JUnit for CI (the table still goes to stdout)
  tapeloop run --doom-loop seed,opencode        the corpus under other detectors (exit 1 when
                                                an expectation fails under them)
  tapeloop run --save-baseline main             store this run as baseline `main`
  tapeloop run --baseline main                  exit 1 when a metric regressed against it
  tapeloop run --accept scenarios/doom-cycle.toml --dry-run
                                                show what --accept would write into [expect]
  tapeloop run --partition 2/3 --format json --out shard2.json";

#[derive(Debug, clap::Args)]
#[command(after_help = with_exit_codes(EXAMPLES))]
pub struct Args {
    /// Scenario files or directories (searched for *.toml) [default: scenarios]
    pub paths: Vec<PathBuf>,

    /// Report format: table, json, csv, junit, markdown, html.
    #[arg(short, long, default_value = "table")]
    pub format: Format,

    /// Terminal table columns by name (the CSV headers, or headers such as verdict, calls,
    /// cost); the table fits the terminal width (`COLUMNS`, else the terminal, else 100).
    #[arg(long, value_name = "A,B,C", value_parser = report::Columns::parse, conflicts_with = "wide")]
    pub columns: Option<report::Columns>,

    /// Terminal table with every metric instead of the compact default.
    #[arg(long)]
    pub wide: bool,

    /// Show wall-clock time in the HTML report (it then differs from run to run).
    #[arg(long)]
    pub wall_time: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Worker threads [default: one per core].
    #[arg(short, long)]
    pub jobs: Option<usize>,

    /// Only run shard K of N (stable hash of the scenario name), e.g. 1/3.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<report::Partition>,

    /// Compare against a saved baseline and fail on regressions.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,

    /// Save this run as a baseline.
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,

    /// Where baselines live.
    #[arg(long, value_name = "DIR", default_value = ".tapeloop")]
    pub state_dir: PathBuf,

    /// Write each scenario's observed outcome into its [expect] table (shows the diff).
    #[arg(long)]
    pub accept: bool,

    /// With --accept: show the diffs but write nothing.
    #[arg(long, requires = "accept")]
    pub dry_run: bool,

    /// Check every request against the recorded one (canonical JSON); report divergences.
    #[arg(long)]
    pub strict: bool,

    /// Override every scenario's doom-loop detectors (comma-separated).
    #[arg(long, value_name = "DETECTORS", value_delimiter = ',')]
    pub doom_loop: Option<Vec<DetectorSpec>>,

    /// Override every scenario's doom action: allow, deny, ask-reject, ask-allow.
    #[arg(long, value_name = "ACTION")]
    pub doom_action: Option<DoomAction>,

    /// Override every scenario's retry policy.
    #[arg(long, value_name = "POLICY")]
    pub retry: Option<RetryPreset>,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Some(mut scenarios) = load_scenarios(&args.paths)? else {
        return Ok(Exit::Error);
    };
    if let Some(p) = args.partition {
        scenarios.retain(|s| p.contains(&s.name));
    }
    let mut opts = run_options(args.jobs, args.output.pricing.as_deref())?;
    opts.detectors = args.doom_loop.clone();
    opts.retry = args.retry;
    opts.doom_action = args.doom_action;
    if args.strict {
        opts.match_mode = Some(MatchMode::Strict);
    }
    let jobs = runner::plan(&scenarios);
    let Some(report) = execute(&jobs, &opts, !args.no_progress)? else {
        return Ok(Exit::Error);
    };
    let color = args.output.color.enabled();
    let mut status = Exit::verdict(report.all_passed());

    // Regressions first: the HTML report shows them at its top.
    let baseline_dir = args.state_dir.join("baselines");
    let mut regressions = Vec::new();
    if let Some(name) = &args.baseline {
        let mut base = report::load_baseline(&baseline_dir, name)
            .with_context(|| format!("baseline `{name}`: create it with --save-baseline {name}"))?;
        // A shard is compared with its own part of the baseline: the other shards' runs are
        // not missing, they run elsewhere.
        if let Some(p) = args.partition {
            base.runs.retain(|r| p.contains(&r.scenario));
            base.recompute_summary();
        }
        regressions =
            report::compare_to_baseline(&report, &base, &report::RegressionRules::default());
    }

    // The report itself.
    let opts = RenderOptions {
        color,
        width: Some(terminal_width()),
        columns: match (&args.columns, args.wide) {
            (Some(c), _) => c.clone(),
            (None, true) => report::Columns::Wide,
            (None, false) => report::Columns::Compact,
        },
        regressions,
        wall_time: args.wall_time,
    };
    emit_report(
        &report,
        args.format,
        args.output.out.as_deref(),
        opts.clone(),
    )?;

    if args.accept {
        accept(&scenarios, &report, args.dry_run)?;
        // Accepting makes the observed outcome the expectation, so the run now passes. A dry
        // run writes nothing: it only shows the diffs and is judged like a plain `run`.
        if !args.dry_run {
            status = Exit::Pass;
        }
    }

    if let Some(name) = &args.baseline {
        if opts.regressions.is_empty() {
            eprintln!("no regressions against baseline `{name}`");
        } else {
            eprintln!(
                "{} regression(s) against baseline `{name}`:",
                opts.regressions.len()
            );
            for r in &opts.regressions {
                eprintln!("  {}", r.message);
            }
            status = Exit::Failed;
        }
    }
    if let Some(name) = &args.save_baseline {
        let path = report::save_baseline(&report, &baseline_dir, name)
            .with_context(|| format!("saving baseline `{name}`"))?;
        eprintln!("saved baseline `{name}` to {}", path.display());
    }
    Ok(status)
}

/// Write observed outcomes into the scenarios' `[expect]` tables, insta-style: print each
/// scenario's diff, then write it unless `dry_run`.
fn accept(scenarios: &[Arc<Scenario>], report: &RunReport, dry_run: bool) -> anyhow::Result<()> {
    let mut changed = 0;
    for sc in scenarios {
        let runs: Vec<_> = report
            .runs
            .iter()
            .filter(|r| r.scenario == sc.name)
            .cloned()
            .collect();
        if runs.is_empty() {
            continue;
        }
        let plan = scenario::accept::plan_runs(&sc.path, &runs)
            .with_context(|| format!("accepting {}", sc.path.display()))?;
        if plan.diff.is_empty() {
            continue;
        }
        changed += 1;
        println!("{}", plan.diff);
        if !dry_run {
            plan.apply()
                .with_context(|| format!("writing {}", sc.path.display()))?;
            eprintln!("accepted {}", sc.path.display());
        }
    }
    if changed == 0 {
        eprintln!("every [expect] table already matches the observed outcome");
    } else if dry_run {
        eprintln!("{changed} scenario(s) would change; run again without --dry-run to write");
    }
    Ok(())
}
