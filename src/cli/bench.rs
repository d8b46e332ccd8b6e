//! `tapeloop bench`: replay throughput.

use std::path::PathBuf;

use tapeloop::bench;
use tapeloop::exit::Exit;
use tapeloop::runner;

use super::common::{interactive, load_scenarios, print_errors, progress_bar, run_options};

/// Output format of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapeloop bench                             the bundled corpus, 20 iterations
  tapeloop bench scenarios/doom-cycle.toml --iterations 200
  tapeloop bench --format json > bench.json
  tapeloop bench --repeat 100 -n 1           100x the scenario count
  tapeloop bench --cassette-scale 100 -n 1   every cassette 100x larger
  tapeloop bench --jobs 0                    on every core at once (whole-machine throughput)
  tapeloop bench --repeat 20 -n 3 --scaling  jobs 1, 2, 4, ... up to the core count: speed-up
                                             and efficiency against 1 job (best of 3 rounds)

Replays run in-process, reading each cassette from disk every time, so the figures cover the
whole replay path (parse, decode, processor, scoring). By default they run on one thread, so
the figures are per core; with --jobs N the replays of all iterations are shared out to N
threads and the rates are whole-machine throughput (total work / wall time), while each
scenario's latency still comes from its own replays (contention included). Peak RSS is always
the whole process's high-water mark (VmHWM), never per thread or per --scaling row. See
docs/PERFORMANCE.md for how to compare the figures against the parse floor and the Python
reference.")]
pub struct Args {
    /// Scenario files or directories [default: scenarios]
    pub paths: Vec<PathBuf>,

    /// Timed iterations over the whole set (after one warm-up pass).
    #[arg(short = 'n', long, default_value_t = 20)]
    pub iterations: u32,

    /// Replay the scenario set this many times per iteration (scaling runs).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,

    /// Replay copies of the cassettes with their interactions repeated N times (written to a
    /// temporary directory, removed afterwards): cost and memory against cassette size.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub cassette_scale: u32,

    /// Worker threads replaying the set; 0 = one per core. With --scaling: the largest count
    /// measured [default: 1, or the core count with --scaling]
    #[arg(short, long, value_name = "N", value_parser = parse_jobs, allow_negative_numbers = true)]
    pub jobs: Option<usize>,

    /// Measure the same set at jobs = 1, 2, 4, ... up to the core count (or --jobs) and report
    /// throughput, speed-up against 1 job and efficiency (speed-up / jobs).
    #[arg(long)]
    pub scaling: bool,

    /// With --scaling: measure every job count this many times, interleaved, and keep each
    /// count's fastest round (steadier on a shared machine).
    #[arg(long, default_value_t = 3, value_name = "N", requires = "scaling", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,

    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub format: BenchFormat,
}

/// Most worker threads `--jobs` accepts: far beyond any core count, short of exhausting threads.
const MAX_JOBS: usize = 1024;

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= MAX_JOBS => Ok(n),
        Ok(_) => Err(format!("at most {MAX_JOBS} worker threads")),
        Err(_) => Err("expected a whole number of worker threads (0 = one per core)".into()),
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Some(scenarios) = load_scenarios(&args.paths)? else {
        return Ok(Exit::Error);
    };
    let opts = run_options(Some(1), None)?;
    let mut once = runner::plan(&scenarios);
    let scaled_dir = if args.cassette_scale > 1 {
        let dir = std::env::temp_dir().join(format!("tapeloop-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut made: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
        for job in &mut once {
            if let Some(p) = made.get(&job.cassette) {
                job.cassette = p.clone();
                continue;
            }
            let name = job.cassette.file_name().unwrap_or_default();
            let dst = dir.join(format!("{}-{}", made.len(), name.to_string_lossy()));
            if let Err(e) = bench::scale_cassette(&job.cassette, args.cassette_scale, &dst) {
                let _ = std::fs::remove_dir_all(&dir);
                print_errors([format!("{}: {e}", job.cassette.display())]);
                return Ok(Exit::Error);
            }
            made.insert(job.cassette.clone(), dst.clone());
            job.cassette = dst;
        }
        Some(dir)
    } else {
        None
    };
    let mut jobs = Vec::with_capacity(once.len() * args.repeat.max(1) as usize);
    for _ in 0..args.repeat.max(1) {
        jobs.extend(once.iter().cloned());
    }
    let show = interactive();
    if args.scaling {
        // More threads than replays would only repeat the last row.
        let replays = jobs.len().saturating_mul(args.iterations.max(1) as usize);
        let max = bench::resolve_workers(args.jobs.unwrap_or(0)).min(replays);
        let rounds = args.rounds;
        let on_row = |round: u32, jobs: usize| {
            if show {
                eprintln!("round {round}/{rounds}: benchmarking with {jobs} job(s)...");
            }
        };
        let result = bench::scaling(
            &jobs,
            &opts,
            args.iterations,
            &bench::scaling_steps(max),
            args.rounds,
            &on_row,
        );
        let Some(report) = finish(result, scaled_dir.as_deref()) else {
            return Ok(Exit::Error);
        };
        match args.format {
            BenchFormat::Table => print!("{}", report.to_table()),
            BenchFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        }
        return Ok(Exit::Pass);
    }
    let workers = bench::resolve_workers(args.jobs.unwrap_or(1));
    let bar = show.then(|| {
        progress_bar(
            args.iterations as u64,
            "benchmarking [{bar:30}] {pos}/{len} iterations",
        )
    });
    let on_iteration = |n: u32| {
        if let Some(pb) = &bar {
            // Workers may report out of order; never move the bar back.
            if n as u64 > pb.position() {
                pb.set_position(n as u64);
            }
        }
    };
    let result = bench::run(&jobs, &opts, args.iterations, workers, &on_iteration);
    let Some(mut report) = finish(result, scaled_dir.as_deref()) else {
        return Ok(Exit::Error);
    };
    report.cassette_scale = args.cassette_scale.max(1);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    match args.format {
        BenchFormat::Table => print!("{}", report.to_table()),
        BenchFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(Exit::Pass)
}

/// Remove the scaled cassette copies, and print the error if the benchmark failed.
fn finish<T>(
    result: Result<T, tapeloop::runner::RunError>,
    scaled_dir: Option<&std::path::Path>,
) -> Option<T> {
    if let Some(dir) = scaled_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map_err(|e| print_errors([e])).ok()
}
