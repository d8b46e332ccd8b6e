//! The pytest plugin (python/, `pip install ./python`) in a real pytest run: its fixture
//! serves recordings to the official `openai` SDK, and strict teardown fails a test whose
//! recording was not consumed.
//!
//! Needs `TAPELOOP_TEST_PYTHON` with `pytest`, `openai` and the plugin installed (.ci/run
//! installs them): skipped with a note when unset, failing when `CI` is set.

mod support_python;

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<PathBuf> {
    let ci = std::env::var_os("CI").is_some();
    let py = support_python::python("the pytest plugin test")?;
    let ok = Command::new(&py)
        .args(["-c", "import pytest, openai, tapeloop_pytest"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !ci,
            "CI's Python must have pytest, openai and ./python installed"
        );
        eprintln!("SKIPPED: {py:?} lacks pytest, openai or tapeloop_pytest (pip install pytest openai ./python)");
        return None;
    }
    Some(py)
}

fn pytest(py: &PathBuf, target: &str) -> Output {
    Command::new(py)
        .current_dir(repo())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", target])
        .env("TAPELOOP_BIN", env!("CARGO_BIN_EXE_tapeloop"))
        .output()
        .expect("run pytest")
}

#[test]
fn the_fixture_serves_recordings_to_the_openai_sdk() {
    let Some(py) = python() else { return };
    let out = pytest(&py, "python/tests/test_tapeloop_serve.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 passed"), "{text}");
}

#[test]
fn strict_teardown_fails_a_test_that_left_interactions_unused() {
    let Some(py) = python() else { return };
    let out = pytest(&py, "python/tests/strict_unused_case.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("were recorded but never requested"), "{text}");
    assert!(text.contains("2 passed, 1 error"), "{text}");
}
