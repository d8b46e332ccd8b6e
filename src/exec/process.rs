//! Running the agent's process: a fresh working directory with its files, the setup commands,
//! the environment its clients already read (pointed at the replay server, with dummy keys),
//! a timeout that stops the whole process group, and the tails of its output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::agent::{Agent, Placeholders};
use super::observe::AgentRun;

/// Bytes of stdout/stderr kept for the report.
pub const TAIL_BYTES: usize = 4096;

/// The variables every agent gets (after its own `env`, which wins): the base URLs and dummy
/// keys the official clients read.
pub fn client_env(p: &Placeholders) -> Vec<(&'static str, String)> {
    let base = p.values["base_url"].clone();
    let openai = p.values["openai_base_url"].clone();
    vec![
        ("TAPELOOP_BASE_URL", base.clone()),
        ("OPENAI_BASE_URL", openai),
        ("OPENAI_API_KEY", "sk-tapeloop-exec".into()),
        ("ANTHROPIC_BASE_URL", base.clone()),
        ("ANTHROPIC_API_KEY", "sk-ant-tapeloop-exec".into()),
        ("GOOGLE_GEMINI_BASE_URL", base),
        ("GEMINI_API_KEY", "tapeloop-exec".into()),
    ]
}

/// Write the agent's files and run its setup in `workdir`.
pub fn prepare(agent: &Agent, p: &Placeholders, workdir: &Path) -> Result<(), String> {
    for (rel, content) in &agent.files {
        let path = workdir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, p.expand(content)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for cmd in &agent.setup {
        let Some((program, args)) = cmd.split_first() else {
            continue;
        };
        let out = Command::new(program)
            .args(args.iter().map(|a| p.expand_arg(a)))
            .current_dir(workdir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("setup `{}`: {e}", cmd.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "setup `{}` failed ({}): {}",
                cmd.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// Run the agent to its end or its timeout (then its whole process group is killed).
/// `Err` when it could not be started at all.
pub fn run(agent: &Agent, p: &Placeholders, workdir: &Path) -> Result<AgentRun, String> {
    let Some((program, args)) = agent.command.split_first() else {
        return Err("the agent command is empty".into());
    };
    let program = anchored(&p.expand(program));
    let out_path = workdir.join(".tapeloop-stdout");
    let err_path = workdir.join(".tapeloop-stderr");
    let stdout = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let stderr = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&program);
    cmd.args(args.iter().map(|a| anchored(&p.expand_arg(a))))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    for (k, v) in client_env(p) {
        cmd.env(k, v);
    }
    for (k, v) in &agent.env {
        cmd.env(k, p.expand(v));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start `{program}`: {e}"))?;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= agent.timeout => {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    Ok(AgentRun {
        exit_code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        timed_out,
        wall_ms,
        stdout_tail: tail(&out_path),
        stderr_tail: tail(&err_path),
    })
}

/// The agent runs in its own working directory: an argument naming an existing file or
/// directory relative to where tapeloop was started (`examples/agents/x.py`, `./my-agent`) is
/// made absolute so it still names it there.
fn anchored(arg: &str) -> String {
    let path = Path::new(arg);
    if arg.is_empty() || path.is_absolute() || arg.starts_with('-') || !path.exists() {
        return arg.to_string();
    }
    std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| arg.to_string())
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // The agent may have started children of its own (opencode, a shell): end them all.
        let _ = Command::new("kill")
            .args(["-KILL", &format!("-{}", child.id())])
            .status();
    }
    let _ = child.kill();
}

/// The last [`TAIL_BYTES`] of a file, from a line start where possible.
fn tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    let mut s = String::from_utf8_lossy(&bytes[start..]).into_owned();
    if start > 0 {
        if let Some(i) = s.find('\n') {
            s.drain(..=i);
        }
    }
    s
}
