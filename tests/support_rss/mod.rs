//! Peak resident memory of a child process, measured by `wait4` for exactly that child (not
//! the test process, not other children): what the memory-bound tests assert on.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

/// Wait for `child` to exit; its exit code and peak RSS in KiB. A child killed by a signal
/// fails the test (a crash, not an error). `child` is reaped here: do not wait for it again.
pub fn wait_measured(child: &mut Child) -> (i32, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `rusage` is a plain C struct zeroed first.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status),
        "the child died from a signal (status {status}): a crash, not an error"
    );
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Run `cmd` to completion with its output discarded; its exit code and peak RSS in KiB.
pub fn run_measured(mut cmd: Command) -> (i32, i64) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let measured = wait_measured(&mut child);
    std::mem::forget(child); // already reaped
    measured
}
