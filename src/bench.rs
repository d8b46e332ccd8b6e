//! `tapeloop bench`: replay scenarios in-process repeatedly and measure the replay path —
//! cassette bytes in, scored record out — in events/s, steps/s and scenarios/s, with the
//! per-scenario latency and the process's peak memory.
//!
//! Cassettes are read from disk on every iteration (as `tapeloop run` does), so the figures
//! include parsing. Wall-clock figures depend on the machine; compare ratios measured in one
//! run (see `docs/PERFORMANCE.md`).

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
    pub scenarios: usize,
    /// Cassette bytes read over all timed iterations.
    pub total_bytes: u64,
    pub total_events: u64,
    pub total_steps: u64,
    pub elapsed_s: f64,
    pub bytes_per_s: f64,
    pub events_per_s: f64,
    pub steps_per_s: f64,
    pub scenarios_per_s: f64,
    /// Peak resident set size of this process in bytes, when the OS tells.
    pub peak_rss_bytes: Option<u64>,
    pub per_scenario: Vec<ScenarioTiming>,
}

/// Replay every job `iterations` times (single-threaded, so figures are per core).
pub fn run(
    jobs: &[Job],
    opts: &RunOptions,
    iterations: u32,
    on_iteration: &dyn Fn(u32),
) -> Result<BenchReport, crate::runner::RunError> {
    let iterations = iterations.max(1);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations as usize); jobs.len()];
    let mut counts = vec![(0u64, 0u64); jobs.len()];
    // One warm-up pass, also validating every job.
    for (i, job) in jobs.iter().enumerate() {
        let (rec, events) = crate::runner::replay_job_counted(job, opts)?;
        counts[i] = (events, u64::from(rec.steps));
    }
    let sizes: Vec<u64> = jobs
        .iter()
        .map(|j| std::fs::metadata(&j.cassette).map_or(0, |m| m.len()))
        .collect();
    let started = Instant::now();
    for it in 0..iterations {
        for (i, job) in jobs.iter().enumerate() {
            let t = Instant::now();
            let r = crate::runner::replay_job_counted(job, opts)?;
            samples[i].push(t.elapsed());
            std::hint::black_box(r);
        }
        on_iteration(it + 1);
    }
    let elapsed = started.elapsed().as_secs_f64();
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
        scenarios: jobs.len(),
        total_bytes,
        total_events,
        total_steps,
        elapsed_s: elapsed,
        bytes_per_s: per_s(total_bytes as f64),
        events_per_s: per_s(total_events as f64),
        steps_per_s: per_s(total_steps as f64),
        scenarios_per_s: per_s(jobs.len() as f64 * iterations as f64),
        peak_rss_bytes: peak_rss_bytes(),
        per_scenario,
    })
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

impl BenchReport {
    /// A readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} scenario(s) x {} iteration(s) in {:.3} s (single thread)\n",
            self.scenarios, self.iterations, self.elapsed_s
        ));
        out.push_str(&format!(
            "  bytes/s      {}B/s (cassette bytes, parsing included)\n",
            human_rate(self.bytes_per_s)
        ));
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
        if let Some(b) = self.peak_rss_bytes {
            out.push_str(&format!("  peak RSS     {:.1} MiB\n", b as f64 / 1048576.0));
        }
        let w = self
            .per_scenario
            .iter()
            .map(|s| s.scenario.len())
            .max()
            .unwrap_or(8)
            .max(8);
        out.push_str(&format!(
            "\n{:<w$}  {:>8}  {:>6}  {:>11}  {:>11}  {:>11}\n",
            "scenario", "events", "steps", "median µs", "min µs", "max µs"
        ));
        for s in &self.per_scenario {
            out.push_str(&format!(
                "{:<w$}  {:>8}  {:>6}  {:>11.1}  {:>11.1}  {:>11.1}\n",
                s.scenario, s.events, s.steps, s.median_us, s.min_us, s.max_us
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
    use sha2::{Digest, Sha256};
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
    let mut hasher = Sha256::new();
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
        "sha256": hex::encode(hasher.finalize()),
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
