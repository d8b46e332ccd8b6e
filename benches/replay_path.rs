//! The replay path, layer by layer, on the bundled corpus (`scenarios/` + `recordings/`), and
//! the parse floor it is measured against. Every group reports bytes and elements, so
//! ratios between groups are direct:
//!
//! - `sse`: the SSE decoder on every 2xx body of the corpus, fed as recorded (chunk by chunk);
//!   elements = SSE events.
//! - `cassette`: `Cassette::from_bytes` (JSON lines, base64, footer hash check, assembly);
//!   elements = lines.
//! - `adapters/<api>`: `ResponseDecoder` (framing + adapter) on each API's 2xx bodies;
//!   elements = normalized events.
//! - `replay`: every scenario × cassette job, cassette bytes in memory → scored `RunRecord`;
//!   elements = normalized events the processor consumed.
//! - `floor`: the same cassette bytes as `replay`, every line parsed into a typed struct and
//!   every SSE payload into a typed (borrowing) struct, nothing else; elements = the same
//!   normalized-event count as `replay`, so the two events/s figures divide directly.
//!
//! `cargo bench --bench replay_path -- 'replay|floor'` runs the two side by side.
//!
//! Both run on the allocator the `tapeloop` binary ships with (mimalloc, unless built with
//! `--no-default-features`).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, Criterion, Throughput};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tapeloop::cassette::{Cassette, CassetteStream};
use tapeloop::provider::{Api, ResponseDecoder};
use tapeloop::runner::{self, Job, RunOptions};
use tapeloop::scenario::{self, Scenario};
use tapeloop::sse::SseDecoder;

/// The allocator of the `tapeloop` binary, so the figures are the shipped replay's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every bundled scenario × cassette job with its cassette bytes.
fn jobs() -> Vec<(Job, Arc<[u8]>)> {
    let dir = root().join("scenarios");
    let mut scenarios: Vec<Arc<Scenario>> = Vec::new();
    for path in scenario::discover(&dir).expect("scenarios/") {
        let sc =
            scenario::load_checked(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        scenarios.push(Arc::new(sc));
    }
    runner::plan(&scenarios)
        .into_iter()
        .map(|j| {
            let bytes = std::fs::read(&j.cassette).expect("cassette");
            (j, Arc::from(bytes))
        })
        .collect()
}

/// Every distinct corpus cassette, loaded.
fn cassettes() -> Vec<(Vec<u8>, Cassette)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("recordings"))
        .expect("recordings/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("cassette");
            let c = Cassette::from_bytes(&bytes, &p).expect("valid corpus cassette");
            (bytes, c)
        })
        .collect()
}

/// The 2xx bodies of the corpus as recorded chunks, with their API.
fn bodies(cassettes: &[(Vec<u8>, Cassette)]) -> Vec<(Api, Vec<Vec<u8>>)> {
    cassettes
        .iter()
        .flat_map(|(_, c)| {
            c.interactions
                .iter()
                .filter(|i| i.response.as_ref().is_some_and(|r| r.status / 100 == 2))
                .map(|i| {
                    (
                        c.header.api,
                        i.chunks.iter().map(|ch| ch.bytes.clone()).collect(),
                    )
                })
        })
        .collect()
}

fn configure(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("replay_path");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

fn sse(c: &mut Criterion) {
    let corpus = cassettes();
    let bodies = bodies(&corpus);
    let bytes: usize = bodies.iter().flat_map(|(_, c)| c).map(Vec::len).sum();
    let events: usize = bodies
        .iter()
        .map(|(_, chunks)| {
            let mut d = SseDecoder::new();
            let mut out = Vec::new();
            for ch in chunks {
                d.feed(ch, &mut out);
            }
            d.finish(&mut out);
            out.len()
        })
        .sum();
    let run = |b: &mut criterion::Bencher| {
        b.iter(|| {
            let mut n = 0usize;
            for (_, chunks) in &bodies {
                let mut d = SseDecoder::new();
                let mut sink = |ev: tapeloop::sse::SseEvent| {
                    n += 1;
                    black_box(ev);
                };
                for ch in chunks {
                    d.feed_with(ch, &mut sink);
                }
                d.finish_with(&mut sink);
            }
            n
        })
    };
    let mut g = configure(c);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("sse/bytes", run);
    g.throughput(Throughput::Elements(events as u64));
    g.bench_function("sse/events", run);
    g.finish();
}

fn cassette(c: &mut Criterion) {
    let corpus = cassettes();
    let bytes: usize = corpus.iter().map(|(b, _)| b.len()).sum();
    let lines: usize = corpus
        .iter()
        .map(|(b, _)| b.iter().filter(|&&x| x == b'\n').count())
        .sum();
    let run = |b: &mut criterion::Bencher| {
        b.iter(|| {
            for (bytes, _) in &corpus {
                black_box(Cassette::from_bytes(bytes, "bench.jsonl").expect("valid"));
            }
        })
    };
    let mut g = configure(c);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("cassette/bytes", run);
    g.throughput(Throughput::Elements(lines as u64));
    g.bench_function("cassette/lines", run);
    g.finish();
}

fn adapters(c: &mut Criterion) {
    let corpus = cassettes();
    let all = bodies(&corpus);
    let mut g = configure(c);
    for api in Api::ALL {
        let bodies: Vec<&Vec<Vec<u8>>> = all
            .iter()
            .filter(|(a, _)| *a == api)
            .map(|(_, b)| b)
            .collect();
        if bodies.is_empty() {
            continue;
        }
        let bytes: usize = bodies.iter().copied().flatten().map(Vec::len).sum();
        let decode = |chunks: &Vec<Vec<u8>>, out: &mut Vec<tapeloop::event::StreamEvent>| {
            let mut d = ResponseDecoder::new(api);
            for ch in chunks {
                d.feed(ch, out);
            }
            d.finish(tapeloop::event::EndOutcome::Complete, out);
        };
        let events: usize = bodies
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                decode(b, &mut out);
                out.len()
            })
            .sum();
        let run = |b: &mut criterion::Bencher| {
            let mut out = Vec::new();
            b.iter(|| {
                for body in &bodies {
                    decode(body, &mut out);
                    black_box(&out);
                    out.clear();
                }
            })
        };
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(format!("adapters/{api}/bytes"), run);
        g.throughput(Throughput::Elements(events as u64));
        g.bench_function(format!("adapters/{api}/events"), run);
    }
    g.finish();
}

/// Replay every job from in-memory cassette bytes as `tapeloop run` does (streaming the
/// cassette): parse, decode, processor, scoring. Not inlined, so a profiler can name it.
#[inline(never)]
fn replay_all(jobs: &[(Job, Arc<[u8]>)], opts: &RunOptions) -> u64 {
    let mut events = 0;
    for (job, bytes) in jobs {
        let stream =
            CassetteStream::from_bytes(Arc::clone(bytes), &job.cassette).expect("valid cassette");
        let (mut rec, n) = runner::replay_stream(&job.scenario, stream, &job.cassette, opts)
            .expect("valid cassette");
        let failures = job.scenario.expect.check(&rec);
        rec.set_failures(failures);
        events += n;
        black_box(rec);
    }
    events
}

// ---------------------------------------------------------------------------------------------
// The floor: typed parsing of the same bytes and nothing else
// ---------------------------------------------------------------------------------------------

/// One cassette line, every field the replay uses, strings borrowed when unescaped. The
/// request body is parsed (validated) but not materialized.
#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorLine<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    b64: Option<Cow<'a, str>>,
    #[serde(default)]
    body: Option<IgnoredAny>,
    #[serde(default)]
    headers: Option<IgnoredAny>,
}

/// The union of the stream fields the four adapters read, borrowed where possible. Every
/// payload of every API parses into it (absent fields are `None`).
#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorPayload<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<FloorChoice<'a>>>,
    #[serde(default, borrow)]
    delta: Option<FloorDelta<'a>>,
    #[serde(default, borrow)]
    candidates: Option<Vec<FloorCandidate<'a>>>,
    #[serde(default)]
    usage: Option<IgnoredAny>,
    #[serde(default, rename = "usageMetadata")]
    usage_metadata: Option<IgnoredAny>,
    #[serde(default)]
    message: Option<IgnoredAny>,
    #[serde(default)]
    content_block: Option<IgnoredAny>,
    #[serde(default)]
    item: Option<IgnoredAny>,
    #[serde(default)]
    response: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<FloorDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Chat deltas, Anthropic deltas and Responses deltas share these names.
#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<FloorToolCall<'a>>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorToolCall<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FloorFunction<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FloorCandidate<'a> {
    #[serde(default)]
    content: Option<IgnoredAny>,
    #[serde(default, borrow, rename = "finishReason")]
    finish_reason: Option<Cow<'a, str>>,
}

/// Parse one cassette: every line into [`FloorLine`], every interaction's body (chunks joined)
/// split on SSE `data:` lines, every payload into [`FloorPayload`]. Returns payloads parsed.
fn floor_one(bytes: &[u8]) -> usize {
    use base64::Engine;
    let mut payloads = 0;
    let mut body: Vec<u8> = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let l: FloorLine = serde_json::from_slice(line).expect("valid line");
        match &*l.kind {
            "request" => body.clear(),
            "chunk" => match (&l.data, &l.b64) {
                (Some(d), _) => body.extend_from_slice(d.as_bytes()),
                (None, Some(b)) => body.extend_from_slice(
                    &base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .expect("base64"),
                ),
                _ => {}
            },
            "end" => {
                // Gemini without `alt=sse` streams a JSON array: parse it whole.
                let trimmed = body.trim_ascii_start();
                if trimmed.first() == Some(&b'[') {
                    if let Ok(v) = serde_json::from_slice::<Vec<FloorPayload>>(trimmed) {
                        payloads += v.len();
                    }
                    continue;
                }
                for l in body.split(|&b| b == b'\n') {
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    let Some(data) = l.strip_prefix(b"data:") else {
                        continue;
                    };
                    let data = data.strip_prefix(b" ").unwrap_or(data);
                    if data == b"[DONE]" {
                        continue;
                    }
                    // Error bodies and non-JSON payloads are skipped, as cheaply as possible.
                    if serde_json::from_slice::<FloorPayload>(data).is_ok() {
                        payloads += 1;
                    }
                }
            }
            _ => {}
        }
    }
    payloads
}

/// The floor over every job: not inlined, so a profiler can name it.
#[inline(never)]
fn floor_all(jobs: &[(Job, Arc<[u8]>)]) -> usize {
    jobs.iter().map(|(_, b)| floor_one(b)).sum()
}

fn replay_and_floor(c: &mut Criterion) {
    let jobs = jobs();
    let opts = RunOptions {
        jobs: 1,
        ..RunOptions::default()
    };
    let bytes: usize = jobs.iter().map(|(_, b)| b.len()).sum();
    let events = replay_all(&jobs, &opts);
    let payloads: usize = jobs.iter().map(|(_, b)| floor_one(b)).sum();
    eprintln!(
        "replay_path: {} jobs, {bytes} cassette bytes, {events} normalized events, {payloads} JSON payloads (floor)",
        jobs.len()
    );
    let mut g = configure(c);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("replay/bytes", |b| b.iter(|| replay_all(&jobs, &opts)));
    g.bench_function("floor/bytes", |b| b.iter(|| floor_all(&jobs)));
    g.throughput(Throughput::Elements(events));
    g.bench_function("replay/events", |b| b.iter(|| replay_all(&jobs, &opts)));
    g.bench_function("floor/events", |b| b.iter(|| floor_all(&jobs)));
    g.finish();
}

/// `REPLAY_PATH_ITERS=<replay|floor>:<n>`: run exactly `n` passes of one side over the corpus
/// and exit, for instruction counts that do not depend on timing:
///
/// ```text
/// REPLAY_PATH_ITERS=replay:20 valgrind --tool=callgrind \
///     --toggle-collect='replay_path::replay_all' target/release/deps/replay_path-<hash>
/// ```
///
/// The instructions collected divided by `n` are one corpus pass; by the printed byte count,
/// instructions per byte.
fn fixed_iterations(spec: &str) {
    let (side, n) = spec.split_once(':').unwrap_or((spec, "1"));
    let n: usize = n.parse().expect("REPLAY_PATH_ITERS=<replay|floor>:<n>");
    let jobs = jobs();
    let opts = RunOptions {
        jobs: 1,
        ..RunOptions::default()
    };
    let bytes: usize = jobs.iter().map(|(_, b)| b.len()).sum();
    for _ in 0..n {
        match side {
            "replay" => black_box(replay_all(&jobs, &opts) as usize),
            "floor" => black_box(floor_all(&jobs)),
            other => panic!("REPLAY_PATH_ITERS: unknown side {other:?} (replay or floor)"),
        };
    }
    eprintln!(
        "replay_path: {n} x {side} over {} jobs, {bytes} bytes",
        jobs.len()
    );
}

criterion_group!(benches, sse, cassette, adapters, replay_and_floor);

fn main() {
    if let Ok(spec) = std::env::var("REPLAY_PATH_ITERS") {
        fixed_iterations(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
