//! Shared helpers for the Anthropic and Gemini adapter tests: fixture access, decoding in
//! arbitrary chunkings, event summaries, a seeded RNG and request-body shape comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tapeloop::conversation::AssistantPart;
use tapeloop::event::{
    EndOutcome, ErrorClass, FinishReason, ProviderError, StreamEvent, ToolCall, Usage,
};
use tapeloop::http::Headers;
use tapeloop::provider::{decode_ndjson, decode_response, Api};

pub const STREAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams"
);

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(STREAMS).join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// File names in one fixture directory, sorted.
pub fn list_dir(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(dir))
        .unwrap_or_else(|e| panic!("list {dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn is_ndjson(name: &str) -> bool {
    name.ends_with(".chunks.txt")
}

/// Decode a body given as chunks (a 200 response).
pub fn decode_chunks(api: Api, chunks: &[&[u8]], outcome: EndOutcome) -> Vec<StreamEvent> {
    decode_response(api, 200, &Headers::new(), chunks.iter().copied(), outcome)
}

/// Decode a fixture file the way its format requires (`.chunks.txt` via `decode_ndjson`).
pub fn decode_file(api: Api, rel: &str) -> Vec<StreamEvent> {
    let bytes = read(rel);
    decode_bytes(api, rel, &bytes, EndOutcome::Complete)
}

pub fn decode_bytes(api: Api, name: &str, bytes: &[u8], outcome: EndOutcome) -> Vec<StreamEvent> {
    if is_ndjson(name) {
        // `decode_ndjson` always ends `complete`; other outcomes go through SSE re-framing.
        let text = String::from_utf8_lossy(bytes);
        if outcome == EndOutcome::Complete {
            decode_ndjson(api, &text)
        } else {
            ndjson_as_sse_events(api, &text, outcome)
        }
    } else {
        decode_chunks(api, &[bytes], outcome)
    }
}

/// The NDJSON lines re-framed as SSE `data:` events and decoded through `decode_response`.
pub fn ndjson_as_sse_events(api: Api, text: &str, outcome: EndOutcome) -> Vec<StreamEvent> {
    let sse = ndjson_to_sse(text);
    decode_chunks(api, &[sse.as_bytes()], outcome)
}

pub fn ndjson_to_sse(text: &str) -> String {
    let mut sse = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        sse.push_str("data: ");
        sse.push_str(line);
        sse.push_str("\n\n");
    }
    sse
}

/// What a table row asserts about a decoded stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
    pub raw: Option<String>,
    /// `(tool, input, provider_executed)` of every `tool-call`, in order.
    pub tools: Vec<(String, Value, bool)>,
    pub text_chars: usize,
    pub errors: Vec<ProviderError>,
}

pub fn summarize(events: &[StreamEvent]) -> Summary {
    let mut s = Summary {
        usage: None,
        finish: None,
        raw: None,
        tools: Vec::new(),
        text_chars: 0,
        errors: Vec::new(),
    };
    for ev in events {
        match ev {
            StreamEvent::FinishStep {
                finish_reason,
                raw_finish_reason,
                usage,
            } => {
                s.usage = Some(*usage);
                s.finish = Some(*finish_reason);
                s.raw = raw_finish_reason.clone();
            }
            StreamEvent::ToolCall(ToolCall {
                tool,
                input,
                provider_executed,
                ..
            }) => s
                .tools
                .push((tool.clone(), input.clone(), *provider_executed)),
            StreamEvent::TextDelta { text, .. } => s.text_chars += text.chars().count(),
            StreamEvent::Error(e) => s.errors.push(e.clone()),
            _ => {}
        }
    }
    s
}

/// Structural invariants every decoded stream must satisfy: `start-step` first and only
/// once, exactly one terminal event (`finish-step` or `error`) and it is the last one.
pub fn assert_well_formed(events: &[StreamEvent], ctx: &str) {
    assert!(
        matches!(events.first(), Some(StreamEvent::StartStep)),
        "{ctx}: first event must be start-step: {events:?}"
    );
    let starts = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::StartStep))
        .count();
    assert_eq!(starts, 1, "{ctx}: start-step emitted {starts} times");
    let terminals: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, StreamEvent::FinishStep { .. } | StreamEvent::Error(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        terminals,
        vec![events.len() - 1],
        "{ctx}: exactly one terminal event, last; got terminals at {terminals:?} of {}",
        events.len()
    );
}

pub fn usage(input: u64, output: u64, reasoning: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        input,
        output,
        reasoning,
        cache_read,
        cache_write,
    }
}

/// xorshift64*: a small seeded RNG so fuzz and split cases replay identically.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Seed derived from a file name, so each fixture gets its own stable cases.
pub fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Split `bytes` at random points into 1..=max_parts pieces.
pub fn random_split<'a>(bytes: &'a [u8], rng: &mut Rng, max_parts: usize) -> Vec<&'a [u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    let parts = 1 + rng.below(max_parts);
    let mut cuts: Vec<usize> = (0..parts - 1).map(|_| rng.below(bytes.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(parts);
    let mut prev = 0;
    for c in cuts {
        out.push(&bytes[prev..c]);
        prev = c;
    }
    out.push(&bytes[prev..]);
    out
}

/// How many fuzz cases a file gets: a few hundred for small files, fewer for big ones.
pub fn fuzz_cases(len: usize) -> usize {
    (400_000 / len.max(1)).clamp(12, 200)
}

/// Builds the assistant message parts a processor would keep from decoded events: text and
/// reasoning per block (start and end metadata merged), tool calls and provider tool results.
pub fn assistant_parts(events: &[StreamEvent]) -> Vec<AssistantPart> {
    let mut parts: Vec<AssistantPart> = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    let index_of =
        |open: &Vec<(String, usize)>, id: &str| open.iter().find(|(i, _)| i == id).map(|(_, p)| *p);
    for ev in events {
        match ev {
            StreamEvent::TextStart { id } => {
                open.push((format!("t{id}"), parts.len()));
                parts.push(AssistantPart::Text {
                    text: String::new(),
                });
            }
            StreamEvent::TextDelta { id, text } => {
                if let Some(p) = index_of(&open, &format!("t{id}")) {
                    if let AssistantPart::Text { text: t } = &mut parts[p] {
                        t.push_str(text);
                    }
                }
            }
            StreamEvent::ReasoningStart { id, metadata } => {
                open.push((format!("r{id}"), parts.len()));
                parts.push(AssistantPart::Reasoning {
                    text: String::new(),
                    metadata: metadata.clone(),
                });
            }
            StreamEvent::ReasoningDelta { id, text } => {
                if let Some(p) = index_of(&open, &format!("r{id}")) {
                    if let AssistantPart::Reasoning { text: t, .. } = &mut parts[p] {
                        t.push_str(text);
                    }
                }
            }
            StreamEvent::ReasoningEnd { id, metadata } => {
                if let Some(p) = index_of(&open, &format!("r{id}")) {
                    if let AssistantPart::Reasoning { metadata: m, .. } = &mut parts[p] {
                        match (m.as_mut(), metadata) {
                            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                                for (k, v) in b {
                                    a.insert(k.clone(), v.clone());
                                }
                            }
                            (None, Some(b)) => *m = Some(b.clone()),
                            _ => {}
                        }
                    }
                }
            }
            StreamEvent::ToolCall(ToolCall {
                id,
                tool,
                input,
                provider_executed,
                metadata,
            }) => parts.push(AssistantPart::ToolCall(ToolCall {
                id: id.clone(),
                tool: tool.clone(),
                input: input.clone(),
                provider_executed: *provider_executed,
                metadata: metadata.clone(),
            })),
            StreamEvent::ToolResult {
                id, tool, output, ..
            } => parts.push(AssistantPart::ToolResult {
                id: id.clone(),
                tool: tool.clone(),
                output: output.clone(),
            }),
            _ => {}
        }
    }
    parts
}

/// The JSON request bodies of every interaction in a vcrpy cassette.
pub fn cassette_request_bodies(rel: &str) -> Vec<Value> {
    let text = String::from_utf8(read(rel)).expect("cassette is UTF-8");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("cassette parses as YAML");
    let interactions = doc["interactions"].as_sequence().expect("interactions");
    interactions
        .iter()
        .map(|it| {
            let body = &it["request"]["body"];
            let s = match body {
                serde_yaml::Value::String(s) => s.clone(),
                other => other["string"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{rel}: request body not a string"))
                    .to_string(),
            };
            serde_json::from_str(&s).unwrap_or_else(|e| panic!("{rel}: body JSON: {e}"))
        })
        .collect()
}

/// Recursively remove the given keys from every object.
pub fn strip_keys(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !keys.contains(&k.as_str()));
            m.values_mut().for_each(|x| strip_keys(x, keys));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_keys(x, keys)),
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same shape: identical key sets on every object, same JSON types, arrays of the same
/// length compared element-wise. A `null` on the reference side matches any type (a client
/// that sends `description: null` where we send a string). Values are not compared.
pub fn assert_same_shape(ours: &Value, theirs: &Value, path: &str) {
    if theirs.is_null() {
        return;
    }
    assert_eq!(
        type_name(ours),
        type_name(theirs),
        "type differs at {path}: ours {ours} vs theirs {theirs}"
    );
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "keys differ at {path}");
            for (k, va) in a {
                assert_same_shape(va, &b[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "array length differs at {path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same_shape(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

/// A fixture of `dir` as SSE bytes (vercel NDJSON files are framed as SSE first).
pub fn fixture_as_sse(dir: &str, name: &str) -> Vec<u8> {
    let bytes = read(&format!("{dir}/{name}"));
    if is_ndjson(name) {
        ndjson_to_sse(&String::from_utf8(bytes).unwrap()).into_bytes()
    } else {
        bytes
    }
}

/// Every fixture of `dir` decodes to the same events whatever its chunking: seeded random
/// splits, and one byte at a time for small files.
pub fn assert_chunking_invariance(api: Api, dir: &str) {
    for name in list_dir(dir) {
        let bytes = fixture_as_sse(dir, &name);
        let whole = decode_chunks(api, &[&bytes], EndOutcome::Complete);
        assert_well_formed(&whole, &name);
        let mut rng = Rng::new(seed_for(&name));
        let cases = if bytes.len() > 100_000 { 4 } else { 24 };
        for case in 0..cases {
            let parts = random_split(&bytes, &mut rng, 64);
            let got = decode_chunks(api, &parts, EndOutcome::Complete);
            assert_eq!(got, whole, "{name}: chunking case {case}");
        }
        if bytes.len() < 8_000 {
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(
                decode_chunks(api, &singles, EndOutcome::Complete),
                whole,
                "{name}: 1-byte chunks"
            );
        }
    }
}

/// Random truncations and byte corruptions of every fixture of `dir` end in an error or in
/// fewer events, never a panic. A truncated stream may only succeed once `terminal` (the
/// payload carrying the final usage and finish reason) is complete, and then with exactly the
/// full stream's finish-step.
pub fn assert_truncation_and_corruption_are_safe(api: Api, dir: &str, terminal: &[u8]) {
    let marker = String::from_utf8_lossy(terminal);
    for name in list_dir(dir) {
        let bytes = fixture_as_sse(dir, &name);
        let whole = decode_chunks(api, &[&bytes], EndOutcome::Complete);
        let mut rng = Rng::new(seed_for(&name) ^ 0x5eed);
        for case in 0..fuzz_cases(bytes.len()) {
            let cut = rng.below(bytes.len());
            let ev = decode_chunks(api, &[&bytes[..cut]], EndOutcome::Complete);
            assert_well_formed(&ev, &format!("{name} truncated at {cut}"));
            let has_terminal = bytes[..cut].windows(terminal.len()).any(|w| w == terminal);
            match ev.last() {
                Some(finish @ StreamEvent::FinishStep { .. }) => {
                    assert!(
                        has_terminal,
                        "{name}: cut at {cut} finished without {marker}"
                    );
                    assert_eq!(Some(finish), whole.last(), "{name}: cut at {cut}");
                }
                Some(StreamEvent::Error(e)) => assert!(
                    matches!(e.class, ErrorClass::Network | ErrorClass::Protocol),
                    "{name}: {e:?}"
                ),
                other => panic!("{name}: cut at {cut} ended with {other:?}"),
            }
            assert!(ev.len() <= whole.len() + 1, "{name}: cut at {cut} grew");

            // Corruption: one to four random bytes replaced.
            let mut bad = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bad.len());
                bad[i] = (rng.next() & 0xff) as u8;
            }
            let ev = decode_chunks(api, &[&bad], EndOutcome::Complete);
            assert_well_formed(&ev, &format!("{name} corrupted case {case}"));
            let errored = matches!(ev.last(), Some(StreamEvent::Error(_)));
            assert!(
                errored || ev.len() <= whole.len(),
                "{name}: corruption case {case} grew without error"
            );
        }
    }
}

/// One fixture's expected decoding: values computed independently of the adapter.
pub struct Row {
    pub file: &'static str,
    pub usage: Usage,
    pub finish: FinishReason,
    pub raw: &'static str,
    /// `(tool, input JSON, provider_executed)`.
    pub tools: &'static [(&'static str, &'static str, bool)],
    pub text_chars: usize,
}

/// `usage` from a tuple, for compact tables.
pub fn u(t: (u64, u64, u64, u64, u64)) -> Usage {
    usage(t.0, t.1, t.2, t.3, t.4)
}

/// Every file in fixture directory `dir` has exactly one row in `rows`, and decodes to it.
pub fn assert_table(api: Api, dir: &str, rows: &[Row]) {
    let files = list_dir(dir);
    let unlisted: Vec<&String> = files
        .iter()
        .filter(|f| !rows.iter().any(|r| r.file == f.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "fixtures without a table row: {unlisted:?}"
    );
    for row in rows {
        assert!(
            files.iter().any(|f| f == row.file),
            "table row for a missing file {}",
            row.file
        );
        let events = decode_file(api, &format!("{dir}/{}", row.file));
        assert_well_formed(&events, row.file);
        let s = summarize(&events);
        assert!(s.errors.is_empty(), "{}: errors {:?}", row.file, s.errors);
        assert_eq!(s.usage, Some(row.usage), "{}: usage", row.file);
        assert_eq!(s.finish, Some(row.finish), "{}: finish", row.file);
        assert_eq!(s.raw.as_deref(), Some(row.raw), "{}: raw finish", row.file);
        let tools: Vec<(String, Value, bool)> = row
            .tools
            .iter()
            .map(|(n, j, p)| (n.to_string(), serde_json::from_str(j).unwrap(), *p))
            .collect();
        assert_eq!(s.tools, tools, "{}: tool calls", row.file);
        assert_eq!(s.text_chars, row.text_chars, "{}: text chars", row.file);
    }
}
