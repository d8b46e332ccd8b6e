//! `tapeloop bench --format json`: the report's fields are present and consistent. No timing
//! assertions: speed belongs in `benches/`, not in tests.

use std::process::Command;

use serde_json::Value;

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/doom-cycle.toml");

fn bench(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["bench", SCENARIO, "--iterations", "2", "--format", "json"])
        .args(extra)
        .env("CI", "1")
        .output()
        .unwrap();
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

#[test]
fn json_report_has_rates_latency_and_memory() {
    let r = bench(&[]);
    assert_eq!(r["iterations"], 2);
    assert_eq!(r["scenarios"], 1);
    for key in [
        "elapsed_s",
        "bytes_per_s",
        "events_per_s",
        "steps_per_s",
        "scenarios_per_s",
    ] {
        assert!(num(&r, key) > 0.0, "{key} > 0 in {r}");
    }
    let per = r["per_scenario"].as_array().expect("per_scenario array");
    assert_eq!(per.len(), 1);
    let s = &per[0];
    assert_eq!(s["scenario"], "doom-cycle");
    assert!(s["cassette"]
        .as_str()
        .unwrap()
        .ends_with("doom-cycle.openai-chat.jsonl"));
    let (min, median, max) = (num(s, "min_us"), num(s, "median_us"), num(s, "max_us"));
    assert!(min > 0.0 && min <= median && median <= max, "{s}");
    // The scenario stops at step 6 (see scenarios/doom-cycle.toml).
    assert_eq!(s["steps"], 6);
    let events = num(s, "events");
    assert!(events > 0.0);
    let bytes = std::fs::metadata(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/recordings/doom-cycle.openai-chat.jsonl"
    ))
    .unwrap()
    .len();
    assert_eq!(s["bytes"], bytes);
    // Totals are the per-scenario counts times the iterations.
    assert_eq!(num(&r, "total_events"), events * 2.0);
    assert_eq!(num(&r, "total_steps"), 12.0);
    assert_eq!(num(&r, "total_bytes"), bytes as f64 * 2.0);
    if cfg!(target_os = "linux") {
        assert!(num(&r, "peak_rss_bytes") > 0.0, "{r}");
    } else {
        assert!(r.get("peak_rss_bytes").is_some());
    }
}

#[test]
fn cassette_scale_replays_larger_copies_and_cleans_up() {
    let one = bench(&[]);
    let ten = bench(&["--cassette-scale", "10"]);
    let s1 = &one["per_scenario"][0];
    let s10 = &ten["per_scenario"][0];
    // Ten copies of the interactions plus the header and one footer.
    let b1 = num(s1, "bytes");
    let b10 = num(s10, "bytes");
    assert!(b10 > 9.0 * b1 && b10 < 11.0 * b1, "{b1} -> {b10}");
    // The scenario replays the same steps: it stops on its own policy, not on cassette size.
    assert_eq!(s10["steps"], s1["steps"]);
    // So bytes/s is not comparable across scales, and the report says at which it ran.
    assert_eq!(
        (&one["cassette_scale"], &ten["cassette_scale"]),
        (&1.into(), &10.into())
    );
    let table = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["bench", SCENARIO, "-n", "1", "--cassette-scale", "3"])
        .env("CI", "1")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("at --cassette-scale 3:")
            && table.contains("compare bytes/s only at the same scale"),
        "{table}"
    );
    assert!(!String::from_utf8_lossy(
        &Command::new(env!("CARGO_BIN_EXE_tapeloop"))
            .args(["bench", SCENARIO, "-n", "1"])
            .env("CI", "1")
            .output()
            .unwrap()
            .stdout
    )
    .contains("--cassette-scale"));
    let dir = std::env::temp_dir();
    let cassette = s10["cassette"].as_str().unwrap();
    assert!(
        !std::path::Path::new(cassette).exists()
            && !dir.join(cassette).exists()
            && cassette.contains("tapeloop-bench-"),
        "the scaled copy is removed: {cassette}"
    );
}

/// The Python reference that `benches/reference/compare.sh` divides by: it must read exactly
/// the bytes `tapeloop bench` reports for the same cassettes, and with `--verify-footer` it
/// must do the same integrity check (a modified cassette fails). The bundled cassettes' footer
/// hash is BLAKE3, which needs PyPI's `blake3` package (in CI's `TAPELOOP_TEST_PYTHON` venv, from
/// tests/python/requirements.txt); outside CI a `python3` without it skips the check.
#[test]
fn python_reference_reads_the_same_bytes_and_checks_footers_when_asked() {
    let python = std::env::var_os("TAPELOOP_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/reference/seed_processor.py"
    );
    let r = bench(&[]);
    let cassette = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        r["per_scenario"][0]["cassette"]
            .as_str()
            .expect("cassette path"),
    );
    let run = |path: &std::path::Path, verify: bool| {
        let mut cmd = Command::new(&python);
        cmd.args([script, "--iterations", "1"]);
        if verify {
            cmd.arg("--verify-footer");
        }
        cmd.arg(path).output()
    };
    let out = match run(&cassette, true) {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("note: no python3 ({e}); skipping the Python reference check");
            return;
        }
        Err(e) => panic!("CI is set but python3 cannot run: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("needs PyPI's blake3 package") && std::env::var_os("CI").is_none() {
        eprintln!("note: {python:?} has no blake3 package; skipping the Python reference check");
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["bytes"], r["per_scenario"][0]["bytes"]);
    assert_eq!(p["verify_footer"], true);
    assert!(num(&p, "sse_events_per_s") > 0.0);

    // One changed byte in a chunk: the footer check fails, the plain reference does not care.
    let text = std::fs::read_to_string(&cassette).unwrap();
    let tampered = text.replacen(r#""kind":"chunk","#, r#""kind":"chunk", "#, 1);
    assert_ne!(tampered, text);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tampered.jsonl");
    std::fs::write(&copy, tampered).unwrap();
    let bad = run(&copy, true).unwrap();
    assert!(
        !bad.status.success(),
        "a modified cassette passed the footer check"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("footer blake3 does not match"));
    assert!(run(&copy, false).unwrap().status.success());
}

#[test]
fn table_rows_name_the_cassette() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/call-with-tools.toml"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["bench", scenario, "--iterations", "1"])
        .env("CI", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().find(|l| l.starts_with("scenario")).unwrap();
    assert!(header.contains("cassette"), "{text}");
    // Four rows of one scenario, each told apart by its cassette.
    for api in ["anthropic", "gemini", "openai-chat", "openai-responses"] {
        let file = format!("call-with-tools.{api}.jsonl");
        assert!(
            text.lines()
                .any(|l| l.starts_with("call-with-tools ") && l.contains(&file)),
            "no row for {file}:\n{text}"
        );
    }
}
