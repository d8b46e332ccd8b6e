//! `tapeloop serve` as a child process: the bound port on stderr, scenarios as input, the
//! shutdown summary on SIGINT, and the exit status (1 in strict mode when something was
//! unused or diverged, 0 otherwise, 2 on bad input).

mod serve_support;
mod support_rss;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{json, Value};

use serve_support::*;

/// A running `tapeloop serve`; killed on drop if the test failed before stopping it.
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ServeProcess {
    fn spawn(args: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tapeloop serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = rx
                .recv_timeout(HANG_GUARD)
                .unwrap_or_else(|_| panic!("no listening line; stderr so far: {seen:?}"));
            seen.push(line.clone());
            if let Some(rest) = line.split("http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap();
                break addr.parse::<SocketAddr>().expect("address on stderr");
            }
        };
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        ServeProcess {
            child,
            addr,
            stderr: rx,
            seen,
        }
    }

    /// SIGINT (what Ctrl-C sends), then the exit code and the whole stderr.
    fn interrupt(self) -> (i32, String) {
        let (code, stderr, _) = self.interrupt_measured();
        (code, stderr)
    }

    /// Like [`interrupt`](Self::interrupt), with the server's peak RSS in KiB.
    fn interrupt_measured(mut self) -> (i32, String, i64) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill");
        assert!(st.success());
        let (code, peak_kib) = support_rss::wait_measured(&mut self.child);
        // The reader thread ends at EOF once the process is gone.
        while let Ok(line) = self.stderr.recv_timeout(HANG_GUARD) {
            self.seen.push(line);
        }
        (code, self.seen.join("\n"), peak_kib)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn post_all(addr: SocketAddr, path: &Path, count: usize) {
    let cassette = load(path);
    let api = cassette.header.api;
    let ep = endpoint(api, cassette.header.model.as_deref().unwrap());
    runtime().block_on(async {
        for inter in cassette.interactions.iter().take(count) {
            let r = client()
                .post(url(addr, &ep))
                .json(&inter.request.body)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.bytes().await.unwrap().to_vec(), inter.body());
        }
    });
}

#[test]
fn strict_exits_1_on_sigint_listing_unused_interactions() {
    let rel = "recordings/call-with-tools.openai-chat.jsonl";
    let p = ServeProcess::spawn(&[rel, "--pace", "instant", "--strict"]);
    post_all(p.addr, &repo(rel), 1);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("served 1 request(s)"), "{stderr}");
    assert!(
        stderr.contains("1 of 2 interactions never played (ids [2])"),
        "{stderr}"
    );
    assert!(stderr.contains("strict mode failed"), "{stderr}");
}

#[test]
fn strict_exits_1_on_divergence_even_when_everything_was_played() {
    let rel = "recordings/call-with-tools.openai-chat.jsonl";
    let p = ServeProcess::spawn(&[rel, "--pace", "instant", "--strict"]);
    let cassette = load(&repo(rel));
    let mut divergent = cassette.interactions[0].request.body.clone();
    divergent["model"] = json!("gpt-4o-mini");
    runtime().block_on(async {
        let r = client()
            .post(url(p.addr, "/v1/chat/completions"))
            .json(&divergent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["path"], "$.model");
    });
    post_all(p.addr, &repo(rel), 2);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("all 2 interactions played"), "{stderr}");
    assert!(
        stderr.contains("divergence:") && stderr.contains("at $.model"),
        "{stderr}"
    );
}

#[test]
fn strict_exits_0_when_everything_was_played_and_matched() {
    let rel = "recordings/call-with-tools.anthropic.jsonl";
    let p = ServeProcess::spawn(&[rel, "--pace", "x1000", "--strict"]);
    post_all(p.addr, &repo(rel), 2);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("all 2 interactions played"), "{stderr}");
}

#[test]
fn without_strict_unused_interactions_are_reported_but_exit_0() {
    let p = ServeProcess::spawn(&["scenarios/call-with-tools.toml", "--pace", "instant"]);
    let st = runtime().block_on(status(p.addr));
    let cassettes = st["cassettes"].as_array().unwrap();
    assert_eq!(cassettes.len(), 4, "{st}");
    let mut apis: Vec<&str> = cassettes
        .iter()
        .map(|c| c["api"].as_str().unwrap())
        .collect();
    apis.sort();
    assert_eq!(
        apis,
        ["anthropic", "gemini", "openai-chat", "openai-responses"]
    );
    post_all(p.addr, &repo("recordings/call-with-tools.gemini.jsonl"), 2);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("never played"), "{stderr}");
}

/// A session forgotten past `--max-sessions` that comes back is told: a response header, a
/// line on stderr as it happens, and a count in the shutdown summary.
#[test]
fn a_forgotten_session_that_comes_back_is_told_on_stderr_and_in_its_response() {
    let rel = "recordings/call-with-tools.openai-chat.jsonl";
    let cassette = load(&repo(rel));
    let body = &cassette.interactions[0].request.body;
    let p = ServeProcess::spawn(&[rel, "--pace", "instant", "--max-sessions", "1"]);
    let addr = p.addr;
    let restarted: Vec<bool> = runtime().block_on(async {
        let mut told = Vec::new();
        for session in ["a", "b", "a"] {
            let r = client()
                .post(url(addr, "/v1/chat/completions"))
                .header("x-tapeloop-session", session)
                .json(body)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status().as_u16(), 200, "{session}");
            told.push(r.headers().contains_key("x-tapeloop-session-restarted"));
            r.bytes().await.expect("body");
        }
        told
    });
    assert_eq!(restarted, [false, false, true]);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("session header:a was forgotten past --max-sessions 1 and starts over"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "2 session(s) forgotten past --max-sessions 1, 1 of which came back and started over"
        ),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2() {
    let serve = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
            .arg("serve")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cassette = "recordings/call-with-tools.anthropic.jsonl";
    let stderr = serve(&["does-not-exist.jsonl", "--listen", "127.0.0.1:0"]);
    assert!(stderr.contains("does-not-exist.jsonl"), "{stderr}");
    serve(&[cassette, "--pace", "x0"]);
    let stderr = serve(&[cassette, "--max-sessions", "0"]);
    assert!(stderr.contains("--max-sessions"), "{stderr}");
}

#[test]
fn require_all_exits_1_when_an_interaction_was_never_requested_and_0_when_all_were() {
    let rel = "recordings/call-with-tools.openai-chat.jsonl";
    let p = ServeProcess::spawn(&[rel, "--pace", "instant", "--require-all"]);
    post_all(p.addr, &repo(rel), 1);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--require-all: 1 recorded interaction(s) were never requested"),
        "{stderr}"
    );
    let p = ServeProcess::spawn(&[rel, "--pace", "instant", "--require-all"]);
    post_all(p.addr, &repo(rel), 2);
    let (code, stderr) = p.interrupt();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_directory_serves_every_cassette_below_it_and_an_empty_one_is_bad_input() {
    let p = ServeProcess::spawn(&["recordings/", "--pace", "instant"]);
    let st = runtime().block_on(status(p.addr));
    let count = std::fs::read_dir(repo("recordings"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jsonl")
        })
        .count();
    assert_eq!(st["cassettes"].as_array().unwrap().len(), count, "{st}");
    assert_eq!(st["matching"], "conversation");
    let (code, _) = p.interrupt();
    assert_eq!(code, 0);
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["serve", empty.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no cassettes (*.jsonl) below this directory"));
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["serve", "recordings/", "--ignore", "temperature"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with `$`"));
}

/// The peak RSS `serve` is held to while it serves the 200 MB cassette below: the binary, the
/// runtime and the index (2 400 interactions with 300-byte requests), far below the file.
const LARGE_SERVE_PEAK_KIB: i64 = 64 * 1024;

/// A cassette of at least `min_bytes`: the bundled DeepSeek stream (one 83 KB interaction)
/// repeated with new ids, the last copy's request changed so that only it matches. Returns
/// the path, the original interaction and the last copy's request body.
fn large_cassette(
    dir: &Path,
    min_bytes: usize,
) -> (std::path::PathBuf, tapeloop::cassette::Interaction, Value) {
    let src = corpus("reasoning-deepseek.openai-chat.jsonl");
    let original = load(&src).interactions.remove(0);
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let inter: Vec<&str> = lines
        .filter(|l| !l.contains(r#""kind":"footer""#))
        .collect();
    let size: usize = inter.iter().map(|l| l.len() + 1).sum();
    let copies = min_bytes / size + 1;
    let path = dir.join("large.openai-chat.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut hasher = blake3::Hasher::new();
    let mut put = |line: &str, hasher: &mut blake3::Hasher| {
        let line = format!("{line}\n");
        hasher.update(line.as_bytes());
        out.write_all(line.as_bytes()).unwrap();
    };
    put(header, &mut hasher);
    let mut last_body = Value::Null;
    for k in 1..=copies {
        for l in &inter {
            // Every interaction line names its id right after its kind.
            let mut line = l.replacen(r#""id":1,"#, &format!(r#""id":{k},"#), 1);
            if k == copies && l.starts_with(r#"{"kind":"request""#) {
                let mut v: Value = serde_json::from_str(&line).unwrap();
                v["body"]["messages"][0]["content"] = json!("Hello, for the last time");
                last_body = v["body"].clone();
                line = v.to_string();
            }
            put(&line, &mut hasher);
        }
    }
    let footer = json!({"kind": "footer", "interactions": copies,
        "lines": 1 + copies * inter.len(), "blake3": hasher.finalize().to_hex().to_string()});
    put(&footer.to_string(), &mut hasher);
    out.into_inner().unwrap().sync_all().unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() as usize >= min_bytes);
    (path, original, last_body)
}

/// `serve` indexes a cassette and reads bodies from the file as it plays them: a 200 MB
/// cassette is answered byte-exact, first and last interaction, within a peak RSS far below
/// the file's size (loading it whole took more than the file).
#[test]
fn a_large_cassette_is_served_from_the_file_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (path, original, last_body) = large_cassette(dir.path(), 200 << 20);
    let p = ServeProcess::spawn(&[path.to_str().unwrap(), "--pace", "instant"]);
    let ep = url(p.addr, "/v1/chat/completions");
    runtime().block_on(async {
        for body in [original.request.body.value(), &last_body] {
            let r = client().post(&ep).json(body).send().await.expect("send");
            assert_eq!(r.status().as_u16(), 200);
            let got = r.bytes().await.unwrap();
            assert!(got.as_ref() == original.body().as_slice(), "body differs");
        }
    });
    let status = runtime().block_on(status(p.addr));
    let ids = &status["sessions"];
    let served: Vec<u64> = ids
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["interactions"].as_array().unwrap().iter())
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    let copies = status["cassettes"][0]["interactions"].as_u64().unwrap();
    assert_eq!(served, vec![1, copies], "first and last interaction");
    let (code, stderr, peak_kib) = p.interrupt_measured();
    assert_eq!(code, 0, "{stderr}");
    let file_kib = std::fs::metadata(&path).unwrap().len() as i64 / 1024;
    eprintln!("serve peak RSS {peak_kib} KiB for a {file_kib} KiB cassette");
    assert!(
        peak_kib < LARGE_SERVE_PEAK_KIB,
        "serve peaked at {peak_kib} KiB for a {file_kib} KiB cassette (bound {LARGE_SERVE_PEAK_KIB} KiB)"
    );
}
