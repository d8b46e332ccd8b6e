//! `tapeloop serve`: play cassettes back over HTTP to a real agent.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use tapeloop::cassette::Cassette;
use tapeloop::exit::Exit;
use tapeloop::net::serve::{self, Pace, ServeOptions};
use tapeloop::scenario;

use super::common::{print_errors, runtime, wait_for_stop, ConnArgs};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop serve recordings/read-loop.openai.jsonl
      then point the agent at it, e.g. OPENAI_BASE_URL=http://127.0.0.1:8765/v1
  tapeloop serve scenarios/retry-429.toml --pace instant
  tapeloop serve recordings/*.jsonl --listen 127.0.0.1:0 --strict

Endpoints: POST /v1/chat/completions, /v1/responses, /v1/messages,
/v1beta/models/{model}:streamGenerateContent; GET /_tapeloop/status.
Interactions play in order per session: the x-tapeloop-session header, else the
conversation prefix (system prompt + first message).
Exit status: 0 after Ctrl-C (or SIGTERM); with --strict, 1 when a request diverged or an interaction
was never played; 2 on bad input.")]
pub struct Args {
    /// Cassettes (.jsonl) or scenarios (.toml, serving their cassettes).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,

    /// Chunk timing: recorded, instant, or xN (N times faster).
    #[arg(long, default_value = "recorded")]
    pub pace: Pace,

    /// Reject requests that differ from the recorded ones; fail on unused interactions.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub conn: ConnArgs,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    args.conn.apply();
    let mut cassettes = Vec::new();
    for input in &args.inputs {
        if input.extension().is_some_and(|e| e == "toml") {
            let sc = match scenario::load_checked(input) {
                Ok(s) => s,
                Err(errors) => {
                    print_errors(errors);
                    return Ok(Exit::Error);
                }
            };
            for c in &sc.cassettes {
                cassettes.push(Cassette::load(&c.path)?);
            }
        } else {
            cassettes.push(Cassette::load(input)?);
        }
    }
    runtime()?.block_on(async move {
        let opts = ServeOptions {
            pace: args.pace,
            strict: args.strict,
            ..ServeOptions::new(args.listen)
        };
        let handle = serve::start(cassettes, opts)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = handle.addr();
        let summary = handle.summary();
        eprintln!(
            "tapeloop serve: {} cassette(s) on http://{addr}  (OpenAI base URL http://{addr}/v1, Anthropic http://{addr}, Gemini http://{addr}/v1beta); Ctrl-C to stop",
            summary.cassettes.len()
        );
        for c in &summary.cassettes {
            eprintln!("  {} ({}, {} interactions)", c.path, c.api, c.interactions);
        }
        wait_for_stop().await?;
        eprintln!("tapeloop serve: shutting down");
        let summary = handle.shutdown().await;
        eprintln!("served {} request(s)", summary.requests);
        for c in &summary.cassettes {
            if c.unused.is_empty() {
                eprintln!("  {}: all {} interactions played", c.path, c.interactions);
            } else {
                eprintln!(
                    "  {}: {} of {} interactions never played (ids {:?})",
                    c.path,
                    c.unused.len(),
                    c.interactions,
                    c.unused
                );
            }
        }
        for d in &summary.divergences {
            eprintln!(
                "  divergence: {} interaction {} at {}: recorded {}, sent {}",
                d.cassette, d.interaction, d.path, d.recorded, d.sent
            );
        }
        let failed = args.strict && summary.strict_failed();
        if failed {
            eprintln!("tapeloop serve: strict mode failed (divergences or unused interactions)");
        }
        Ok(Exit::verdict(!failed))
    })
}
