//! `tapeloop bench --jobs N` and `--scaling`: more threads do the same work, the report says how
//! many threads ran, and bad counts are rejected. No timing assertions beyond structural ones
//! (speed-up of the 1-job row, efficiency = speed-up / jobs): speed belongs in `benches/`.

use std::process::{Command, Output};

use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

fn scenarios() -> [String; 2] {
    [
        format!("{DIR}/doom-cycle.toml"),
        format!("{DIR}/call-with-tools.toml"),
    ]
}

fn tapeloop(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .arg("bench")
        .args(scenarios())
        .args(["--iterations", "3", "--repeat", "2"])
        .args(extra)
        .env("CI", "1")
        .output()
        .unwrap()
}

fn bench_json(extra: &[&str]) -> Value {
    let out = tapeloop(&[extra, &["--format", "json"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u64
}

/// The work counted in a report: everything except timing and memory.
fn work(r: &Value) -> Value {
    let per: Vec<Value> = r["per_scenario"]
        .as_array()
        .expect("per_scenario array")
        .iter()
        .map(|s| {
            serde_json::json!([
                s["scenario"],
                s["cassette"],
                s["bytes"],
                s["events"],
                s["steps"]
            ])
        })
        .collect();
    serde_json::json!({
        "iterations": r["iterations"],
        "scenarios": r["scenarios"],
        "total_bytes": r["total_bytes"],
        "total_events": r["total_events"],
        "total_steps": r["total_steps"],
        "per_scenario": per,
    })
}

#[test]
fn two_jobs_do_the_same_work_as_one() {
    let default = bench_json(&[]);
    let one = bench_json(&["--jobs", "1"]);
    let two = bench_json(&["-j", "2"]);
    assert_eq!(default["jobs"], 1, "one thread by default: {default}");
    assert_eq!(one["jobs"], 1);
    assert_eq!(two["jobs"], 2);
    // Two scenarios (one job per cassette), repeated twice.
    let jobs = one["per_scenario"].as_array().unwrap().len();
    assert!(jobs >= 4 && jobs % 2 == 0, "{one}");
    assert_eq!(one["scenarios"], jobs);
    assert!(num(&one, "total_events") > 0.0);
    assert_eq!(work(&two), work(&one));
    assert_eq!(work(&default), work(&one));
    for r in [&one, &two] {
        for key in ["elapsed_s", "events_per_s", "scenarios_per_s"] {
            assert!(num(r, key) > 0.0, "{key} > 0 in {r}");
        }
        if cfg!(target_os = "linux") {
            assert!(num(r, "cpu_s") >= 0.0, "{r}");
        }
        for s in r["per_scenario"].as_array().unwrap() {
            let (min, median, max) = (num(s, "min_us"), num(s, "median_us"), num(s, "max_us"));
            assert!(min > 0.0 && min <= median && median <= max, "{s}");
        }
    }
}

#[test]
fn jobs_zero_means_one_per_core() {
    let r = bench_json(&["--jobs", "0"]);
    // Never more threads than replays: jobs x 3 iterations.
    let replays = r["scenarios"].as_u64().unwrap() * 3;
    assert_eq!(r["jobs"], cores().min(replays), "{r}");
}

#[test]
fn table_says_how_many_threads() {
    let out = tapeloop(&["--jobs", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().next().unwrap().contains("(2 threads"),
        "{table}"
    );
    let out = tapeloop(&[]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().next().unwrap().contains("(1 thread"),
        "{table}"
    );
}

fn check_rows(r: &Value) -> Vec<u64> {
    let rows = r["rows"].as_array().expect("rows array");
    assert_eq!(rows[0]["jobs"], 1, "{r}");
    assert_eq!(rows[0]["speedup"].as_f64(), Some(1.0), "{r}");
    assert_eq!(rows[0]["efficiency"].as_f64(), Some(1.0), "{r}");
    for row in rows {
        let jobs = num(row, "jobs");
        let (speedup, efficiency) = (num(row, "speedup"), num(row, "efficiency"));
        assert!(speedup > 0.0 && num(row, "scenarios_per_s") > 0.0, "{row}");
        assert!((efficiency - speedup / jobs).abs() < 1e-9, "{row}");
        // CPU time over wall time, absent for rows too short to tell (timing-dependent).
        assert!(row.get("cores_used").is_some(), "{row}");
    }
    rows.iter()
        .map(|row| row["jobs"].as_u64().unwrap())
        .collect()
}

#[test]
fn scaling_goes_from_one_job_to_the_core_count() {
    let r = bench_json(&["--scaling"]);
    assert_eq!(r["cores"], cores(), "{r}");
    assert_eq!(r["iterations"], 3);
    let jobs = check_rows(&r);
    let replays = r["scenarios"].as_u64().unwrap() * 3;
    assert_eq!(*jobs.last().unwrap(), cores().min(replays), "{r}");
    assert!(jobs.windows(2).all(|w| w[0] < w[1]), "{jobs:?}");
    if cfg!(target_os = "linux") {
        assert!(num(&r, "peak_rss_bytes") > 0.0, "{r}");
    }
}

#[test]
fn scaling_rounds_are_reported_and_need_scaling() {
    let r = bench_json(&["--scaling", "--jobs", "2", "--rounds", "2"]);
    assert_eq!(r["rounds"], 2, "{r}");
    assert_eq!(check_rows(&r), [1, 2]);
    assert_eq!(bench_json(&["--scaling", "--jobs", "2"])["rounds"], 3);
    // Without --scaling, or out of range, --rounds is a usage error.
    for args in [&["--rounds", "2"][..], &["--scaling", "--rounds", "0"][..]] {
        let out = tapeloop(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--rounds"), "{args:?}: {stderr}");
    }
}

#[test]
fn scaling_stops_at_jobs_when_given() {
    let r = bench_json(&["--scaling", "--jobs", "3"]);
    assert_eq!(check_rows(&r), [1, 2, 3]);
    let out = tapeloop(&["--scaling", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("speed-up") && table.contains("efficiency"),
        "{table}"
    );
}

#[test]
fn bad_jobs_is_a_usage_error() {
    for bad in ["abc", "-1", "1.5", "", "100000"] {
        let out = tapeloop(&["--jobs", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--jobs {bad:?}: {stderr}");
        assert!(
            stderr.contains("--jobs") && stderr.contains("worker threads"),
            "--jobs {bad:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "--jobs {bad:?}: nothing measured");
    }
}
