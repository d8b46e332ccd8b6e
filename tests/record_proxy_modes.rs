//! The recording proxy's record modes against the in-process fake provider: `once` records
//! into an empty directory and afterwards only replays; `new` replays what the directory holds
//! (matched by conversation) and records only new conversations, into new files, never
//! touching the old ones; `none` never forwards; `all` forwards everything.

mod support_fake;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support_fake::{FakeProvider, Reply};
use tapeloop::net::proxy::{self, ProxyMode, ProxyOptions};

const TURN1: &str = "openai-chat/mirascope__parallel_tool_calls.turn1.sse";

async fn start(upstream: String, dir: &Path, mode: ProxyMode) -> proxy::ProxyHandle {
    proxy::start(ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        out_dir: dir.to_path_buf(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        provider: Some("fake".into()),
        mode,
        conn: tapeloop::net::listener::ConnLimits::DEFAULT,
    })
    .await
    .expect("proxy starts")
}

fn conversation(prompt: &str) -> Value {
    json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": prompt}]})
}

/// The status, and whether the body is `want` (bodies are long: not printed).
async fn post_is(proxy: &proxy::ProxyHandle, body: &Value, want: &[u8]) -> (u16, bool) {
    let (status, got) = post(proxy, body).await;
    (status, got == want)
}

async fn post(proxy: &proxy::ProxyHandle, body: &Value) -> (u16, Vec<u8>) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{}/v1/chat/completions", proxy.addr()))
        .json(body)
        .send()
        .await
        .expect("the proxy answers");
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

fn jsonl(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_new_none_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let reply = Reply::fixture(TURN1, 7);
    let (a, b, c) = (conversation("a"), conversation("b"), conversation("c"));

    // once, empty directory: records.
    let fake = FakeProvider::start(vec![reply.clone(); 3]).await;
    let p = start(fake.url(), dir.path(), ProxyMode::Once).await;
    assert_eq!(post_is(&p, &a, &reply.body()).await, (200, true));
    p.shutdown().await.unwrap();
    assert_eq!(fake.received().len(), 1);
    fake.stop().await;
    let first = jsonl(dir.path());
    assert_eq!(first.len(), 1);
    let recorded = std::fs::read(&first[0]).unwrap();

    // once, with a cassette: replays it, refuses the rest, forwards nothing.
    let fake = FakeProvider::start(vec![reply.clone(); 3]).await;
    let p = start(fake.url(), dir.path(), ProxyMode::Once).await;
    assert_eq!(post_is(&p, &a, &reply.body()).await, (200, true));
    let (status, body) = post(&p, &b).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "tapeloop_not_recorded", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--mode new"));
    p.shutdown().await.unwrap();
    assert_eq!(fake.received().len(), 0, "nothing forwarded");
    fake.stop().await;

    // new: `a` replayed, `b` recorded into a new file; the old file is untouched.
    let fake = FakeProvider::start(vec![reply.clone(); 3]).await;
    let p = start(fake.url(), dir.path(), ProxyMode::New).await;
    assert_eq!(post_is(&p, &a, &reply.body()).await, (200, true));
    assert_eq!(post_is(&p, &b, &reply.body()).await, (200, true));
    p.shutdown().await.unwrap();
    assert_eq!(
        fake.received().len(),
        1,
        "only the new conversation went upstream"
    );
    fake.stop().await;
    let now = jsonl(dir.path());
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(std::fs::read(&first[0]).unwrap(), recorded);

    // none: both replayed, `c` refused.
    let fake = FakeProvider::start(vec![reply.clone(); 3]).await;
    let p = start(fake.url(), dir.path(), ProxyMode::None).await;
    assert_eq!(post_is(&p, &b, &reply.body()).await, (200, true));
    assert_eq!(post_is(&p, &a, &reply.body()).await, (200, true));
    assert_eq!(post(&p, &c).await.0, 400);
    p.shutdown().await.unwrap();
    assert_eq!(fake.received().len(), 0);
    fake.stop().await;

    // all: everything forwarded again.
    let fake = FakeProvider::start(vec![reply.clone(); 3]).await;
    let p = start(fake.url(), dir.path(), ProxyMode::All).await;
    assert_eq!(post_is(&p, &a, &reply.body()).await, (200, true));
    p.shutdown().await.unwrap();
    assert_eq!(fake.received().len(), 1);
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_cassette_in_the_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.jsonl"), "not a cassette\n").unwrap();
    let err = proxy::start(ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: "http://127.0.0.1:9".into(),
        out_dir: dir.path().to_path_buf(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        provider: None,
        mode: ProxyMode::New,
        conn: tapeloop::net::listener::ConnLimits::DEFAULT,
    })
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("broken.jsonl"), "{err}");
    assert_eq!("none".parse::<ProxyMode>(), Ok(ProxyMode::None));
}
