//! `tapeloop events` and `tapeloop import`, checked against the library's own decoding paths.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use tapeloop::cassette::import::import_file;
use tapeloop::cassette::Cassette;
use tapeloop::event::{EndOutcome, StreamEvent};
use tapeloop::http::Headers;
use tapeloop::provider::{decode_ndjson, decode_response, Api};
use tapeloop::sse::SseDecoder;

const STREAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams"
);
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cassettes/read-loop.openai.jsonl"
);

fn tapeloop(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().expect("not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn jsonl(events: &[StreamEvent]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}

fn stream(rel: &str) -> String {
    format!("{STREAMS}/{rel}")
}

#[test]
fn events_on_raw_streams_match_the_library() {
    let sse = stream("anthropic/llm-anthropic__stream_events_text.sse");
    let bytes = std::fs::read(&sse).unwrap();
    let want = decode_response(
        Api::Anthropic,
        200,
        &Headers::new(),
        [bytes.as_slice()],
        EndOutcome::Complete,
    );
    let (code, out, err) = tapeloop(&["events", &sse]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, jsonl(&want));

    // Gemini JSON array, API detected from `"candidates"`.
    let json = stream("gemini/llm-gemini__tools_json_array.turn1.json");
    let bytes = std::fs::read(&json).unwrap();
    let want = decode_response(
        Api::Gemini,
        200,
        &Headers::new(),
        [bytes.as_slice()],
        EndOutcome::Complete,
    );
    assert_eq!(tapeloop(&["events", &json]).1, jsonl(&want));

    // NDJSON fixture goes through decode_ndjson.
    let nd = stream("openai-chat/vercel__text_usage.chunks.txt");
    let text = std::fs::read_to_string(&nd).unwrap();
    assert_eq!(
        tapeloop(&["events", &nd]).1,
        jsonl(&decode_ndjson(Api::OpenAiChat, &text))
    );

    // An error body with --status is classified, not streamed.
    let e = stream("http-errors/openai_chat__401_stream_request.json");
    let (code, out, _) = tapeloop(&["events", "--api", "openai-chat", "--status", "401", &e]);
    assert_eq!(code, 0);
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["status"].as_u64()),
        (Some("error"), Some(401))
    );
}

#[test]
fn events_without_a_detectable_api_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mystery.json");
    std::fs::write(&p, b"{\"hello\":1}").unwrap();
    let (code, _, err) = tapeloop(&["events", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("--api"), "{err}");
}

#[test]
fn events_on_a_cassette_marks_each_interaction() {
    let (code, out, err) = tapeloop(&["events", FIXTURE]);
    assert_eq!(code, 0, "{err}");
    let c = Cassette::load(FIXTURE).unwrap();
    let mut want = String::new();
    for i in &c.interactions {
        want.push_str(&format!(
            "{{\"type\":\"interaction\",\"id\":{},\"step\":{},\"attempt\":{},\"status\":{}}}\n",
            i.id,
            i.step,
            i.attempt,
            i.response.as_ref().unwrap().status
        ));
        want.push_str(&jsonl(&i.decode(c.header.api)));
    }
    assert_eq!(out, want);
    let (code, table, _) = tapeloop(&["events", "--format", "table", FIXTURE]);
    assert_eq!(code, 0);
    assert!(
        table.contains("interaction 2 (step 1, attempt 2), status 200"),
        "{table}"
    );
    assert!(table.contains("rate-limited status=429"), "{table}");
    let (code, help, _) = tapeloop(&["events", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Examples:"));
}

fn find_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            find_yaml(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

/// The original body of a vcrpy interaction, decoded independently of the importer:
/// serde_yaml hands `!!binary` over as base64 text, which is recognised by its gzip magic.
fn original_body(resp: &serde_yaml::Value) -> Vec<u8> {
    use base64::Engine;
    if let Some(pb) = resp.get("parsed_body") {
        let json: serde_json::Value = serde_yaml::from_value(pb.clone()).unwrap();
        return serde_json::to_vec(&json).unwrap();
    }
    let s = match resp.get("body") {
        Some(b) => b
            .get("string")
            .unwrap_or(b)
            .as_str()
            .unwrap_or("")
            .to_string(),
        None => String::new(),
    };
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.starts_with("H4sI") {
        if let Ok(gz) = base64::engine::general_purpose::STANDARD.decode(&compact) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut out)
                .unwrap();
            return out;
        }
    }
    s.into_bytes()
}

fn yaml_headers(v: Option<&serde_yaml::Value>) -> Headers {
    let mut h = Headers::new();
    if let Some(m) = v.and_then(|v| v.as_mapping()) {
        for (k, vals) in m {
            let joined = match vals {
                serde_yaml::Value::Sequence(s) => s
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{x:?}"))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.as_str().unwrap_or("").to_string(),
            };
            h.insert(k.as_str().unwrap(), joined);
        }
    }
    h
}

fn sse_events(chunks: &[&[u8]]) -> Vec<tapeloop::sse::SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    d.finish(&mut out);
    out
}

#[test]
fn all_vcrpy_cassettes_import_and_keep_their_bodies() {
    let mut files = Vec::new();
    find_yaml(Path::new(&format!("{STREAMS}/cassettes")), &mut files);
    files.sort();
    assert_eq!(files.len(), 56, "expected the 56 kept vcrpy cassettes");
    let dir = tempfile::tempdir().unwrap();
    let (mut interactions, mut tools, mut skipped) = (0, 0, 0);
    for (n, yaml) in files.iter().enumerate() {
        let out = dir.path().join(format!("{n:02}.jsonl"));
        let imported = import_file(yaml, &out).unwrap_or_else(|e| panic!("{e}"));
        let c = Cassette::load(&out).unwrap_or_else(|e| panic!("{}: {e}", yaml.display()));
        assert!(c.footer.is_some() && !c.is_truncated());
        assert_eq!(c.interactions.len(), imported.interactions().count());
        tools += c.tools.len();

        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(yaml).unwrap()).unwrap();
        // Requests that are no model call (a metadata GET) are skipped, and named.
        let (recorded, other): (Vec<_>, Vec<_>) = doc["interactions"]
            .as_sequence()
            .unwrap()
            .iter()
            .partition(|r| {
                tapeloop::provider::wire::api_from_uri(r["request"]["uri"].as_str().unwrap())
                    .is_some()
            });
        assert_eq!(c.interactions.len(), recorded.len(), "{}", yaml.display());
        assert_eq!(imported.skipped.len(), other.len(), "{}", yaml.display());
        skipped += other.len();
        for (inter, rec) in c.interactions.iter().zip(recorded) {
            interactions += 1;
            let resp = &rec["response"];
            let status = resp["status"]["code"].as_u64().unwrap() as u16;
            let body = original_body(resp);
            let where_ = format!("{} interaction {}", yaml.display(), inter.id);
            assert_eq!(inter.response.as_ref().unwrap().status, status, "{where_}");
            assert!(inter.body() == body, "{where_}: body bytes changed");
            let chunks: Vec<&[u8]> = inter.chunks.iter().map(|c| c.bytes.as_slice()).collect();
            assert_eq!(
                sse_events(&chunks),
                sse_events(&[&body]),
                "{where_}: SSE events differ"
            );
            let want = decode_response(
                c.header.api,
                status,
                &yaml_headers(resp.get("headers")),
                [body.as_slice()],
                EndOutcome::Complete,
            );
            assert_eq!(inter.decode(c.header.api), want, "{where_}: events differ");
            // Secret request headers never survive.
            for (k, v) in inter.request.headers.iter() {
                if ["authorization", "x-api-key", "x-goog-api-key", "cookie"]
                    .contains(&k.to_ascii_lowercase().as_str())
                {
                    assert_eq!(v, "[REDACTED]", "{where_}: {k}");
                }
            }
        }
    }
    assert!(
        interactions >= 56 && tools > 0,
        "{interactions} interactions, {tools} tools"
    );
    assert_eq!(skipped, 1, "the one huggingface model-metadata GET");
    // The CLI's check accepts every imported cassette.
    let (code, out, _) = tapeloop(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checked 56 cassettes: 56 valid"), "{out}");
}

#[test]
fn import_cli_writes_next_to_the_input_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let src = stream(
        "cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/anthropic_claude_sonnet_4_0/stream.yaml",
    );
    let yaml = dir.path().join("stream.yaml");
    std::fs::copy(&src, &yaml).unwrap();
    let (code, _, err) = tapeloop(&["import", yaml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("imported 2 interactions and 2 tool results"),
        "{err}"
    );
    let c = Cassette::load(dir.path().join("stream.jsonl")).unwrap();
    assert_eq!(c.header.api, Api::Anthropic);
    assert_eq!(c.header.provider.as_deref(), Some("anthropic"));
    assert_eq!(c.header.extra["timing"], "synthetic");
    assert_eq!(c.tools.len(), 2);
    assert!(c
        .tools
        .iter()
        .all(|t| t.step == 1 && t.tool == "secret_retrieval_tool"));
    assert!(
        c.interactions[0].chunks.len() > 5,
        "split at SSE event boundaries"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "interactions: [{request: 3}]\n").unwrap();
    let (code, _, err) = tapeloop(&[
        "import",
        bad.to_str().unwrap(),
        "-o",
        dir.path().join("o.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.yaml: interaction 1:"), "{err}");
    assert!(!dir.path().join("o.jsonl").exists());
}

#[test]
fn retried_identical_requests_share_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let src = stream("cassettes/pydantic-ai/tests/models/cassettes/test_openrouter/test_openrouter_errors_raised.yaml");
    let c = {
        let out = dir.path().join("o.jsonl");
        import_file(Path::new(&src), &out).unwrap();
        Cassette::load(&out).unwrap()
    };
    let sa: Vec<(u32, u32)> = c.interactions.iter().map(|i| (i.step, i.attempt)).collect();
    assert_eq!(sa, [(1, 1), (1, 2), (1, 3)]);
    assert_eq!(c.header.provider.as_deref(), Some("openrouter"));
}
