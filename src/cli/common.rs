//! Helpers more than one command needs: `--color`, loading scenarios, replaying jobs with a
//! progress bar, reading and writing report files, the async runtime and the stop signal, and
//! printing errors. Commands import from here, never from each other.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use tapeloop::exit::Exit;
use tapeloop::processor::PriceTable;
use tapeloop::report::RunReport;
use tapeloop::runner::{self, Job, RunOptions};
use tapeloop::scenario::{self, Scenario};

/// `after_help` text: `text`, then the exit codes and where they are documented.
pub fn with_exit_codes(text: &str) -> String {
    format!(
        "{text}\n\nExit status: {}.\nSee \"Exit codes\" in README.md.",
        Exit::SUMMARY
    )
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

/// The width terminal tables fit: `COLUMNS` when set to a positive number, else the width of
/// the terminal on stdout, else [`tapeloop::report::DEFAULT_WIDTH`] (piped output).
pub fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    match terminal_size::terminal_size_of(std::io::stdout()) {
        Some((terminal_size::Width(w), _)) if w > 0 => w as usize,
        _ => tapeloop::report::DEFAULT_WIDTH,
    }
}

/// Every file below `dir` whose extension is one of `exts`, in path order.
pub fn files_below(dir: &Path, exts: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        if p.is_dir() {
            out.extend(files_below(&p, exts)?);
        } else if p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Print each error as `error: …` on stderr.
pub fn print_errors<E: Display>(errors: impl IntoIterator<Item = E>) {
    for e in errors {
        eprintln!("error: {e}");
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
                print_errors(errors);
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

/// Replay options: `jobs` worker threads (0 or none = one per core) and the bundled price
/// table or the one at `pricing`.
pub fn run_options(jobs: Option<usize>, pricing: Option<&Path>) -> anyhow::Result<RunOptions> {
    let prices = match pricing {
        Some(p) => {
            Arc::new(PriceTable::load(p).with_context(|| format!("loading {}", p.display()))?)
        }
        None => PriceTable::bundled(),
    };
    Ok(RunOptions {
        jobs: jobs.unwrap_or(0),
        prices,
        ..RunOptions::default()
    })
}

/// Whether progress may be drawn: stderr is a terminal and this is not CI.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A progress bar of `len` steps drawn with `template` (indicatif syntax).
pub fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

/// Run jobs with a progress bar on a terminal (none in CI or when piped). Runner errors are
/// printed and give None.
pub fn execute(
    jobs: &[Job],
    opts: &RunOptions,
    progress: bool,
) -> anyhow::Result<Option<RunReport>> {
    let bar = (progress && interactive() && jobs.len() > 1).then(|| {
        progress_bar(
            jobs.len() as u64,
            "{spinner} replaying [{bar:30}] {pos}/{len} {wide_msg}",
        )
    });
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
            print_errors(errors);
            Ok(None)
        }
    }
}

/// Read a JSON run report.
pub fn read_report(path: &Path) -> anyhow::Result<RunReport> {
    Ok(RunReport::read(path)?)
}

/// Write `text` to `path`, creating its directory.
/// Write `report` as `format`: to `out` (with the table still on stdout as a summary) or to
/// stdout. `opts.color` is the terminal's colour choice; a file never gets colour.
pub fn emit_report(
    report: &tapeloop::report::RunReport,
    format: tapeloop::report::Format,
    out: Option<&Path>,
    mut opts: tapeloop::report::RenderOptions,
) -> anyhow::Result<()> {
    use tapeloop::report::{render_with, Format};
    let color = opts.color;
    opts.color = color && out.is_none();
    let rendered = render_with(report, format, &opts);
    match out {
        Some(path) => {
            write_file(path, &rendered)?;
            if format != Format::Table {
                opts.color = color;
                print!("{}", render_with(report, Format::Table, &opts));
            }
            eprintln!("wrote {}", path.display());
        }
        None => print!("{rendered}"),
    }
    Ok(())
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

/// The multi-threaded tokio runtime the network commands (`serve`, `record`) run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Ctrl-C (SIGINT), or SIGTERM on Unix (`kill`, CI runners, container and service managers):
/// how a server or proxy is asked to stop cleanly. The handlers are installed when this is
/// called, so call it before announcing the server: a signal sent as soon as the address is
/// printed then stops it cleanly instead of killing it.
pub fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Where a report goes, how it is priced and coloured: the flags `run`, `exec` and `compare`
/// share.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Write the report to FILE instead of stdout (`run` and `exec` still print a table
    /// summary).
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Price table override: a models.dev api.json or a file in the same shape.
    #[arg(long, value_name = "FILE")]
    pub pricing: Option<PathBuf>,

    /// Colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,
}

/// How `serve` and `record --proxy` shed slow and idle clients
/// ([`tapeloop::net::listener::ConnLimits`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Seconds a client has to send a complete request head (from connecting, or from the
    /// head's first byte) before its connection is closed; also the longest pause allowed
    /// within a request body (a stalled body gets a 408).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_secs)]
    pub header_read_timeout: f64,

    /// Seconds a connection may stay open with no request in flight before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = positive_secs)]
    pub idle_timeout: f64,

    /// Connections served at once; more wait in the accept queue until one closes (a waiting
    /// client makes a connection idle for a second or more close at once) [default: half the
    /// open-file limit, raised to its hard limit, between 16 and 8192]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
}

impl ConnArgs {
    /// The listener limits these flags ask for.
    pub fn limits(&self) -> tapeloop::net::listener::ConnLimits {
        tapeloop::net::listener::ConnLimits {
            header_read_timeout: std::time::Duration::from_secs_f64(self.header_read_timeout),
            idle_timeout: std::time::Duration::from_secs_f64(self.idle_timeout),
            max_connections: self
                .max_connections
                .map_or_else(tapeloop::net::listener::default_max_connections, |n| {
                    n as usize
                }),
        }
    }
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}`: expected seconds between 0 and 86400, e.g. 10 or 0.5"
        )),
    }
}
