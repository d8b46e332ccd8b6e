//! The Python interpreter the tests drive real clients and tools with: `TAPELOOP_TEST_PYTHON`
//! (`.ci/run` exports a venv with `tests/python/requirements.txt` and `./python` installed).
//! Unset, a test skips and says so; unset while `CI` is set is a failure, because CI must run
//! every such test.
#![allow(dead_code)]

use std::path::PathBuf;

/// The interpreter, or `None` after printing that `what` is skipped (a panic under `CI`).
pub fn python(what: &str) -> Option<PathBuf> {
    match std::env::var_os("TAPELOOP_TEST_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but TAPELOOP_TEST_PYTHON is not ({what}): .ci/run must export it"
            );
            eprintln!(
                "SKIPPED: {what} needs TAPELOOP_TEST_PYTHON, a Python with tests/python/requirements.txt and ./python installed"
            );
            None
        }
    }
}
