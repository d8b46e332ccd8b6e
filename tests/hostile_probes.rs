//! The hostile-input probes behind docs/RELIABILITY.md's figures, run small in the normal
//! suite against this build's binary, so each promise they measure is also held by a test:
//! 0 panics, signals or hangs from mutated inputs (and `check` refusing whatever `run` refuses),
//! 0 planted secrets on disk, 0 events lost to a SIGKILL mid-record. The scripts need only
//! Python's standard library; without a `python3` they skip loudly (and fail when `CI` is set).

use std::process::Command;

fn probe(script: &str, args: &[&str]) {
    let python = std::env::var_os("TAPELOOP_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    let path = format!("{}/tools/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = match Command::new(&python)
        .arg(&path)
        .args(["--bin", env!("CARGO_BIN_EXE_tapeloop"), "--seed", "11"])
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED {script}: cannot run {python:?} ({e})");
            return;
        }
        Err(e) => panic!("CI is set but {python:?} cannot run: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "{script} found a broken promise:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mutated_inputs_never_panic_hang_or_split_check_from_run() {
    probe("hostile_probe.py", &["--per-kind", "25", "--timeout", "60"]);
}

#[test]
fn planted_secrets_never_reach_disk() {
    probe("secret_probe.py", &["--rounds", "2"]);
}

#[test]
fn a_sigkill_mid_record_loses_at_most_the_line_being_written() {
    probe("sigkill_probe.py", &["--kills", "3"]);
}
