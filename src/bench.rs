//! `tapeloop bench`: replay scenarios in-process repeatedly and measure the replay path —
//! cassette bytes in, scored record out — in events/s, steps/s and scenarios/s, with the
//! per-scenario latency and the process's peak memory.
//!
//! By default on one thread (per-core figures); [`run`] with more workers measures
//! whole-machine throughput, and [`scaling`] relates the two (speed-up and efficiency per
//! worker count). Peak memory is always the process-wide high-water mark.
//!
//! Cassettes are read from disk on every iteration (as `tapeloop run` does), so the figures
//! include parsing. Wall-clock figures depend on the machine; compare ratios measured in one
//! run (see `docs/PERFORMANCE.md`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::runner::{Job, RunOptions};

/// Per-scenario timing.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioTiming {
    pub scenario: String,
    pub cassette: String,
    /// Size of the cassette file, read and parsed on every replay.
    pub bytes: u64,
    pub events: u64,
    pub steps: u64,
    pub median_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

/// The whole measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub iterations: u32,
    /// Copies of each cassette's interactions replayed (`tapeloop bench --cassette-scale`; 1 by
    /// default). Above 1 each scenario still stops where its policy stops it, and the rest of
    /// the cassette is read and checked but not decoded, so `bytes_per_s` rises with the scale
    /// and compares only with runs at the same scale (`events_per_s` compares across scales).
    pub cassette_scale: u32,
    pub scenarios: usize,
    /// Worker threads the timed iterations ran on (1 = per-core figures).
    pub jobs: usize,
    /// Cassette bytes read over all timed iterations.
    pub total_bytes: u64,
    pub total_events: u64,
    pub total_steps: u64,
    pub elapsed_s: f64,
    pub bytes_per_s: f64,
    pub events_per_s: f64,
    pub steps_per_s: f64,
    pub scenarios_per_s: f64,
    /// CPU time (user + system, all threads) the process spent in the timed iterations, when
    /// the OS tells (Linux, 10 ms resolution). `cpu_s / elapsed_s` is the number of cores the
    /// run actually got: well below `jobs` means a busy machine, not a slow replay path.
    pub cpu_s: Option<f64>,
    /// Peak resident set size of this process in bytes, when the OS tells.
    pub peak_rss_bytes: Option<u64>,
    pub per_scenario: Vec<ScenarioTiming>,
}

pub use crate::runner::pool::{available_cores, resolve_workers};

/// Replay every job `iterations` times on `workers` threads.
///
/// With one worker everything runs on the calling thread, so the figures are per core. With
/// more, `workers` scoped threads first share one untimed warm-up pass, wait for each other,
/// and then take the `iterations × jobs` timed replays one at a time from a shared counter (as
/// [`crate::runner::run_jobs`] does), with no barrier between iterations: throughput is the
/// total work over the wall time of all timed iterations, and each replay's latency is still
/// sampled for its scenario (it then includes contention).
/// `on_iteration(k)` is called, possibly from a worker thread, whenever `k` iterations' worth
/// of replays have finished.
pub fn run(
    jobs: &[Job],
    opts: &RunOptions,
    iterations: u32,
    workers: usize,
    on_iteration: &(dyn Fn(u32) + Sync),
) -> Result<BenchReport, crate::runner::RunError> {
    let iterations = iterations.max(1);
    let total = jobs.len() * iterations as usize;
    let workers = workers.clamp(1, total.max(1));
    let sizes: Vec<u64> = jobs
        .iter()
        .map(|j| std::fs::metadata(&j.cassette).map_or(0, |m| m.len()))
        .collect();

    let error: Mutex<Option<crate::runner::RunError>> = Mutex::new(None);
    let fail = |e: crate::runner::RunError| {
        error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    };
    // One untimed warm-up pass over the set, shared by the same workers as the timed part (so
    // each thread's allocator arena and caches are warm before the clock starts), which also
    // validates every job and counts its events and steps.
    let warm_next = AtomicUsize::new(0);
    let warm_failed = AtomicBool::new(false);
    let counts: Mutex<Vec<(u64, u64)>> = Mutex::new(vec![(0, 0); jobs.len()]);
    let warm_up = || {
        while !warm_failed.load(Ordering::Relaxed) {
            let i = warm_next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break };
            match crate::runner::replay_job(job, opts) {
                Ok(r) => {
                    counts.lock().unwrap_or_else(|e| e.into_inner())[i] =
                        (r.events, u64::from(r.record.steps));
                }
                Err(e) => {
                    warm_failed.store(true, Ordering::Relaxed);
                    fail(e);
                }
            }
        }
    };
    // Timed work item k is job k % jobs.len() of iteration k / jobs.len().
    let done = AtomicUsize::new(0);
    let mut cpu_before = None;
    let timed = |k: usize| -> Result<(usize, Duration), ()> {
        if warm_failed.load(Ordering::Relaxed) {
            return Err(());
        }
        let i = k % jobs.len();
        let t = Instant::now();
        match crate::runner::replay_job(&jobs[i], opts) {
            Ok(r) => {
                let took = t.elapsed();
                std::hint::black_box(r);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % jobs.len() == 0 {
                    on_iteration((d / jobs.len()) as u32);
                }
                Ok((i, took))
            }
            Err(e) => {
                fail(e);
                Err(())
            }
        }
    };
    let run = crate::runner::pool::run(
        workers,
        total,
        &warm_up,
        &mut || cpu_before = process_cpu_s(),
        &timed,
    );
    let cpu_s = cpu_since(cpu_before);
    let (elapsed, per_worker) = (
        run.elapsed,
        vec![run.results.into_iter().flatten().collect::<Vec<_>>()],
    );
    let elapsed = elapsed.as_secs_f64();
    if let Some(e) = error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let counts = counts.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations as usize); jobs.len()];
    for (i, d) in per_worker.into_iter().flatten() {
        samples[i].push(d);
    }

    let total_events: u64 = counts.iter().map(|c| c.0).sum::<u64>() * iterations as u64;
    let total_steps: u64 = counts.iter().map(|c| c.1).sum::<u64>() * iterations as u64;
    let total_bytes: u64 = sizes.iter().sum::<u64>() * iterations as u64;
    let per_scenario = jobs
        .iter()
        .zip(samples.iter_mut())
        .zip(counts.iter().zip(&sizes))
        .map(|((job, s), (c, &bytes))| {
            s.sort();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            ScenarioTiming {
                scenario: job.scenario.name.clone(),
                cassette: crate::runner::display_path(&job.cassette),
                bytes,
                events: c.0,
                steps: c.1,
                median_us: us(s[s.len() / 2]),
                min_us: us(s[0]),
                max_us: us(s[s.len() - 1]),
            }
        })
        .collect();
    let per_s = |n: f64| if elapsed > 0.0 { n / elapsed } else { 0.0 };
    Ok(BenchReport {
        iterations,
        cassette_scale: 1,
        scenarios: jobs.len(),
        jobs: workers,
        total_bytes,
        total_events,
        total_steps,
        elapsed_s: elapsed,
        bytes_per_s: per_s(total_bytes as f64),
        events_per_s: per_s(total_events as f64),
        steps_per_s: per_s(total_steps as f64),
        scenarios_per_s: per_s(jobs.len() as f64 * iterations as f64),
        cpu_s,
        peak_rss_bytes: peak_rss_bytes(),
        per_scenario,
    })
}

/// The worker counts a scaling run measures: 1, 2, 4, … below `max`, then `max` itself.
pub fn scaling_steps(max: usize) -> Vec<usize> {
    let max = max.max(1);
    let mut steps: Vec<usize> = std::iter::successors(Some(1usize), |&n| n.checked_mul(2))
        .take_while(|&n| n < max)
        .collect();
    steps.push(max);
    steps
}

/// One row of a scaling run.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingRow {
    pub jobs: usize,
    pub elapsed_s: f64,
    pub scenarios_per_s: f64,
    pub events_per_s: f64,
    pub bytes_per_s: f64,
    /// Throughput relative to the 1-job row.
    pub speedup: f64,
    /// `speedup / jobs`: 1.0 is linear scaling.
    pub efficiency: f64,
    /// Process CPU time over wall time: the cores this row actually got (Linux only, rows of at
    /// least 0.1 s). When it is well below `jobs`, the machine was busy and the speed-up
    /// understates the code.
    pub cores_used: Option<f64>,
}

/// The same scenario set measured at several worker counts.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingReport {
    pub iterations: u32,
    /// Interleaved rounds per worker count; each row is its count's fastest round.
    pub rounds: u32,
    pub scenarios: usize,
    /// `std::thread::available_parallelism` on this machine.
    pub cores: usize,
    pub rows: Vec<ScalingRow>,
    /// Peak resident set size of the whole process over every row (`VmHWM`), not per row.
    pub peak_rss_bytes: Option<u64>,
}

/// Measure [`run`] at every worker count in `steps` (the first should be 1), `rounds` times,
/// interleaved (1, 2, 4, 1, 2, 4, …) so that a burst of load from elsewhere on the machine hits
/// every count alike, and keep each count's fastest round; then relate each row's throughput
/// to the first row's. Every round has its own warm-up pass.
pub fn scaling(
    jobs: &[Job],
    opts: &RunOptions,
    iterations: u32,
    steps: &[usize],
    rounds: u32,
    on_row: &dyn Fn(u32, usize),
) -> Result<ScalingReport, crate::runner::RunError> {
    let mut best: Vec<Option<BenchReport>> = vec![None; steps.len()];
    for round in 1..=rounds.max(1) {
        for (slot, &workers) in best.iter_mut().zip(steps) {
            on_row(round, workers);
            let r = run(jobs, opts, iterations, workers, &|_| {})?;
            if slot.as_ref().is_none_or(|b| r.elapsed_s < b.elapsed_s) {
                *slot = Some(r);
            }
        }
    }
    let mut rows: Vec<ScalingRow> = Vec::with_capacity(steps.len());
    let mut iters = iterations.max(1);
    for r in best.into_iter().flatten() {
        iters = r.iterations;
        // Every row does the same work, so the speed-up is the ratio of wall times.
        let speedup = match rows.first() {
            None => 1.0,
            Some(base) if r.elapsed_s > 0.0 => base.elapsed_s / r.elapsed_s,
            Some(_) => 0.0,
        };
        rows.push(ScalingRow {
            jobs: r.jobs,
            elapsed_s: r.elapsed_s,
            scenarios_per_s: r.scenarios_per_s,
            events_per_s: r.events_per_s,
            bytes_per_s: r.bytes_per_s,
            speedup,
            efficiency: speedup / r.jobs as f64,
            cores_used: r.cores_used(),
        });
    }
    Ok(ScalingReport {
        iterations: iters,
        rounds: rounds.max(1),
        scenarios: jobs.len(),
        cores: available_cores(),
        rows,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

impl ScalingReport {
    /// A readable table.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{} replay(s) x {} iteration(s) per row, best of {} interleaved round(s), {} core(s) available\n\n",
            self.scenarios, self.iterations, self.rounds, self.cores
        );
        out.push_str(&format!(
            "{:>4}  {:>9}  {:>14}  {:>14}  {:>8}  {:>10}  {:>10}\n",
            "jobs", "elapsed s", "scenarios/s", "events/s", "speed-up", "efficiency", "cores used"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:>4}  {:>9.3}  {:>14}  {:>14}  {:>7.2}x  {:>9.0}%  {:>10}\n",
                r.jobs,
                r.elapsed_s,
                human_rate(r.scenarios_per_s),
                human_rate(r.events_per_s),
                r.speedup,
                r.efficiency * 100.0,
                r.cores_used.map_or("-".into(), |c| format!("{c:.2}"))
            ));
        }
        if self.rows.iter().any(|r| {
            r.cores_used
                .is_some_and(|c| c < 0.8 * r.jobs.min(self.cores) as f64)
        }) {
            out.push_str(
                "\nSome rows got well under one core per job (cores used = process CPU time / wall\n\
                 time): the machine was busy, so their speed-ups understate the code.\n",
            );
        }
        if let Some(b) = self.peak_rss_bytes {
            out.push_str(&format!(
                "\npeak RSS {:.1} MiB (whole process over all rows, not per row)\n",
                b as f64 / 1048576.0
            ));
        }
        out
    }
}

/// CPU time (user + system, every thread) this process has used so far, in seconds: Linux
/// `/proc/self/stat` in clock ticks of 1/100 s (`USER_HZ`), `None` elsewhere.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime 14, stime 15.
    let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = rest.nth(11)?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn cpu_since(before: Option<f64>) -> Option<f64> {
    process_cpu_s()
        .zip(before)
        .map(|(after, before)| after - before)
}

/// Peak resident set size (Linux `VmHWM`), `None` elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn human_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1} ")
    }
}

/// Shortest wall time for which CPU time over wall time means anything, given CPU time in
/// 10 ms ticks.
const MIN_WALL_FOR_CPU_S: f64 = 0.1;

impl BenchReport {
    /// Process CPU time over wall time: how many cores the timed iterations actually got.
    /// `None` off Linux and for runs shorter than 0.1 s (CPU time comes in 10 ms ticks).
    pub fn cores_used(&self) -> Option<f64> {
        self.cpu_s
            .filter(|_| self.elapsed_s >= MIN_WALL_FOR_CPU_S)
            .map(|c| c / self.elapsed_s)
    }

    /// A readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} replay(s) (scenario x cassette) x {} iteration(s) in {:.3} s ({})\n",
            self.scenarios,
            self.iterations,
            self.elapsed_s,
            if self.jobs == 1 {
                "1 thread: per-core figures".to_string()
            } else {
                format!(
                    "{} threads: whole-machine figures, latencies include contention",
                    self.jobs
                )
            }
        ));
        out.push_str(&format!(
            "  bytes/s      {}B/s (cassette bytes, parsing included)\n",
            human_rate(self.bytes_per_s)
        ));
        if self.cassette_scale > 1 {
            out.push_str(&format!(
                "               at --cassette-scale {}: the rest of a cassette after its scenario stops is\n               read and checked, not decoded; compare bytes/s only at the same scale\n",
                self.cassette_scale
            ));
        }
        out.push_str(&format!(
            "  events/s     {}events/s\n",
            human_rate(self.events_per_s)
        ));
        out.push_str(&format!(
            "  steps/s      {}steps/s\n",
            human_rate(self.steps_per_s)
        ));
        out.push_str(&format!(
            "  scenarios/s  {}scenarios/s\n",
            human_rate(self.scenarios_per_s)
        ));
        if let (Some(c), Some(used)) = (self.cpu_s, self.cores_used()) {
            out.push_str(&format!(
                "  CPU time     {c:.2} s ({used:.2} cores used of {} thread(s))\n",
                self.jobs
            ));
        }
        if let Some(b) = self.peak_rss_bytes {
            out.push_str(&format!(
                "  peak RSS     {:.1} MiB (whole process)\n",
                b as f64 / 1048576.0
            ));
        }
        // Rows name the cassette too: one scenario may replay several (one row each).
        let file = |s: &ScenarioTiming| s.cassette.rsplit('/').next().unwrap_or("").to_string();
        let w = self
            .per_scenario
            .iter()
            .map(|s| s.scenario.chars().count())
            .max()
            .unwrap_or(8)
            .max(8);
        let cw = self
            .per_scenario
            .iter()
            .map(|s| file(s).chars().count())
            .max()
            .unwrap_or(8)
            .max(8);
        out.push_str(&format!(
            "\n{:<w$}  {:<cw$}  {:>8}  {:>6}  {:>11}  {:>11}  {:>11}\n",
            "scenario", "cassette", "events", "steps", "median µs", "min µs", "max µs"
        ));
        for s in &self.per_scenario {
            out.push_str(&format!(
                "{:<w$}  {:<cw$}  {:>8}  {:>6}  {:>11.1}  {:>11.1}  {:>11.1}\n",
                s.scenario,
                file(s),
                s.events,
                s.steps,
                s.median_us,
                s.min_us,
                s.max_us
            ));
        }
        out
    }
}

/// Write a copy of the cassette at `src` to `dst` with its interactions (and `tool` lines)
/// repeated `factor` times, ids renumbered so they stay unique, and a fresh, valid footer:
/// a `factor`× larger cassette with the same content, for scaling runs. Returns the size of
/// the new file in bytes.
pub fn scale_cassette(
    src: &std::path::Path,
    factor: u32,
    dst: &std::path::Path,
) -> std::io::Result<u64> {
    use crate::cassette::footer::{ContentHasher, FooterHash, HashPlan};
    use std::io::Write;

    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let text = std::fs::read_to_string(src)?;
    let mut header: Option<&str> = None;
    let mut body: Vec<serde_json::Value> = Vec::new();
    let mut footer_redacted: Option<serde_json::Value> = None;
    let mut max_id = 0u64;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if header.is_none() {
            header = Some(line);
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| invalid(format!("{}:{}: {e}", src.display(), n + 1)))?;
        match v.get("kind").and_then(|k| k.as_str()) {
            Some("footer") => footer_redacted = v.get("redacted").cloned(),
            _ => {
                if let Some(id) = v.get("id").and_then(|i| i.as_u64()) {
                    max_id = max_id.max(id);
                }
                body.push(v);
            }
        }
    }
    let header = header.ok_or_else(|| invalid(format!("{}: empty cassette", src.display())))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dst)?);
    let mut hasher = ContentHasher::new(HashPlan::Blake3);
    let mut lines = 0u64;
    let mut interactions = 0u64;
    let mut emit =
        |line: &str, out: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
            lines += 1;
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")
        };
    emit(header, &mut out)?;
    for k in 0..u64::from(factor.max(1)) {
        for v in &body {
            let mut v = v.clone();
            if let Some(id) = v.get("id").and_then(|i| i.as_u64()) {
                v["id"] = (id + k * max_id).into();
            }
            if v.get("kind").and_then(|k| k.as_str()) == Some("request") {
                interactions += 1;
            }
            emit(&v.to_string(), &mut out)?;
        }
    }
    let mut footer = serde_json::json!({
        "kind": "footer",
        "interactions": interactions,
        "lines": lines,
        "blake3": hasher.hex(FooterHash::Blake3),
    });
    if let Some(r) = footer_redacted {
        footer["redacted"] = r;
    }
    let footer = footer.to_string();
    out.write_all(footer.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(out.get_ref().metadata()?.len())
}
