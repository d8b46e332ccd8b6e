//! `tapeloop run`: replay scenarios, score expectations, report; baselines, accept, sharding.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use tapeloop::processor::config::{DetectorSpec, DoomAction, RetryPreset};
use tapeloop::processor::PriceTable;
use tapeloop::report::{self, Format, RunReport};
use tapeloop::runner::{self, Job, RunOptions};
use tapeloop::scenario::{self, Scenario};
use tapeloop::transport::MatchMode;

use super::Status;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop run                                  every scenario under scenarios/, as a table
  tapeloop run scenarios/read-loop.toml         one scenario
  tapeloop run --format junit --out junit.xml   JUnit for CI (the table still goes to stdout)
  tapeloop run --doom-loop seed,opencode        replay the corpus under other detectors
  tapeloop run --save-baseline main             store this run as baseline `main`
  tapeloop run --baseline main                  exit 1 when a metric regressed against it
  tapeloop run --accept scenarios/new.toml      write the observed outcome into [expect]
  tapeloop run --partition 2/3 --format json --out shard2.json

Exit status: 0 all passed, 1 an expectation failed or a metric regressed, 2 bad input.")]
pub struct Args {
    /// Scenario files or directories (searched for *.toml) [default: scenarios]
    pub paths: Vec<PathBuf>,

    /// Report format: table, json, csv, junit, markdown, html.
    #[arg(short, long, default_value = "table")]
    pub format: Format,

    /// Write the report to FILE instead of stdout (a table summary still goes to stdout).
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

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

    /// Price table override: a models.dev api.json or a file in the same shape.
    #[arg(long, value_name = "FILE")]
    pub pricing: Option<PathBuf>,

    /// Colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

/// Load every scenario under `paths`; print every problem and return None when any.
pub fn load_scenarios(paths: &[PathBuf]) -> anyhow::Result<Option<Vec<Arc<Scenario>>>> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            files.extend(scenario::discover(p)?);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            anyhow::bail!(
                "{}: no such file or directory (give scenario files or a directory of *.toml)",
                p.display()
            );
        }
    }
    if files.is_empty() {
        anyhow::bail!(
            "no scenarios found under {} (scenario files end in .toml)",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut scenarios = Vec::new();
    let mut bad = false;
    for f in files {
        match scenario::load_checked(&f) {
            Ok(s) => scenarios.push(Arc::new(s)),
            Err(errors) => {
                bad = true;
                for e in errors {
                    eprintln!("error: {e}");
                }
            }
        }
    }
    let mut names = std::collections::BTreeMap::new();
    for s in &scenarios {
        if let Some(prev) = names.insert(s.name.clone(), s.path.clone()) {
            eprintln!(
                "error: {}: scenario name `{}` is also used by {}; names must be unique",
                s.path.display(),
                s.name,
                prev.display()
            );
            bad = true;
        }
    }
    Ok(if bad { None } else { Some(scenarios) })
}

pub fn run_options(args_jobs: Option<usize>, pricing: Option<&Path>) -> anyhow::Result<RunOptions> {
    let prices = match pricing {
        Some(p) => {
            Arc::new(PriceTable::load(p).with_context(|| format!("loading {}", p.display()))?)
        }
        None => PriceTable::bundled(),
    };
    Ok(RunOptions {
        jobs: args_jobs.unwrap_or(0),
        prices,
        ..RunOptions::default()
    })
}

/// Run jobs with a progress bar on a terminal (none in CI or when piped).
pub fn execute(
    jobs: &[Job],
    opts: &RunOptions,
    progress: bool,
) -> anyhow::Result<Option<RunReport>> {
    let show = progress
        && std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && jobs.len() > 1;
    let bar = if show {
        let pb = indicatif::ProgressBar::new(jobs.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replaying [{bar:30}] {pos}/{len} {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Some(pb)
    } else {
        None
    };
    let on_done = |job: &Job| {
        if let Some(pb) = &bar {
            pb.set_message(job.scenario.name.clone());
            pb.inc(1);
        }
    };
    let result = runner::run_jobs(jobs, opts, &on_done);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    match result {
        Ok(r) => Ok(Some(r)),
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            Ok(None)
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let Some(mut scenarios) = load_scenarios(&args.paths)? else {
        return Ok(Status::Error);
    };
    if let Some(p) = args.partition {
        scenarios.retain(|s| p.contains(&s.name));
    }
    let mut opts = run_options(args.jobs, args.pricing.as_deref())?;
    opts.detectors = args.doom_loop.clone();
    opts.retry = args.retry;
    opts.doom_action = args.doom_action;
    if args.strict {
        opts.match_mode = Some(MatchMode::Strict);
    }
    let jobs = runner::plan(&scenarios);
    let Some(report) = execute(&jobs, &opts, !args.no_progress)? else {
        return Ok(Status::Error);
    };
    let color = args.color.enabled();

    // The report itself.
    let rendered = report::render(&report, args.format, color && args.out.is_none());
    match &args.out {
        Some(path) => {
            write_file(path, &rendered)?;
            if args.format != Format::Table {
                print!("{}", report::render(&report, Format::Table, color));
            }
            eprintln!("wrote {}", path.display());
        }
        None => print!("{rendered}"),
    }

    let mut status = if !report.all_passed() {
        Status::Fail
    } else {
        Status::Pass
    };

    if args.accept {
        status = accept(&scenarios, &report, args.dry_run)?;
    }

    let baseline_dir = args.state_dir.join("baselines");
    if let Some(name) = &args.baseline {
        let mut base = report::load_baseline(&baseline_dir, name)
            .with_context(|| format!("baseline `{name}`: create it with --save-baseline {name}"))?;
        // A shard is compared with its own part of the baseline: the other shards' runs are
        // not missing, they run elsewhere.
        if let Some(p) = args.partition {
            base.runs.retain(|r| p.contains(&r.scenario));
            base.recompute_summary();
        }
        let regressions =
            report::compare_to_baseline(&report, &base, &report::RegressionRules::default());
        if regressions.is_empty() {
            eprintln!("no regressions against baseline `{name}`");
        } else {
            eprintln!(
                "{} regression(s) against baseline `{name}`:",
                regressions.len()
            );
            for r in &regressions {
                eprintln!("  {}", r.message);
            }
            status = Status::Fail;
        }
    }
    if let Some(name) = &args.save_baseline {
        let path = report::save_baseline(&report, &baseline_dir, name)
            .with_context(|| format!("saving baseline `{name}`"))?;
        eprintln!("saved baseline `{name}` to {}", path.display());
    }
    Ok(status)
}

/// Write observed outcomes into the scenarios' `[expect]` tables, insta-style.
fn accept(
    scenarios: &[Arc<Scenario>],
    report: &RunReport,
    dry_run: bool,
) -> anyhow::Result<Status> {
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
    Ok(Status::Pass)
}

pub fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
