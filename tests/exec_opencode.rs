//! The real opencode (npm `opencode-ai@1.18.33`) under `tapeloop exec --agent opencode
//! --vs-processor`, offline against the in-process replay server: its verdicts, and its
//! agreement with the built-in processor on scenarios docs/FIDELITY.md lists as agreeing.
//!
//! Opt-in: `TAPELOOP_TEST_OPENCODE=/path/to/opencode` (.ci/run installs it and sets it); the
//! test says loudly when it skips. Bounded: a handful of scenarios, 4–8 s of opencode each.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn opencode() -> Option<String> {
    match std::env::var("TAPELOOP_TEST_OPENCODE") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "SKIPPED: the real-opencode fidelity test needs TAPELOOP_TEST_OPENCODE=/path/to/opencode \
                 (npm install opencode-ai@1.18.33; .ci/run does it)"
            );
            None
        }
    }
}

#[test]
fn opencode_agrees_with_the_processor_where_the_fidelity_table_says_so() {
    let Some(bin) = opencode() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("opencode.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .current_dir(repo())
        .env("TAPELOOP_OPENCODE", &bin)
        .args([
            "exec",
            "--agent",
            "opencode",
            "--vs-processor",
            "--retry-after-scale",
            "0.01",
            "scenarios/call-with-tools.toml",
            "scenarios/retry-429-retry-after.toml",
            "scenarios/finish-length.toml",
            "--format",
            "json",
            "--out",
        ])
        .arg(&report)
        .output()
        .expect("run tapeloop exec");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report: Value = serde_json::from_str(&text).unwrap();
    let runs = report["runs"].as_array().unwrap();
    // Only the openai-chat cassettes run: opencode's profile speaks that API.
    assert_eq!(runs.len(), 3, "{report:#}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped: call-with-tools"), "{stderr}");
    for run in runs {
        let name = run["scenario"].as_str().unwrap();
        let agent = &run["agent"];
        assert_eq!(agent["timed_out"], false, "{name}: {run:#}");
        let fidelity = &run["fidelity"];
        assert_eq!(
            fidelity["agree"], true,
            "{name}: opencode and the processor disagree: {:#}\nopencode stderr: {}",
            fidelity["fields"], agent["stderr_tail"]
        );
        assert_eq!(run["passed"], true, "{name}: {:#}", run["failures"]);
    }
    let retry = runs
        .iter()
        .find(|r| r["scenario"] == "retry-429-retry-after")
        .unwrap();
    // opencode honoured the served (scaled) retry-after.
    let r = &retry["retries"][0];
    assert_eq!(r["served_ms"], 70);
    assert!(r["waited_ms"].as_u64().unwrap() + 1 >= 70, "{r:#}");
}
