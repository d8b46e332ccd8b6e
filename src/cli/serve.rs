//! `tapeloop serve`: play cassettes back over HTTP to a real agent.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use tapeloop::cassette::CassetteIndex;
use tapeloop::exit::Exit;
use tapeloop::matching::{IgnorePath, ServeMatch};
use tapeloop::net::serve::{self, Pace, ServeOptions};
use tapeloop::scenario;

use super::common::{files_below, print_errors, runtime, stop_signal, ConnArgs};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop serve recordings/call-with-tools.openai-chat.jsonl
      then point the agent at it, e.g. OPENAI_BASE_URL=http://127.0.0.1:8765/v1
  tapeloop serve recordings/ --pace instant --log /tmp/tapeloop-requests.jsonl \\
      --listen 127.0.0.1:0
  tapeloop serve scenarios/retry-429-retry-after.toml --pace instant \\
      --retry-after-scale 0.01 --listen 127.0.0.1:0
  tapeloop serve recordings/call-with-tools.anthropic.jsonl --ignore '$.system' \\
      --listen 127.0.0.1:0
  tapeloop serve recordings/call-with-tools.anthropic.jsonl --match strict \\
      --ignore '$.max_tokens' --listen 127.0.0.1:0
      exit 1 at shutdown if a request diverged or an interaction was never played

Endpoints: POST /v1/chat/completions, /v1/responses, /v1/messages,
/v1beta/models/{model}:streamGenerateContent (and :generateContent); GET /v1/models,
/v1beta/models; control: GET /_tapeloop/status, GET /_tapeloop/requests (the request log,
JSON lines), POST /_tapeloop/reset[?session=NAME].

Matching (--match): `conversation` (default) answers a request from the recorded interaction
whose request is the same conversation (model, system, messages/input/contents, tools), over
every cassette served, without any session header; retries of an identical request get the
recorded attempts in order; a request nothing matches gets a 400 naming the closest recorded
request and the first differing JSON path. Ignored by default: stream, stream_options, token
limits, sampling settings, user, metadata, store, cache_control, client ids (README.md
\"Serving cassettes\" lists them); --ignore adds more. `sequence` plays interactions in
recorded order per session (x-tapeloop-session header, else the conversation prefix);
`strict` does too and refuses a request whose body differs.

Exit status: 0 after Ctrl-C (or SIGTERM); 1 with --require-all when an interaction was never
requested, or in strict mode when a request diverged or an interaction was never played;
2 on bad input.")]
pub struct Args {
    /// Cassettes (.jsonl), scenarios (.toml, serving their cassettes) or directories (every
    /// .jsonl below them).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,

    /// Chunk timing: recorded, instant, or xN (N times faster).
    #[arg(long, default_value = "recorded")]
    pub pace: Pace,

    /// How a request finds its recorded interaction: conversation, sequence or strict.
    #[arg(long = "match", value_name = "MODE", default_value = "conversation")]
    pub matching: ServeMatch,

    /// Same as --match strict.
    #[arg(long, conflicts_with = "matching")]
    pub strict: bool,

    /// Leave this field out of matching (repeatable), e.g. '$.temperature',
    /// '$.messages[*].id', '$..cache_control'.
    #[arg(long, value_name = "JSONPATH")]
    pub ignore: Vec<IgnorePath>,

    /// Multiply the retry waits of served errors (retry-after, retry-after-ms, Gemini
    /// retryDelay) by F, e.g. 0.01.
    #[arg(long, value_name = "F", value_parser = parse_scale)]
    pub retry_after_scale: Option<f64>,

    /// Also write the request log (JSON lines) to FILE as requests are served.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Exit 1 at shutdown when any recorded interaction was never requested.
    #[arg(long)]
    pub require_all: bool,

    /// Sessions kept at most; past it the least recently served one is forgotten (a
    /// forgotten session that returns starts over, and its response carries
    /// `x-tapeloop-session-restarted`), so memory stays bounded however many sessions come.
    #[arg(long, value_name = "N", default_value_t = tapeloop::net::serve::MAX_SESSIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sessions: u64,

    #[command(flatten)]
    pub conn: ConnArgs,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0)
        .ok_or_else(|| format!("`{s}`: expected a number >= 0, e.g. 0.01"))
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut files = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let found = files_below(input, &["jsonl"])?;
            if found.is_empty() {
                anyhow::bail!(
                    "{}: no cassettes (*.jsonl) below this directory",
                    input.display()
                );
            }
            files.extend(found);
        } else if input.extension().is_some_and(|e| e == "toml") {
            let sc = match scenario::load_checked(input) {
                Ok(s) => s,
                Err(errors) => {
                    print_errors(errors);
                    return Ok(Exit::Error);
                }
            };
            files.extend(sc.cassettes.iter().map(|c| c.path.clone()));
        } else {
            files.push(input.clone());
        }
    }
    // Indexed, not loaded: bodies are read from the files as they are played, so memory does
    // not grow with the cassettes' size.
    let mut cassettes = Vec::new();
    for f in &files {
        cassettes.push(CassetteIndex::open(f)?);
    }
    let matching = if args.strict {
        ServeMatch::Strict
    } else {
        args.matching
    };
    runtime()?.block_on(async move {
        let opts = ServeOptions {
            pace: args.pace,
            matching,
            ignore: args.ignore.clone(),
            retry_after_scale: args.retry_after_scale,
            log_file: args.log.clone(),
            max_sessions: usize::try_from(args.max_sessions).unwrap_or(usize::MAX),
            conn: args.conn.limits(),
            ..ServeOptions::new(args.listen)
        };
        let handle = serve::start(cassettes, opts)
            .await
            .with_context(|| format!("starting the server on {}", args.listen))?;
        let stop = stop_signal()?;
        let addr = handle.addr();
        let summary = handle.summary();
        eprintln!(
            "tapeloop serve: {} cassette(s) on http://{addr}  (OpenAI base URL http://{addr}/v1, Anthropic http://{addr}, Gemini http://{addr}/v1beta), match {matching}; Ctrl-C to stop",
            summary.cassettes.len()
        );
        for c in &summary.cassettes {
            eprintln!("  {} ({}, {} interactions)", c.path, c.api, c.interactions);
        }
        stop.await;
        eprintln!("tapeloop serve: shutting down");
        let summary = handle.shutdown().await;
        eprintln!("served {} request(s)", summary.requests);
        if summary.sessions_forgotten > 0 {
            eprintln!(
                "  {} session(s) forgotten past --max-sessions {}, {} of which came back and started over",
                summary.sessions_forgotten, args.max_sessions, summary.sessions_restarted
            );
        }
        let mut unused = 0;
        for c in &summary.cassettes {
            unused += c.unused.len();
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
        let strict_failed = matching == ServeMatch::Strict && summary.strict_failed();
        if strict_failed {
            eprintln!("tapeloop serve: strict mode failed (divergences or unused interactions)");
        }
        let unplayed = args.require_all && unused > 0;
        if unplayed {
            eprintln!("tapeloop serve: --require-all: {unused} recorded interaction(s) were never requested");
        }
        Ok(Exit::verdict(!strict_failed && !unplayed))
    })
}
