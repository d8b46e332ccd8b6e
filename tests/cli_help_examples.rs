//! Every example in every `--help` text runs as printed from the repository root.
//!
//! The help texts (`tapeloop --help` and each subcommand's) are parsed for their example
//! lines (`  tapeloop ...`, `  VAR=... tapeloop ...`, with `\` continuations; a description
//! after two or more spaces is not part of the command). Each example must name only files
//! that exist (outputs after `-o`, `--out`, `--output`, `--log`, `>` excepted), then it is
//! run with `sh` in a copy of the repository's scenarios, recordings and fixtures, in the
//! order printed (so a later example may read what an earlier one wrote), and must exit 0
//! (or 1 where its description says it exits 1).
//! Servers (`serve`, `record --proxy`) must come up and then exit 0 on SIGTERM. Live
//! recording examples are checked for their files but not run: they call a provider over the
//! internet, which tests never do; nor are `bench` examples (minutes of benchmark work), nor
//! `exec` examples (they run a real agent: the exec_* tests do).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run tapeloop --help");
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The subcommand names listed under `Commands:`.
fn subcommands(main_help: &str) -> Vec<String> {
    main_help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The example commands of a help text, each with whether its description (the text after
/// it on its last line, and the more deeply indented lines below) says it exits 1.
fn examples_with_exit(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    // A `cp SRC DST` line prepares the example below it (e.g. a copy to rewrite in place):
    // it runs first, as the reader would run it.
    let mut setup = String::new();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if line.starts_with("  ") && t.starts_with("cp ") {
            setup = format!("{t} && ");
            continue;
        }
        let starts = t.starts_with("tapeloop ")
            || t.split_once(' ').is_some_and(|(first, rest)| {
                first.contains('=')
                    && first.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && rest.starts_with("tapeloop ")
            });
        if !line.starts_with("  ") || !starts {
            continue;
        }
        let mut cmd = std::mem::take(&mut setup);
        let mut desc = String::new();
        let mut cur = t.to_string();
        loop {
            // A description follows after two or more spaces.
            let (part, rest) = match cur.find("  ") {
                Some(i) => (cur[..i].to_string(), cur[i..].to_string()),
                None => (cur.clone(), String::new()),
            };
            if let Some(stripped) = part.trim_end().strip_suffix('\\') {
                cmd.push_str(stripped.trim_end());
                cmd.push(' ');
                cur = lines.next().unwrap_or_default().trim().to_string();
            } else {
                cmd.push_str(part.trim_end());
                desc.push_str(&rest);
                break;
            }
        }
        while let Some(next) = lines.peek() {
            let nt = next.trim_start();
            if next.len() - nt.len() > 2 && !nt.starts_with("tapeloop ") {
                desc.push(' ');
                desc.push_str(nt);
                lines.next();
            } else {
                break;
            }
        }
        out.push((cmd, desc.contains("exit 1")));
    }
    out
}

/// The example commands of a help text.
fn examples(text: &str) -> Vec<String> {
    examples_with_exit(text)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// Words of a command as `sh` splits them (single and double quotes; no expansion).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Arguments that name input files: anything with a `/` or a file extension we read,
/// except URLs, addresses, JSONPaths and the values of output options.
fn named_inputs(cmd: &str) -> Vec<String> {
    let w = words(cmd);
    let mut out = Vec::new();
    let mut skip_next = false;
    for (i, a) in w.iter().enumerate() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if ["-o", "--out", "--output", "--log", ">", "--partition"].contains(&a.as_str()) {
            skip_next = true;
            continue;
        }
        let looks_like_file = a.contains('/')
            || [".toml", ".jsonl", ".json", ".sse", ".yaml", ".txt"]
                .iter()
                .any(|e| a.ends_with(e));
        if i == 0
            || a.starts_with('-')
            || a.starts_with('$')
            || a.contains("://")
            || a.contains('=')
            || !looks_like_file
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn sh(cmd: &str, root: &Path, bin_dir: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(root)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null());
    for var in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "OPENROUTER_API_KEY",
    ] {
        c.env_remove(var);
    }
    c
}

/// Start a server example, wait for its listening line, stop it with SIGTERM: exit 0.
fn run_server(cmd: &str, allows_1: bool, root: &Path, bin_dir: &Path) -> Result<(), String> {
    let mut child = sh(&format!("exec {cmd}"), root, bin_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut up = false;
    let mut lines_rest = BufReader::new(stderr).lines();
    for line in lines_rest.by_ref() {
        let Ok(line) = line else { break };
        seen.push(line.clone());
        if line.contains("http://") {
            up = true;
            break;
        }
    }
    if !up {
        let status = child.wait().map_err(|e| e.to_string())?;
        let text = seen.join("\n");
        if text.contains("Address already in use") {
            eprintln!("note: `{cmd}`: its fixed port is taken on this machine; not run:\n{text}");
            return Ok(());
        }
        return Err(format!("did not come up ({status}):\n{text}"));
    }
    // Keep reading: a server whose stderr pipe is closed fails to print its summary.
    let mut rest = lines_rest;
    let drain = std::thread::spawn(move || while let Some(Ok(_)) = rest.next() {});
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let _ = drain.join();
            return if status.success() || (allows_1 && status.code() == Some(1)) {
                Ok(())
            } else {
                Err(format!("exited {status} after SIGTERM"))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("did not stop after SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_help_example_runs_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "scenarios",
        "recordings",
        "tests/fixtures",
        "examples",
        "agents",
    ] {
        copy_dir(&repo().join(d), &root.join(d));
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tapeloop"))
        .parent()
        .unwrap()
        .to_path_buf();
    let main = help(&[]);
    let mut texts = vec![(String::from("tapeloop"), main.clone())];
    for sub in subcommands(&main) {
        texts.push((format!("tapeloop {sub}"), help(&[&sub])));
    }
    assert!(texts.len() >= 9, "{texts:?}");
    let mut failures = Vec::new();
    let mut ran = 0;
    for (which, text) in &texts {
        let list = examples_with_exit(text);
        assert!(!list.is_empty(), "`{which} --help` has no examples");
        for (cmd, allows_1) in list {
            let w = words(&cmd);
            let tool = w.iter().position(|x| x == "tapeloop").unwrap();
            let sub = w.get(tool + 1).map(String::as_str).unwrap_or_default();
            // Inputs must exist (globs: at least one match), unless a `cp` makes them.
            let made = w.first().is_some_and(|x| x == "cp").then(|| w[2].clone());
            for input in named_inputs(&cmd) {
                if made.as_deref() == Some(input.as_str()) {
                    continue;
                }
                let exists = if input.contains('*') {
                    let (d, pat) = input.rsplit_once('/').unwrap_or((".", &input));
                    let suffix = pat.trim_start_matches('*');
                    std::fs::read_dir(root.join(d))
                        .map(|rd| {
                            rd.flatten()
                                .any(|e| e.file_name().to_string_lossy().ends_with(suffix))
                        })
                        .unwrap_or(false)
                } else {
                    root.join(&input).exists()
                        || PathBuf::from(&input).is_absolute() && Path::new(&input).exists()
                };
                if !exists {
                    failures.push(format!("{which}: `{cmd}`: {input} does not exist"));
                }
            }
            let proxy = w.iter().any(|x| x == "--proxy");
            if sub == "record" && !proxy {
                continue; // live recording calls a provider: files checked, not run
            }
            if sub == "exec" {
                // An agent under test is a real program (the openai SDK, opencode, Codex):
                // tests/exec_agent.rs, exec_opencode.rs and exec_codex.rs run these examples'
                // commands with the agents .ci/run installs. Files checked, not run here.
                continue;
            }
            if sub == "bench" {
                // A benchmark's minutes of work belong in `cargo bench`, not the test suite
                // (about 2 minutes for these in a debug build): files checked, not run.
                continue;
            }
            ran += 1;
            let result = if sub == "serve" || proxy {
                run_server(&cmd, allows_1, root, &bin_dir)
            } else {
                let out = sh(&cmd, root, &bin_dir).output().unwrap();
                if out.status.success() || (allows_1 && out.status.code() == Some(1)) {
                    Ok(())
                } else {
                    Err(format!(
                        "exited {}:\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            };
            if let Err(e) = result {
                failures.push(format!("{which}: `{cmd}`: {e}"));
            }
        }
    }
    assert!(ran >= 20, "only {ran} examples ran");
    assert!(
        failures.is_empty(),
        "{} broken example(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_example_parser_reads_continuations_descriptions_and_quotes() {
    let text = "Examples:\n  tapeloop run                 every scenario\n  A_KEY=... tapeloop record x.toml \\\n      --model m          (a note)\n  not an example\n";
    assert_eq!(
        examples(text),
        ["tapeloop run", "A_KEY=... tapeloop record x.toml --model m"]
    );
    let text =
        "  cp a/x.jsonl /tmp/y.jsonl\n  tapeloop check --rewrite-footer /tmp/y.jsonl   note\n";
    assert_eq!(
        examples(text),
        ["cp a/x.jsonl /tmp/y.jsonl && tapeloop check --rewrite-footer /tmp/y.jsonl"]
    );
    assert_eq!(
        words("tapeloop serve '$.a b' \"c\" d"),
        ["tapeloop", "serve", "$.a b", "c", "d"]
    );
    assert_eq!(
        named_inputs(
            "tapeloop serve recordings/a.jsonl --ignore '$.x' -o out/x.jsonl --listen 127.0.0.1:0"
        ),
        ["recordings/a.jsonl"]
    );
}
