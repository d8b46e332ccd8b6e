//! `tapeloop record`: record a scenario live, or any agent's traffic through the proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use tapeloop::exit::Exit;
use tapeloop::net::proxy::{self, ProxyMode, ProxyOptions};
use tapeloop::processor::PriceTable;
use tapeloop::provider::{wire, Api};
use tapeloop::record::{self, LiveOptions, Progress, RecordMode};
use tapeloop::runner::{self, RunOptions};
use tapeloop::scenario;

use super::common::{print_errors, runtime, stop_signal};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  OPENAI_API_KEY=... tapeloop record scenarios/call-with-tools.toml -o recordings/call-with-tools.openai.jsonl
  tapeloop record scenarios/call-with-tools.toml --api anthropic --model claude-sonnet-4-5
  tapeloop record scenarios/call-with-tools.toml --base-url http://127.0.0.1:11434 --provider ollama \\
      --api-key-env NONE --model qwen3:8b          (any OpenAI-compatible server)
  tapeloop record --proxy --listen 127.0.0.1:8766 --upstream https://api.openai.com \\
      -o recordings/proxy/
      then point the agent at http://127.0.0.1:8766/v1; Ctrl-C (or SIGTERM) writes the footers

API keys come from OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY/GOOGLE_API_KEY,
OPENROUTER_API_KEY (provider openrouter), or --api-key-env NAME. Keys never reach the
cassette: authorization headers, key query parameters and key-shaped strings are redacted.")]
pub struct Args {
    /// The scenario to run live (not with --proxy).
    #[arg(required_unless_present = "proxy", conflicts_with = "proxy")]
    pub scenario: Option<PathBuf>,

    /// Run as a recording proxy instead of driving a scenario.
    #[arg(long)]
    pub proxy: bool,

    /// Proxy: address to listen on.
    #[arg(long, default_value = "127.0.0.1:8766", requires = "proxy")]
    pub listen: SocketAddr,

    /// Proxy: the upstream base URL requests are forwarded to.
    #[arg(long, requires = "proxy")]
    pub upstream: Option<String>,

    /// Wire API [default: the scenario's].
    #[arg(long)]
    pub api: Option<Api>,

    /// Model [default: the scenario's].
    #[arg(long)]
    pub model: Option<String>,

    /// Provider name for the cassette header [default: from the API or the host].
    #[arg(long)]
    pub provider: Option<String>,

    /// Base URL of the provider (any OpenAI-compatible server works with openai-chat).
    #[arg(long)]
    pub base_url: Option<String>,

    /// Read the API key from this environment variable (NONE for servers without keys).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,

    /// Output cassette (a directory with --proxy) [default: recordings/<scenario>.<provider>.jsonl].
    #[arg(short, long)]
    pub output: Option<PathBuf>,

    /// once (refuse to overwrite), all (re-record), new (append what the cassette lacks);
    /// with --proxy also none (only replay what the directory holds), and once/new/none answer
    /// what the directory's cassettes hold without forwarding it.
    #[arg(long, default_value = "once")]
    pub mode: ProxyMode,

    /// Connect timeout in seconds.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,

    /// Longest silence between two body reads, in seconds, before the attempt times out.
    #[arg(long, default_value_t = 120)]
    pub read_timeout: u64,

    /// Slow and idle client limits of the proxy (--proxy only).
    #[command(flatten)]
    pub conn: super::common::ConnArgs,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let rt = runtime()?;
    if args.proxy {
        return rt.block_on(run_proxy(args));
    }
    rt.block_on(run_live(args))
}

async fn run_proxy(args: Args) -> anyhow::Result<Exit> {
    let Some(upstream) = args.upstream.clone() else {
        bail!("--proxy needs --upstream URL (e.g. https://api.openai.com)");
    };
    url::Url::parse(&upstream).with_context(|| format!("--upstream `{upstream}` is not a URL"))?;
    let out_dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("recordings/proxy"));
    let handle = proxy::start(ProxyOptions {
        listen: args.listen,
        upstream: upstream.clone(),
        out_dir: out_dir.clone(),
        connect_timeout: Duration::from_secs(args.connect_timeout),
        read_timeout: Duration::from_secs(args.read_timeout),
        provider: args.provider.clone(),
        mode: args.mode,
        conn: args.conn.limits(),
    })
    .await
    .with_context(|| format!("starting the proxy on {}", args.listen))?;
    let stop = stop_signal()?;
    eprintln!(
        "tapeloop record --proxy: http://{} → {upstream}, cassettes in {}; Ctrl-C to stop",
        handle.addr(),
        out_dir.display()
    );
    stop.await;
    let paths = handle
        .shutdown()
        .await
        .context("writing cassette footers")?;
    eprintln!("wrote {} cassette(s)", paths.len());
    for p in paths {
        eprintln!("  {}", p.display());
    }
    Ok(Exit::Pass)
}

async fn run_live(args: Args) -> anyhow::Result<Exit> {
    let path = args
        .scenario
        .clone()
        .expect("clap requires a scenario without --proxy");
    let sc = match scenario::load(
        &path,
        &scenario::LoadOptions {
            check_cassettes: false,
        },
    ) {
        Ok(s) => s,
        Err(errors) => {
            print_errors(errors);
            return Ok(Exit::Error);
        }
    };
    let Some(api) = args.api.or(sc.api) else {
        bail!(
            "{}: the scenario names no `api`; pass --api",
            path.display()
        );
    };
    let Some(model) = args.model.clone().or_else(|| sc.model.clone()) else {
        bail!(
            "{}: the scenario names no `model`; pass --model",
            path.display()
        );
    };
    let provider = args
        .provider
        .clone()
        .or_else(|| sc.provider.clone())
        .unwrap_or_else(|| wire::default_provider(api).to_string());
    let api_key = match args.api_key_env.as_deref() {
        Some("NONE") => None,
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("--api-key-env {var}: the variable is not set"))?,
        ),
        None => {
            let vars = wire::key_variables(api, &provider);
            match vars.iter().find_map(|v| std::env::var(v).ok()) {
                Some(k) => Some(k),
                None if args.base_url.is_some() => None,
                None => bail!(
                    "no API key: set {} (or --api-key-env NAME, or --api-key-env NONE for a server without keys)",
                    vars.join(" or ")
                ),
            }
        }
    };
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from("recordings").join(format!("{}.{provider}.jsonl", sc.name))
    });
    let opts = LiveOptions {
        api,
        model: model.clone(),
        provider,
        base_url: args
            .base_url
            .clone()
            .unwrap_or_else(|| wire::default_base_url(api).to_string()),
        api_key,
        connect_timeout: Duration::from_secs(args.connect_timeout),
        read_timeout: Duration::from_secs(args.read_timeout),
    };
    let mut run_opts = RunOptions {
        prices: PriceTable::bundled(),
        ..RunOptions::default()
    };
    run_opts.jobs = 1;
    let mut cfg = runner::processor_config(&sc, &run_opts, Some(&opts.provider));
    cfg.model = model;
    let progress = |p: Progress| match p {
        Progress::Request { step, attempt } if attempt > 1 => {
            eprintln!("step {step}: attempt {attempt}")
        }
        Progress::Request { step, .. } => eprintln!("step {step}: request"),
        Progress::Response { status, ms } => eprintln!("  {status} after {ms} ms"),
        Progress::StepDone { step, tokens } => eprintln!("  step {step} done, {tokens} tokens"),
        Progress::Retry { ms } => eprintln!("  retrying in {ms} ms"),
    };
    let mode = match args.mode {
        ProxyMode::Once => RecordMode::Once,
        ProxyMode::New => RecordMode::New,
        ProxyMode::All => RecordMode::All,
        ProxyMode::None => bail!("--mode none replays only: it is for --proxy"),
    };
    let outcome = record::record_scenario(&sc, cfg, &opts, &output, mode, &progress).await?;
    eprintln!(
        "recorded {} ({} steps, finish {}) to {}",
        sc.name,
        outcome.steps.len(),
        outcome
            .termination
            .map(|t| t.to_string())
            .unwrap_or_else(|| "unknown".into()),
        output.display()
    );
    Ok(Exit::Pass)
}
