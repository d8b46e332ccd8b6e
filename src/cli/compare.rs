//! `tapeloop compare`: providers side by side, or two run reports side by side.

use std::path::PathBuf;

use tapeloop::exit::Exit;
use tapeloop::report::{self, Style};
use tapeloop::runner;

use super::common::{
    execute, load_scenarios, read_report, run_options, terminal_width, write_file, OutputArgs,
};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop compare                              every multi-cassette scenario, providers side by side
  tapeloop compare scenarios/call-with-tools.toml
                                                one scenario recorded against several providers
  tapeloop run --format json --out before.json  (then change a policy, and again:)
  tapeloop run --format json --out after.json
  tapeloop compare before.json after.json       two run reports (before/after)
  tapeloop compare --format html --out compare.html   providers side by side as bars

Two arguments that are JSON run reports (tapeloop run --format json) are compared as
before/after; anything else is replayed and its cassettes are compared side by side.")]
pub struct Args {
    /// Scenario files/directories [default: scenarios], or two JSON run reports.
    pub paths: Vec<PathBuf>,

    /// Output: table (fits the terminal: `COLUMNS`, else the terminal, else 100), markdown,
    /// or html (provider comparison only).
    #[arg(short, long, default_value = "table", value_name = "FORMAT")]
    pub format: CompareFormat,

    /// Same as --format markdown.
    #[arg(long)]
    pub markdown: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `compare` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Table,
    Markdown,
    Html,
}

fn is_report(p: &std::path::Path) -> bool {
    p.extension().is_some_and(|e| e == "json")
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let format = if args.markdown {
        CompareFormat::Markdown
    } else {
        args.format
    };
    let color =
        args.output.color.enabled() && format == CompareFormat::Table && args.output.out.is_none();
    let style = match format {
        CompareFormat::Markdown => Style::Markdown,
        _ => Style::Table {
            color,
            width: terminal_width(),
        },
    };
    if args.paths.len() == 2 && args.paths.iter().all(|p| is_report(p)) {
        if format == CompareFormat::Html {
            anyhow::bail!(
                "--format html compares providers; compare two reports as table or markdown"
            );
        }
        let before = read_report(&args.paths[0])?;
        let after = read_report(&args.paths[1])?;
        emit(
            &args.output.out,
            &report::compare_reports(&before, &after, style),
        )?;
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
    let opts = run_options(None, args.output.pricing.as_deref())?;
    let jobs = runner::plan(&scenarios);
    let Some(rep) = execute(&jobs, &opts, true)? else {
        return Ok(Exit::Error);
    };
    let text = match format {
        CompareFormat::Html => report::compare_providers_html(&rep),
        _ => report::compare_providers(&rep, style),
    };
    emit(&args.output.out, &text)?;
    Ok(Exit::Pass)
}

/// Print `text`, or write it to `out`.
fn emit(out: &Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => {
            write_file(p, text)?;
            eprintln!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
