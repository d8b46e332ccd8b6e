//! Command-line interface: clap definitions and dispatch only. Each subcommand lives in its own
//! file and turns its arguments into calls on the library; helpers more than one command needs
//! live in [`common`]. Exit codes are [`tapeloop::exit::Exit`].

use clap::{Parser, Subcommand};
use tapeloop::exit::Exit;

mod bench;
mod check;
mod common;
mod compare;
mod events;
mod exec;
mod import;
mod merge;
mod record;
mod run;
mod serve;

const ABOUT: &str = "Record/replay evaluation harness for LLM agent loops.

Replays recorded provider streams through an opencode-faithful agent loop, offline and on virtual
time, and scores doom-loop detection, retry behaviour, step counts and token costs.";

const EXAMPLES: &str = "Examples:
  tapeloop run                          replay scenarios/ against recordings/, print a table
  tapeloop run --format junit --out report.xml
  tapeloop exec --agent opencode       score the real opencode on the same scenarios
  tapeloop check recordings/*.jsonl     validate cassettes and scenarios
  tapeloop events recordings/call-with-tools.anthropic.jsonl
                                        decode a cassette (or a raw stream) to normalized events";

#[derive(Debug, Parser)]
#[command(name = "tapeloop", version, about = ABOUT, after_help = common::with_exit_codes(EXAMPLES))]
#[command(propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay scenarios against their cassettes, score expectations and report.
    Run(run::Args),
    /// Run your own agent against the scenarios' cassettes and score it like `run`.
    Exec(exec::Args),
    /// Record a scenario live against a provider, or record any agent's traffic as a proxy.
    Record(record::Args),
    /// Serve cassettes over HTTP as an OpenAI, Anthropic or Gemini endpoint.
    Serve(serve::Args),
    /// Compare providers side by side, or two run reports (before/after).
    Compare(compare::Args),
    /// Measure replay throughput: events/s, steps/s, scenarios/s.
    Bench(bench::Args),
    /// Decode a raw stream file or a cassette into normalized events.
    Events(events::Args),
    /// Convert vcrpy YAML cassettes (files or directories) into tapeloop cassettes.
    Import(import::Args),
    /// Validate cassettes (and scenarios), reporting every problem found.
    Check(check::Args),
    /// Merge the JSON reports of sharded runs (--partition) into one report.
    Merge(merge::Args),
}

/// Parse the command line and run the command; errors are printed here and exit with
/// [`Exit::Error`].
pub fn main() -> Exit {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Record(args) => record::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Events(args) => events::run(args),
        Command::Import(args) => import::run(args),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err:#}");
            Exit::Error
        }
    }
}
