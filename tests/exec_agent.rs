//! `tapeloop exec` against a real agent: examples/agents/loop_agent.py, a tool-calling loop on
//! the official `openai` SDK, run over the bundled openai-chat scenarios. Each verdict is
//! asserted from the JSON report: it completes, it stops a sequential doom loop only when its
//! check is on, it retries a 429 after the (scaled) `retry-after` — and the same agent told to
//! ignore `retry-after` is caught by the `retry_after = "honoured"` expectation.
//!
//! Needs `TAPELOOP_TEST_PYTHON` (a Python with `openai`; .ci/run makes one): skipped with a
//! note when unset, failing when `CI` is set.

mod support_python;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<PathBuf> {
    support_python::python("the exec agent tests")
}

/// Run `tapeloop exec` with the example agent; returns the exit code and the JSON report.
fn exec(scenario: &Path, extra: &[&str], agent_args: &[&str], python: &Path) -> (i32, Value) {
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapeloop"));
    cmd.current_dir(repo())
        .arg("exec")
        .arg(scenario)
        .args(["--format", "json", "--out"])
        .arg(&report)
        .args(extra)
        .arg("--")
        .arg(python)
        .args([
            "examples/agents/loop_agent.py",
            "--scenario",
            "{scenario}",
            "--model",
            "{model}",
        ])
        .args(agent_args);
    let out = cmd.output().expect("run tapeloop exec");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&text).unwrap(),
    )
}

fn the_run(report: &Value) -> &Value {
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{report:#}");
    &runs[0]
}

#[test]
fn the_example_agent_completes_a_tool_calling_task() {
    let Some(py) = python() else { return };
    let (code, report) = exec(
        &repo().join("scenarios/call-with-tools.toml"),
        &["--api", "openai-chat"],
        &[],
        &py,
    );
    let run = the_run(&report);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["finish"], "completed");
    assert_eq!(run["steps"], 2);
    assert_eq!(run["tool_calls"], 2);
    assert_eq!(run["tokens"]["input"], 224);
    assert_eq!(run["agent"]["exit_code"], 0);
    assert_eq!(run["passed"], true);
}

#[test]
fn it_stops_a_sequential_doom_loop_only_when_its_check_is_on() {
    let Some(py) = python() else { return };
    let sc = repo().join("scenarios/polling-job-status-consecutive.toml");
    let (_, on) = exec(&sc, &[], &["--doom-check", "3"], &py);
    let run = the_run(&on);
    assert_eq!(run["finish"], "doom-loop", "{run:#}");
    assert_eq!(run["doom_loop"]["step"], 3);
    assert_eq!(run["doom_loop"]["tool"], "check_job");
    assert_eq!(run["doom_loop"]["stopped"], true);
    assert_eq!(run["agent"]["exit_code"], 3);

    let (_, off) = exec(&sc, &[], &["--doom-check", "off"], &py);
    let run = the_run(&off);
    assert_ne!(run["finish"], "doom-loop", "{run:#}");
    // The detector still fires on what the agent was served, but the agent went on.
    assert_eq!(run["doom_loop"]["step"], 3);
    assert_eq!(run["doom_loop"]["stopped"], false);
    assert!(run["steps"].as_u64().unwrap() > 3);
    assert_eq!(run["agent"]["exit_code"], 0);
}

#[test]
fn it_retries_a_429_after_the_scaled_retry_after() {
    let Some(py) = python() else { return };
    let (code, report) = exec(
        &repo().join("scenarios/retry-429-retry-after.toml"),
        &["--retry-after-scale", "0.01"],
        &[],
        &py,
    );
    let run = the_run(&report);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["finish"], "completed");
    let retry = &run["retries"][0];
    assert_eq!(retry["status"], 429);
    assert_eq!(retry["recorded_ms"], 7000);
    assert_eq!(retry["served_ms"], 70);
    assert!(retry["waited_ms"].as_u64().unwrap() + 1 >= 70, "{retry:#}");
}

/// A copy of a bundled scenario in `dir`, with its cassettes as absolute paths (only those
/// of `api`) and `edit` applied to the document.
fn scenario_copy(
    dir: &Path,
    name: &str,
    api: &str,
    edit: impl FnOnce(&mut toml_edit::DocumentMut),
) -> PathBuf {
    let src = repo().join("scenarios").join(format!("{name}.toml"));
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&src).unwrap().parse().unwrap();
    let mut cassettes = toml_edit::Array::new();
    for c in doc["cassettes"].as_array().unwrap().iter() {
        let c = c.as_str().unwrap();
        if c.contains(&format!(".{api}.")) {
            let abs = repo().join("scenarios").join(c);
            cassettes.push(std::fs::canonicalize(abs).unwrap().display().to_string());
        }
    }
    doc["cassettes"] = toml_edit::value(cassettes);
    edit(&mut doc);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// The retry-429 scenario that also expects `retry_after = "honoured"`.
fn honoured_scenario(dir: &Path) -> PathBuf {
    scenario_copy(dir, "retry-429-retry-after", "openai-chat", |doc| {
        doc["expect"]["retry_after"] = toml_edit::value("honoured");
    })
}

#[test]
fn an_agent_that_ignores_retry_after_fails_the_expectation() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sc = honoured_scenario(dir.path());
    let (good_code, good) = exec(&sc, &["--retry-after-scale", "0.1"], &[], &py);
    assert_eq!(good_code, 0, "{good:#}");
    assert_eq!(the_run(&good)["passed"], true);

    let (code, bad) = exec(
        &sc,
        &["--retry-after-scale", "0.1"],
        &["--retry-after", "ignore"],
        &py,
    );
    let run = the_run(&bad);
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(run["passed"], false);
    let failures: Vec<&str> = run["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        failures.iter().any(|f| f.starts_with("retry_after:")),
        "{failures:?}"
    );
}

#[test]
fn a_scenario_can_name_its_agent_and_sim_ms_is_not_observable() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let agent = repo().join("examples/agents/loop_agent.py");
    let sc = scenario_copy(dir.path(), "call-with-tools", "openai-chat", |doc| {
        doc["expect"]["sim_ms"] = toml_edit::value(1);
        let mut command = toml_edit::Array::new();
        for a in [
            py.display().to_string(),
            agent.display().to_string(),
            "--scenario".into(),
            "{scenario}".into(),
            "--model".into(),
            "{model}".into(),
        ] {
            command.push(a);
        }
        let mut t = toml_edit::Table::new();
        t["command"] = toml_edit::value(command);
        t["timeout"] = toml_edit::value("60s");
        let mut codes = toml_edit::Array::new();
        codes.push(3);
        t["stop_exit_codes"] = toml_edit::value(codes);
        doc["agent"] = toml_edit::Item::Table(t);
    });
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .current_dir(repo())
        .arg("exec")
        .arg(&sc)
        .args(["--format", "json", "--out"])
        .arg(&report)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let report: Value = serde_json::from_str(&text).unwrap();
    let run = the_run(&report);
    assert_eq!(out.status.code(), Some(0), "{run:#}");
    assert_eq!(run["finish"], "completed");
    assert_eq!(run["not_observable"], serde_json::json!(["sim_ms"]));
    assert!(run["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("`sim_ms` is not observable")));
}

#[test]
fn without_an_agent_exec_says_how_to_give_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .current_dir(repo())
        .args(["exec", "scenarios/call-with-tools.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no agent to run"), "{err}");
    assert!(err.contains("-- COMMAND"), "{err}");
}
