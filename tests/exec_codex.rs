//! The real OpenAI Codex CLI (npm `@openai/codex`) under `tapeloop exec --agent codex`, offline
//! against the in-process replay server's Responses API: it completes a tool-calling task.
//!
//! Opt-in: `TAPELOOP_TEST_CODEX=/path/to/codex` (.ci/run installs it and sets it); the test says
//! loudly when it skips.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn codex_completes_a_tool_calling_task_against_the_replay_server() {
    let bin = match std::env::var("TAPELOOP_TEST_CODEX") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!(
                "SKIPPED: the Codex CLI test needs TAPELOOP_TEST_CODEX=/path/to/codex \
                 (npm install @openai/codex; .ci/run does it)"
            );
            return;
        }
    };
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("codex.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .current_dir(&repo)
        .env("TAPELOOP_CODEX", &bin)
        .args([
            "exec",
            "--agent",
            "codex",
            "scenarios/call-with-tools.toml",
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
    // Only the Responses cassette runs: the codex profile speaks that API.
    assert_eq!(runs.len(), 1, "{report:#}");
    let run = &runs[0];
    assert_eq!(run["api"], "openai-responses");
    assert_eq!(
        run["finish"], "completed",
        "{run:#}\ncodex stderr: {}",
        run["agent"]["stderr_tail"]
    );
    assert_eq!(run["steps"], 2);
    assert_eq!(run["tool_calls"], 2);
    assert_eq!(run["passed"], true, "{:#}", run["failures"]);
    assert_eq!(out.status.code(), Some(0));
}
