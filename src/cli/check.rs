//! `tapeloop check`: validate cassettes and report every problem.

use std::path::PathBuf;

use super::Status;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop check recordings/read-loop.openai.jsonl
  tapeloop check recordings/*.jsonl")]
pub struct Args {
    /// Cassette files (.jsonl) to validate.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run(_args: Args) -> anyhow::Result<Status> {
    Ok(Status::Error)
}
