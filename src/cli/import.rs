//! `tapeloop import`: convert a vcrpy YAML cassette into a tapeloop cassette.

use std::path::PathBuf;

use tapeloop::cassette::import::import_file;
use tapeloop::exit::Exit;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "vcrpy keeps neither the real chunking nor the timing of a stream: bodies are
split at SSE event boundaries and `ms` offsets are synthetic (the header says
`timing: \"synthetic\"`). Tool results are recovered from each next request's
history. Secrets are redacted as in any recording.

Examples:
  tapeloop import tests/cassettes/test_stream.yaml          writes tests/cassettes/test_stream.jsonl
  tapeloop import stream.yaml -o recordings/stream.anthropic.jsonl"
)]
pub struct Args {
    /// The vcrpy YAML cassette.
    pub input: PathBuf,
    /// Output path (default: the input name with `.jsonl`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.input.with_extension("jsonl"));
    if output == args.input {
        anyhow::bail!(
            "{}: the output would overwrite the input; pass -o OUT.jsonl",
            args.input.display()
        );
    }
    let imported = import_file(&args.input, &output)?;
    let h = &imported.header;
    eprintln!(
        "imported {} interactions and {} tool results from {} -> {} ({}, {}, {})",
        imported.interactions().count(),
        imported.tools().count(),
        args.input.display(),
        output.display(),
        h.api,
        h.provider.as_deref().unwrap_or("?"),
        h.model.as_deref().unwrap_or("?"),
    );
    Ok(Exit::Pass)
}
