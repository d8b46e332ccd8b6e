//! An in-process fake LLM provider for the recorder and proxy tests.
//!
//! A raw HTTP/1.1 server on 127.0.0.1:0 (tokio TCP, no framework, so the test controls every
//! byte and every connection event) that answers each request with the next [`Reply`] of a
//! script shared by all connections: real provider streams from `tests/fixtures/provider-streams/`
//! split into irregular chunks, each written as one HTTP chunk after a delay; JSON error
//! bodies with their headers; and broken endings (a TCP reset, a stall). It records every
//! request it received. [`FakeProvider::stop`] ends it (and every stalled response).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const STREAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams"
);

/// The bytes of a provider-stream fixture (`anthropic/...sse`).
pub fn stream(rel: &str) -> Vec<u8> {
    let p = Path::new(STREAMS).join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The terminating zero-length chunk (or the full `content-length`), connection kept.
    Complete,
    /// The connection is reset (RST, `SO_LINGER` 0) after the chunks.
    Reset,
    /// Nothing more is sent until the fake is stopped.
    Stall,
}

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// (delay before this chunk in ms, bytes); sent as one HTTP chunk each.
    pub chunks: Vec<(u64, Vec<u8>)>,
    pub ending: Ending,
    /// `transfer-encoding: chunked` (streams) or `content-length` (JSON bodies).
    pub chunked: bool,
}

/// A small deterministic generator (no extra dev-dependency).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Split `body` into 6–12 pieces at irregular positions (mid-line and mid-character cuts
/// included), each preceded by a delay of 10–40 ms.
pub fn split(body: &[u8], seed: u64) -> Vec<(u64, Vec<u8>)> {
    let mut rng = Lcg::new(seed);
    let pieces = rng.range(6, 12) as usize;
    let mut cuts: Vec<usize> = (1..pieces)
        .map(|_| rng.range(1, body.len() as u64 - 1) as usize)
        .collect();
    cuts.push(0);
    cuts.push(body.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| (rng.range(10, 40), body[w[0]..w[1]].to_vec()))
        .collect()
}

impl Reply {
    /// A 200 SSE stream of `body`, split irregularly (see [`split`]).
    pub fn sse(body: Vec<u8>, seed: u64) -> Self {
        Reply {
            status: 200,
            headers: vec![
                (
                    "content-type".into(),
                    "text/event-stream; charset=utf-8".into(),
                ),
                ("x-request-id".into(), format!("req_fake_{seed}")),
            ],
            chunks: split(&body, seed),
            ending: Ending::Complete,
            chunked: true,
        }
    }

    /// A 200 stream of a fixture file.
    pub fn fixture(rel: &str, seed: u64) -> Self {
        Self::sse(stream(rel), seed)
    }

    /// A non-streamed JSON response (an error body).
    pub fn json(status: u16, body: &str, headers: &[(&str, &str)]) -> Self {
        let mut h = vec![("content-type".to_string(), "application/json".to_string())];
        h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Reply {
            status,
            headers: h,
            chunks: vec![(5, body.as_bytes().to_vec())],
            ending: Ending::Complete,
            chunked: false,
        }
    }

    /// Keep the first `n` chunks, then end with `ending`.
    pub fn cut(mut self, n: usize, ending: Ending) -> Self {
        self.chunks.truncate(n);
        self.ending = ending;
        self
    }

    /// Append raw bytes as one more chunk after `delay` ms.
    pub fn then(mut self, delay: u64, bytes: &[u8]) -> Self {
        self.chunks.push((delay, bytes.to_vec()));
        self
    }

    /// The same reply with its body compressed (`gzip` or `zstd`), sent as `parts` chunks
    /// with a `content-encoding` header.
    pub fn encoded(mut self, encoding: &str, parts: usize) -> Self {
        use std::io::Write;
        let plain = self.body();
        let bytes = match encoding {
            "gzip" => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&plain).expect("gzip in memory");
                e.finish().expect("gzip in memory")
            }
            "zstd" => zstd::encode_all(&plain[..], 3).expect("zstd in memory"),
            other => panic!("the fake provider cannot encode {other}"),
        };
        let step = bytes.len().div_ceil(parts.max(1)).max(1);
        self.chunks = bytes.chunks(step).map(|c| (5, c.to_vec())).collect();
        self.headers
            .push(("content-encoding".into(), encoding.into()));
        self
    }

    /// The whole body served.
    pub fn body(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|(_, b)| b.clone()).collect()
    }

    /// Total delay before the `i`-th chunk was written, counted from the response head.
    pub fn delay_until(&self, i: usize) -> u64 {
        self.chunks[..=i].iter().map(|(d, _)| d).sum()
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    script: Mutex<std::collections::VecDeque<Reply>>,
    /// Served to every request once the script is exhausted (benchmarks).
    repeat: Option<Reply>,
    received: Mutex<Vec<Received>>,
}

/// A running fake provider.
pub struct FakeProvider {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    /// Bind 127.0.0.1:0 and serve `script` in order (one reply per request, whatever the
    /// connection). A request after the script is exhausted gets a 500 saying so.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::start_with(script, None).await
    }

    /// Serve `reply` to every request, without end (benchmarks).
    pub async fn start_repeating(reply: Reply) -> Self {
        Self::start_with(Vec::new(), Some(reply)).await
    }

    async fn start_with(script: Vec<Reply>, repeat: Option<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            repeat,
            received: Mutex::new(Vec::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        let sh = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            let mut stopping = stop_rx.clone();
            loop {
                tokio::select! {
                    _ = stopping.wait_for(|s| *s) => break,
                    accepted = listener.accept() => {
                        let Ok((sock, _)) = accepted else { continue };
                        let sh = Arc::clone(&sh);
                        let rx = stop_rx.clone();
                        conns.spawn(async move { let _ = serve(sock, sh, rx).await; });
                    }
                }
            }
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        });
        FakeProvider {
            addr,
            shared,
            stop,
            task,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Replies not served yet.
    pub fn remaining(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }

    /// Stop listening and drop every connection (stalled ones too).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn read_request(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Received>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("request head too large"));
        }
        let mut tmp = [0u8; 8192];
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut parts = start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut tmp = [0u8; 65536];
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Ok(Some(Received {
        method,
        target,
        headers,
        body,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn serve(
    mut sock: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut sock, &mut buf).await? else {
            return Ok(());
        };
        shared.received.lock().unwrap().push(req);
        let reply = shared
            .script
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| shared.repeat.clone())
            .unwrap_or_else(|| {
                Reply::json(
                    500,
                    r#"{"error":{"message":"fake provider: the test script is exhausted"}}"#,
                    &[],
                )
            });
        let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if reply.chunked {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("content-length: {}\r\n\r\n", reply.body().len()));
        }
        sock.write_all(head.as_bytes()).await?;
        sock.flush().await?;
        for (delay, bytes) in &reply.chunks {
            // A zero tokio sleep still waits for the timer's next 1 ms tick.
            if *delay > 0 {
                tokio::time::sleep(Duration::from_millis(*delay)).await;
            }
            if reply.chunked {
                let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
                frame.extend_from_slice(bytes);
                frame.extend_from_slice(b"\r\n");
                sock.write_all(&frame).await?;
            } else {
                sock.write_all(bytes).await?;
            }
            sock.flush().await?;
        }
        match reply.ending {
            Ending::Complete => {
                if reply.chunked {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    sock.write_all(b"0\r\n\r\n").await?;
                    sock.flush().await?;
                }
            }
            Ending::Reset => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                // A zero linger makes the close an RST and never blocks (the deprecation is
                // about non-zero lingers blocking the thread on drop).
                #[allow(deprecated)]
                sock.set_linger(Some(Duration::ZERO))?;
                drop(sock);
                return Ok(());
            }
            Ending::Stall => {
                // Bounded: the test stops the fake long before this.
                let _ = tokio::time::timeout(Duration::from_secs(120), stop.wait_for(|s| *s)).await;
                return Ok(());
            }
        }
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The secrets the tests send. None of them may appear in any file a test writes.
pub const API_KEY: &str = "tl-test-key-7f3a9c1e5b2d4a60";
/// A key-shaped string the tests put into request bodies (the user prompt).
pub const BODY_SECRET: &str = "sk-tapeloopBodySecret0123456789abcdef";
/// A Gemini-style key sent as a `?key=` query parameter.
pub const QUERY_KEY: &str = "tl-query-key-0c4e8a2f6b1d3957";
pub const SECRETS: [&str; 3] = [API_KEY, BODY_SECRET, QUERY_KEY];

/// Assert that no cassette under `dir` (`*.jsonl`, and `*.jsonl.partial` left by `--mode
/// new`) contains any of [`SECRETS`]; returns how many files were checked (at least one).
pub fn assert_no_secrets(dir: &Path) -> usize {
    let files: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|f| {
            let name = f.to_string_lossy();
            name.ends_with(".jsonl") || name.ends_with(".jsonl.partial")
        })
        .collect();
    let mut checked = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} contains the secret {s}",
                f.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no cassette written under {}", dir.display());
    checked
}
