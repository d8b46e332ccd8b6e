//! Time to first byte through the recording proxy versus a direct connection to the same local
//! fake upstream (`cargo bench --bench proxy_ttfb`). The difference is what the proxy adds
//! before the first body byte: accepting, reading and forwarding the request, opening the
//! session cassette's request/response lines, and relaying the first chunk.
//!
//! `ttfb/*` measures the time from sending the request to the first body chunk; `ttlb/*` the
//! time to the last one (the upstream sends its chunks 1 ms apart, so the proxy's added
//! per-chunk latency shows as the difference in the last chunk's arrival: each chunk is
//! relayed as it arrives).

#[path = "../tests/support_fake/mod.rs"]
mod support_fake;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::StreamExt;
use support_fake::{Ending, FakeProvider, Reply};
use tapeloop::net::proxy::{self, ProxyOptions};

/// A real chat stream, first chunk at once, the rest after 1 ms each.
fn reply() -> Reply {
    let body = support_fake::stream("openai-chat/mirascope__parallel_tool_calls.turn1.sse");
    let mut r = Reply::sse(body, 7);
    for (i, (delay, _)) in r.chunks.iter_mut().enumerate() {
        *delay = if i == 0 { 0 } else { 1 };
    }
    r.ending = Ending::Complete;
    r
}

/// Time to the first and to the last body chunk of one request.
async fn timed(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> (Duration, Duration) {
    let start = Instant::now();
    let resp = client.post(url).json(body).send().await.expect("response");
    // Time only the recorded stream: an error answer would be timed as if it were one.
    assert_eq!(resp.status(), 200, "{url}: {:?}", resp.text().await);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.expect("a first chunk").expect("bytes");
    let ttfb = start.elapsed();
    assert!(!first.is_empty());
    while let Some(chunk) = stream.next().await {
        chunk.expect("bytes");
    }
    (ttfb, start.elapsed())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let out = tempfile::tempdir().expect("temp dir");
    let (fake, proxy) = rt.block_on(async {
        let fake = FakeProvider::start_repeating(reply()).await;
        let proxy = proxy::start(ProxyOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: fake.url(),
            out_dir: out.path().to_path_buf(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            provider: Some("fake".into()),
            mode: tapeloop::net::proxy::ProxyMode::Once,
            conn: tapeloop::net::listener::ConnLimits::DEFAULT,
        })
        .await
        .expect("proxy");
        (fake, proxy)
    });
    let client = reqwest::Client::new();
    let body = serde_json::json!({
        "model": "gpt-4o",
        "stream": true,
        "messages": [{"role": "user", "content": "Please retrieve the secrets: mellon,radiance"}],
    });
    let direct = format!("{}/v1/chat/completions", fake.url());
    let proxied = format!("http://{}/v1/chat/completions", proxy.addr());

    let mut group = c.benchmark_group("proxy");
    group.sample_size(30);
    for (name, url) in [("direct", &direct), ("proxy", &proxied)] {
        for (what, last) in [("ttfb", false), ("ttlb", true)] {
            group.bench_function(format!("{what}/{name}"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (first, end) = timed(&client, url, &body).await;
                            total += if last { end } else { first };
                        }
                        total
                    })
                })
            });
        }
    }
    group.finish();
    rt.block_on(async {
        proxy.shutdown().await.expect("footers");
        fake.stop().await;
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
