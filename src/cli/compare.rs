//! `tapeloop compare`: providers side by side, or two run reports side by side.

use std::path::PathBuf;

use tapeloop::exit::Exit;
use tapeloop::report::{self, Style};
use tapeloop::runner;

use super::common::{execute, load_scenarios, read_report, run_options, ColorChoice};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop compare                              every multi-cassette scenario, providers side by side
  tapeloop compare scenarios/call-with-tools.toml
                                                one scenario recorded against several providers
  tapeloop run --format json --out before.json  (then change a policy, and again:)
  tapeloop run --format json --out after.json
  tapeloop compare before.json after.json       two run reports (before/after)

Two arguments that are JSON run reports (tapeloop run --format json) are compared as
before/after; anything else is replayed and its cassettes are compared side by side.")]
pub struct Args {
    /// Scenario files/directories [default: scenarios], or two JSON run reports.
    pub paths: Vec<PathBuf>,

    /// Markdown instead of a terminal table.
    #[arg(long)]
    pub markdown: bool,

    /// Price table override (models.dev api.json shape).
    #[arg(long, value_name = "FILE")]
    pub pricing: Option<PathBuf>,

    /// Colour: auto, always, never.
    #[arg(long, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,
}

fn is_report(p: &std::path::Path) -> bool {
    p.extension().is_some_and(|e| e == "json")
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let color = args.color.enabled() && !args.markdown;
    if args.paths.len() == 2 && args.paths.iter().all(|p| is_report(p)) {
        let before = read_report(&args.paths[0])?;
        let after = read_report(&args.paths[1])?;
        print!(
            "{}",
            report::compare_reports(&before, &after, style(args.markdown, color))
        );
        return Ok(Exit::Pass);
    }
    if let Some(p) = args.paths.iter().find(|p| is_report(p)) {
        anyhow::bail!(
            "{}: a run report can only be compared with exactly one other report",
            p.display()
        );
    }
    let Some(scenarios) = load_scenarios(&args.paths)? else {
        return Ok(Exit::Error);
    };
    let opts = run_options(None, args.pricing.as_deref())?;
    let jobs = runner::plan(&scenarios);
    let Some(rep) = execute(&jobs, &opts, true)? else {
        return Ok(Exit::Error);
    };
    print!(
        "{}",
        report::compare_providers(&rep, style(args.markdown, color))
    );
    Ok(Exit::Pass)
}

fn style(markdown: bool, color: bool) -> Style {
    if markdown {
        Style::Markdown
    } else {
        Style::Table { color }
    }
}
