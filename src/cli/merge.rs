//! `tapeloop merge`: combine the JSON reports of sharded runs into one report.

use std::path::PathBuf;

use tapeloop::exit::Exit;
use tapeloop::report::{self, Format};

use super::common::{read_report, write_file};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop run --partition 1/2 --format json --out shard1.json
  tapeloop run --partition 2/2 --format json --out shard2.json
  tapeloop merge shard1.json shard2.json --format junit --out junit.xml

Exit status: 0 when every merged run passed, 1 when any failed, 2 on unreadable or
overlapping reports.")]
pub struct Args {
    /// JSON run reports to merge.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, default_value = "json")]
    pub format: Format,

    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut reports = Vec::new();
    for p in &args.reports {
        reports.push(read_report(p)?);
    }
    let merged = report::merge(reports)?;
    let text = report::render(&merged, args.format, false);
    match &args.out {
        Some(p) => write_file(p, &text)?,
        None => print!("{text}"),
    }
    Ok(Exit::verdict(merged.summary.failed == 0))
}
