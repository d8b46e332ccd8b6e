//! `tapeloop serve --pace instant` under load (`cargo bench --bench serve_load`): N simulated
//! agents (10, 100, 1,000) at once, each with its own `x-tapeloop-session` and its own
//! keep-alive connection (opened as the agent starts, from its own loopback address), each replaying the whole bundled
//! cassette below in order over loopback, as an agent loop would. `-- sessions/1000` runs one N.
//!
//! The server is the release binary, driven over HTTP only (a fresh process per N, so its peak
//! RSS is that N's). Criterion times one wave of N agents (elements = requests, so its
//! throughput is requests/s); every request's time to first body byte is kept, and after each
//! N the bench prints p50/p99/max TTFB, errors (a failed request, another status than recorded
//! or other body bytes than recorded) and the server's peak RSS (`VmHWM`).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use tapeloop::cassette::Cassette;
use tokio::net::{TcpSocket, TcpStream};

/// Two interactions (a tool call, then the answer), both 200 and complete.
const CASSETTE: &str = "recordings/call-with-tools.openai-chat.jsonl";

/// One request of the agent loop: what to send and what must come back.
struct Step {
    body: Bytes,
    status: u16,
    expect: Vec<u8>,
}

fn steps() -> Vec<Step> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CASSETTE);
    let c = Cassette::load(&path).expect("bundled cassette");
    c.interactions
        .iter()
        .map(|i| Step {
            body: serde_json::to_vec(i.request.body.value())
                .expect("JSON")
                .into(),
            status: i.response.as_ref().expect("response").status,
            expect: i.body(),
        })
        .collect()
}

/// A `tapeloop serve` process and its address.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "serve",
                CASSETTE,
                "--listen",
                "127.0.0.1:0",
                "--pace",
                "instant",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tapeloop serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines.next().expect("serve exited early").expect("stderr");
            if let Some(rest) = line.split(" on http://").nth(1) {
                break rest.split_whitespace().next().expect("addr").to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    /// CPU seconds (user + system) the server has used so far (Linux).
    fn cpu_s(&self) -> Option<f64> {
        cpu_s(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Peak resident set size in MiB (Linux `VmHWM`).
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// CPU seconds (user + system) from a `/proc/<pid>/stat` file, at Linux's `USER_HZ` of 100.
fn cpu_s(stat: &str) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Tally {
    ttfb: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// One agent: its own keep-alive connection (opened when it starts, as an agent's HTTP client
/// does), every step in order on it, one session; returns (TTFB per request, first error).
/// The first request's time includes the connect. The client is a bare hyper HTTP/1
/// connection, so the bench spends the shared cores on the server rather than on a
/// client's pool bookkeeping.
async fn agent(
    addr: &str,
    from: IpAddr,
    session: &str,
    steps: &[Step],
) -> (Vec<Duration>, Option<String>) {
    let mut ttfb = Vec::with_capacity(steps.len());
    let start = Instant::now();
    let stream = match connect(addr, from).await {
        Ok(s) => s,
        Err(e) => return (ttfb, Some(format!("connect: {e}"))),
    };
    let _ = stream.set_nodelay(true);
    let (mut send, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(c) => c,
            Err(e) => return (ttfb, Some(format!("handshake: {e}"))),
        };
    tokio::spawn(conn);
    for (n, step) in steps.iter().enumerate() {
        let start = if n == 0 { start } else { Instant::now() };
        let req = hyper::Request::post("/v1/chat/completions")
            .header("host", addr)
            .header("content-type", "application/json")
            .header("x-tapeloop-session", session)
            .body(Full::new(step.body.clone()))
            .expect("request");
        // A keep-alive connection takes its next request only once it has finished the last
        // response; sending before then fails with "connection was not ready".
        if let Err(e) = send.ready().await {
            return (ttfb, Some(format!("request {n}: {e}")));
        }
        let resp = match send.send_request(req).await {
            Ok(r) => r,
            Err(e) => return (ttfb, Some(format!("request {n}: {e:?}"))),
        };
        let status = resp.status().as_u16();
        let mut stream = resp.into_body();
        let mut body = Vec::with_capacity(step.expect.len());
        let mut first = true;
        while let Some(frame) = stream.frame().await {
            match frame {
                Ok(f) => {
                    let Some(c) = f.data_ref() else { continue };
                    if first && !c.is_empty() {
                        ttfb.push(start.elapsed());
                        first = false;
                    }
                    body.extend_from_slice(c);
                }
                Err(e) => return (ttfb, Some(format!("request {n} body: {e}"))),
            }
        }
        if status != step.status || body != step.expect {
            let got = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return (
                ttfb,
                Some(format!("request {n}: status {status}, body {got}")),
            );
        }
    }
    (ttfb, None)
}

/// Connect to `addr` from the loopback address `from`.
///
/// Every wave opens and closes N connections, and the closing side (the client) keeps each
/// in TIME_WAIT for 60 s, so back-to-back waves pile up tens of thousands of them. From one
/// source address, `connect` then searches the ephemeral ports past them: that search was
/// most of the client's CPU and a connect's p99 was over 100 ms at 1,000 agents. The agents
/// of a real wave do not meet their predecessors' TIME_WAIT, so each wave's agents connect
/// from their own addresses in 127.0.0.0/8 (all of it is loopback on Linux; where only
/// 127.0.0.1 is, the bind fails and the agent connects from the default address), and the
/// server sees ordinary connections closed in the ordinary way.
async fn connect(addr: &str, from: IpAddr) -> std::io::Result<TcpStream> {
    let to: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let socket = TcpSocket::new_v4()?;
    if socket.bind(SocketAddr::new(from, 0)).is_err() {
        return TcpStream::connect(to).await;
    }
    socket.connect(to).await
}

/// The loopback address agent `i` of wave `w` connects from: one address per agent, reused
/// every 200 waves.
fn source(w: u64, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (w % 200) as u8,
        (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let steps = Arc::new(steps());
    let wave = AtomicU64::new(0);
    let mut report = Vec::new();
    let mut g = c.benchmark_group("serve_load");
    g.sample_size(10);
    for n in [10usize, 100, 1000] {
        let server = Server::start();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let cpu_before = (server.cpu_s(), cpu_s("/proc/self/stat"), Instant::now());
        g.throughput(Throughput::Elements((n * steps.len()) as u64));
        g.bench_function(format!("sessions/{n}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let w = wave.fetch_add(1, Ordering::Relaxed);
                        let start = Instant::now();
                        let tasks: Vec<_> = (0..n)
                            .map(|i| {
                                let addr = server.addr.clone();
                                let (steps, tally) = (Arc::clone(&steps), Arc::clone(&tally));
                                tokio::spawn(async move {
                                    let session = format!("agent-{w}-{i}");
                                    let from = source(w, i);
                                    let (t, err) = agent(&addr, from, &session, &steps).await;
                                    let mut tally = tally.lock().unwrap();
                                    tally.ttfb.extend(t);
                                    if let Some(e) = err {
                                        tally.errors += 1;
                                        tally.first_error.get_or_insert(e);
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("agent task");
                        }
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
        let mut tally = tally.lock().unwrap();
        if tally.ttfb.is_empty() {
            continue; // filtered out on the command line (`-- sessions/1000`)
        }
        tally.ttfb.sort();
        // Cores each side used over this N's warm-up and measurement: the two share the
        // machine, so a server below one core with the client on the rest is client-bound.
        let wall = cpu_before.2.elapsed().as_secs_f64();
        let cores = |before: Option<f64>, now: Option<f64>| match (before, now) {
            (Some(b), Some(n)) => format!("{:.2}", (n - b) / wall),
            _ => "?".into(),
        };
        // Server CPU per response: steadier than the latencies on a shared machine, so the
        // figure to compare builds by.
        let per_response = match (cpu_before.0, server.cpu_s()) {
            (Some(b), Some(now)) => format!(
                "{:.1} µs",
                (now - b) * 1e6 / (tally.ttfb.len() as f64).max(1.0)
            ),
            _ => "?".into(),
        };
        report.push(format!(
            "{n:>5} agents: {:>7} responses timed, {} agents failed{}; TTFB p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server peak RSS {:.1} MiB; cores used: server {}, bench client {}; server CPU per response {per_response}",
            tally.ttfb.len(),
            tally.errors,
            tally
                .first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            percentile(&tally.ttfb, 0.50).as_secs_f64() * 1e3,
            percentile(&tally.ttfb, 0.99).as_secs_f64() * 1e3,
            tally.ttfb.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            server.peak_rss_mib().unwrap_or(f64::NAN),
            cores(cpu_before.0, server.cpu_s()),
            cores(cpu_before.1, cpu_s("/proc/self/stat")),
        ));
    }
    g.finish();
    println!(
        "\nserve_load ({CASSETTE}, {} requests per agent):",
        steps.len()
    );
    for line in report {
        println!("  {line}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
