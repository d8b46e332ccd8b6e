//! Helpers shared by the OpenAI chat and Responses adapter tests: fixture loading, decoding in
//! arbitrary chunkings, a per-file summary to compare against hand-computed tables, an event
//! well-formedness check, and a small seeded RNG (no extra dev-dependency).
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;
use tapeloop::conversation::AssistantPart;
use tapeloop::event::{
    EndOutcome, ErrorClass, FinishReason, ProviderError, StreamEvent, ToolCall, Usage,
};
use tapeloop::http::Headers;
use tapeloop::provider::{decode_ndjson, decode_response, Api, ResponseDecoder};

pub const STREAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/provider-streams"
);

pub fn path(rel: &str) -> String {
    format!("{STREAMS}/{rel}")
}

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Which wire API a stream fixture belongs to: everything under `openai-responses/` and the
/// compatible files named `*responses*` are Responses streams; the rest are chat streams.
pub fn api_of(rel: &str) -> Api {
    if rel.starts_with("openai-responses/") || rel.contains("responses") {
        Api::OpenAiResponses
    } else {
        Api::OpenAiChat
    }
}

/// Every stream fixture of `api` in the three OpenAI directories, as `dir/file`.
pub fn fixtures_of(api: Api) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for dir in ["openai-chat", "openai-responses", "openai-compatible"] {
        for entry in std::fs::read_dir(path(dir)).expect("fixture dir") {
            let name = entry.expect("dir entry").file_name();
            let rel = format!("{dir}/{}", name.to_string_lossy());
            if api_of(&rel) == api {
                set.insert(rel);
            }
        }
    }
    set
}

/// Decode a fixture the way production does: `.sse` bodies through the full response decoder
/// (SSE framing included), vercel `.chunks.txt` NDJSON through `decode_ndjson`.
pub fn decode_fixture(rel: &str) -> Vec<StreamEvent> {
    let api = api_of(rel);
    let bytes = read(rel);
    if rel.ends_with(".chunks.txt") {
        decode_ndjson(api, &String::from_utf8_lossy(&bytes))
    } else {
        decode_response(
            api,
            200,
            &Headers::new(),
            [bytes.as_slice()],
            EndOutcome::Complete,
        )
    }
}

/// The fixture as an SSE body: `.sse` files as recorded; NDJSON lines re-framed as
/// `data: …\n\n` events, which decode to the same events as `decode_ndjson`.
pub fn sse_body(rel: &str) -> Vec<u8> {
    let bytes = read(rel);
    if !rel.ends_with(".chunks.txt") {
        return bytes;
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::with_capacity(bytes.len() + 16 * text.lines().count());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// Decode `body` fed in pieces cut at `cuts` (sorted byte offsets).
pub fn decode_in_pieces(
    api: Api,
    body: &[u8],
    cuts: &[usize],
    outcome: EndOutcome,
) -> Vec<StreamEvent> {
    let mut dec = ResponseDecoder::new(api);
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        let c = c.clamp(start, body.len());
        dec.feed(&body[start..c], &mut out);
        start = c;
    }
    dec.finish(outcome, &mut out);
    out
}

/// xorshift64* — deterministic, seeded, good enough to pick cut points and bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A seed derived from the fixture name, so every file gets its own stable cases.
pub fn seed_for(rel: &str) -> u64 {
    rel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// What a decoded response amounts to.
#[derive(Debug, Default)]
pub struct Summary {
    pub usage: Option<Usage>,
    pub finish: Option<(FinishReason, Option<String>)>,
    pub error: Option<ProviderError>,
    pub tools: Vec<(String, Value)>,
    pub text_chars: usize,
    pub reasoning_chars: usize,
    pub refusal: String,
}

pub fn summarize(events: &[StreamEvent]) -> Summary {
    let mut s = Summary::default();
    for ev in events {
        match ev {
            StreamEvent::TextDelta { text, .. } => s.text_chars += text.chars().count(),
            StreamEvent::ReasoningDelta { text, .. } => s.reasoning_chars += text.chars().count(),
            StreamEvent::RefusalDelta { text, .. } => s.refusal.push_str(text),
            StreamEvent::ToolCall(ToolCall {
                tool,
                input,
                provider_executed: false,
                ..
            }) => s.tools.push((tool.clone(), input.clone())),
            StreamEvent::FinishStep {
                finish_reason,
                raw_finish_reason,
                usage,
            } => {
                s.finish = Some((*finish_reason, raw_finish_reason.clone()));
                s.usage = Some(*usage);
            }
            StreamEvent::Error(e) => s.error = Some(e.clone()),
            _ => {}
        }
    }
    s
}

/// Structural rules every decoded response must follow, whatever the input bytes:
/// `start-step` first and only once; exactly one terminal event (`finish-step` or `error`),
/// last; every delta inside an open block of its kind; every block closed before the end;
/// tool calls announced by `tool-input-start` and closed by `tool-input-end`.
pub fn check_well_formed(events: &[StreamEvent]) -> Result<(), String> {
    if events.first() != Some(&StreamEvent::StartStep) {
        return Err("first event is not start-step".into());
    }
    let mut open: Vec<(char, String)> = Vec::new();
    let mut tools_open: Vec<String> = Vec::new();
    let last = events.len() - 1;
    for (i, ev) in events.iter().enumerate().skip(1) {
        let terminal = matches!(ev, StreamEvent::FinishStep { .. } | StreamEvent::Error(_));
        if terminal != (i == last) {
            return Err(format!(
                "event {i} ({}) vs terminal position",
                ev.type_name()
            ));
        }
        let need = |kind: char, id: &str| {
            if open.iter().any(|(k, o)| *k == kind && o == id) {
                Ok(())
            } else {
                Err(format!(
                    "event {i} ({}) outside an open block",
                    ev.type_name()
                ))
            }
        };
        match ev {
            StreamEvent::StartStep => return Err(format!("second start-step at {i}")),
            StreamEvent::TextStart { id } | StreamEvent::ReasoningStart { id, .. } => {
                let kind = if ev.type_name() == "text-start" {
                    't'
                } else {
                    'r'
                };
                if open.iter().any(|(k, o)| *k == kind && o == id) {
                    return Err(format!("block {id} opened twice"));
                }
                open.push((kind, id.clone()));
            }
            StreamEvent::TextDelta { id, .. } => need('t', id)?,
            StreamEvent::ReasoningDelta { id, .. } => need('r', id)?,
            StreamEvent::TextEnd { id } | StreamEvent::ReasoningEnd { id, .. } => {
                let kind = if ev.type_name() == "text-end" {
                    't'
                } else {
                    'r'
                };
                need(kind, id)?;
                open.retain(|(k, o)| !(*k == kind && o == id));
            }
            StreamEvent::ToolInputStart { id, .. } => tools_open.push(id.clone()),
            StreamEvent::ToolInputDelta { id, .. } if !tools_open.contains(id) => {
                return Err(format!("tool-input-delta for unopened {id}"));
            }
            StreamEvent::ToolInputEnd { id } => {
                let Some(p) = tools_open.iter().position(|t| t == id) else {
                    return Err(format!("tool-input-end for unopened {id}"));
                };
                tools_open.remove(p);
            }
            StreamEvent::FinishStep { .. } if !open.is_empty() || !tools_open.is_empty() => {
                return Err(format!(
                    "finish-step with open blocks {open:?} {tools_open:?}"
                ));
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(format!("blocks never closed: {open:?}"));
    }
    Ok(())
}

/// The expected end of a fixture.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Finish(FinishReason, &'static str),
    Error(ErrorClass, bool),
}

/// One row of a hand-computed fixture table. `usage` is `[input, output, reasoning,
/// cache_read, cache_write]`; tool arguments are compact JSON in the model's key order.
pub struct Case {
    pub file: &'static str,
    pub usage: [u64; 5],
    pub outcome: Outcome,
    pub tools: &'static [(&'static str, &'static str)],
    pub text_chars: usize,
    pub reasoning_chars: usize,
}

/// Check every row, and that the table lists exactly the fixtures of `api`.
pub fn run_table(api: Api, cases: &[Case]) {
    let listed: BTreeSet<String> = cases.iter().map(|c| c.file.to_string()).collect();
    assert_eq!(listed.len(), cases.len(), "duplicate rows");
    let on_disk = fixtures_of(api);
    let missing: Vec<_> = on_disk.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "fixtures missing from the table: {missing:?}"
    );
    assert!(stale.is_empty(), "table rows without a fixture: {stale:?}");

    let mut failures = Vec::new();
    for c in cases {
        let events = decode_fixture(c.file);
        if let Err(e) = check_well_formed(&events) {
            failures.push(format!("{}: malformed: {e}", c.file));
            continue;
        }
        let s = summarize(&events);
        let mut fail = |what: &str, got: String, want: String| {
            if got != want {
                failures.push(format!("{}: {what}: got {got}, want {want}", c.file));
            }
        };
        match c.outcome {
            Outcome::Finish(reason, raw) => {
                let [input, output, reasoning, cache_read, cache_write] = c.usage;
                let want = Usage {
                    input,
                    output,
                    reasoning,
                    cache_read,
                    cache_write,
                };
                fail(
                    "usage",
                    format!("{:?}", s.usage),
                    format!("{:?}", Some(want)),
                );
                fail(
                    "finish",
                    format!("{:?}", s.finish),
                    format!("{:?}", Some((reason, Some(raw.to_string())))),
                );
                fail("error", format!("{:?}", s.error), "None".into());
            }
            Outcome::Error(class, retryable) => {
                fail(
                    "error",
                    format!("{:?}", s.error.as_ref().map(|e| (e.class, e.retryable))),
                    format!("{:?}", Some((class, retryable))),
                );
                fail("finish", format!("{:?}", s.finish), "None".into());
            }
        }
        let want_tools: Vec<(String, Value)> = c
            .tools
            .iter()
            .map(|(n, a)| (n.to_string(), serde_json::from_str(a).expect("table JSON")))
            .collect();
        // Compare as text too, so key order counts.
        fail(
            "tools",
            serde_json::to_string(&s.tools).unwrap_or_default(),
            serde_json::to_string(&want_tools).unwrap_or_default(),
        );
        fail(
            "text chars",
            s.text_chars.to_string(),
            c.text_chars.to_string(),
        );
        fail(
            "reasoning chars",
            s.reasoning_chars.to_string(),
            c.reasoning_chars.to_string(),
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every fixture of `api` decodes to the same events in random chunkings (including one byte
/// at a time for small files) as in one read.
pub fn run_split_invariance(api: Api) {
    for rel in fixtures_of(api) {
        let body = sse_body(&rel);
        let whole = decode_in_pieces(api, &body, &[], EndOutcome::Complete);
        if rel.ends_with(".chunks.txt") {
            assert_eq!(
                whole,
                decode_fixture(&rel),
                "{rel}: re-framed NDJSON differs"
            );
        }
        let mut rng = Rng::new(seed_for(&rel));
        for round in 0..12 {
            let mut cuts: Vec<usize> = if round == 0 && body.len() <= 12_000 {
                (1..body.len()).collect()
            } else {
                let n = 1 + rng.below(64);
                (0..n).map(|_| rng.below(body.len() + 1)).collect()
            };
            cuts.sort_unstable();
            let got = decode_in_pieces(api, &body, &cuts, EndOutcome::Complete);
            assert!(got == whole, "{rel}: chunking {round} changed the events");
        }
    }
}

/// Cases per file: `default`, or `OPENAI_FUZZ_CASES` for a longer local run.
fn fuzz_cases(default: usize) -> usize {
    std::env::var("OPENAI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drop `*-end` events: a cut-off stream closes its blocks early, which is the only place its
/// events may differ from a prefix of the full decode.
fn without_ends(events: &[StreamEvent]) -> Vec<&StreamEvent> {
    events
        .iter()
        .filter(|e| {
            !matches!(
                e,
                StreamEvent::TextEnd { .. } | StreamEvent::ReasoningEnd { .. }
            )
        })
        .collect()
}

/// Random truncations of every fixture: no panic, well-formed events, and either the full
/// result (cut only trailing bytes) or an `Error` / a finish after a prefix of the full events.
pub fn run_truncation_fuzz(api: Api, per_file: usize) {
    let per_file = fuzz_cases(per_file);
    for rel in fixtures_of(api) {
        let body = sse_body(&rel);
        let full = decode_in_pieces(api, &body, &[], EndOutcome::Complete);
        let full_cmp = without_ends(&full);
        let mut rng = Rng::new(seed_for(&rel) ^ 0x7472_756e);
        for case in 0..per_file {
            let len = rng.below(body.len());
            let outcome = match case % 4 {
                0 => EndOutcome::Reset,
                _ => EndOutcome::Complete,
            };
            let got = decode_in_pieces(api, &body[..len], &[len / 2], outcome);
            if let Err(e) = check_well_formed(&got) {
                panic!("{rel}: cut at {len}: {e}");
            }
            if got == full {
                continue;
            }
            let last = got.last().expect("start-step at least");
            if outcome == EndOutcome::Reset {
                assert!(
                    matches!(last, StreamEvent::Error(_)),
                    "{rel}: cut at {len} with reset must fail"
                );
            }
            // Everything before the terminal event is a prefix of the full decode (modulo the
            // early block ends). A chat stream cut after its finish chunk finishes with
            // partial usage, so the terminal event itself is not compared.
            let got_cmp = without_ends(&got[..got.len() - 1]);
            assert!(
                got_cmp.len() <= full_cmp.len() && got_cmp[..] == full_cmp[..got_cmp.len()],
                "{rel}: cut at {len}: events are not a prefix of the full decode"
            );
        }
    }
}

/// Random byte corruption of every fixture: never a panic, always well-formed output.
pub fn run_corruption_fuzz(api: Api, per_file: usize) {
    let per_file = fuzz_cases(per_file);
    for rel in fixtures_of(api) {
        let body = sse_body(&rel);
        let mut rng = Rng::new(seed_for(&rel) ^ 0x636f_7272);
        for _ in 0..per_file {
            let mut bad = body.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bad.len());
                bad[at] = match rng.below(4) {
                    0 => b'"',
                    1 => b'\n',
                    2 => 0xFF,
                    _ => rng.next() as u8,
                };
            }
            let got = decode_in_pieces(api, &bad, &[bad.len() / 3], EndOutcome::Complete);
            if let Err(e) = check_well_formed(&got) {
                panic!("{rel}: corrupted body: {e}");
            }
        }
    }
}

/// The assistant parts a processor would build from a decoded response (used to check that
/// decoded provider data round-trips into the next request).
pub fn assistant_parts(events: &[StreamEvent]) -> Vec<AssistantPart> {
    let mut parts = Vec::new();
    let mut reasoning: Option<(String, Option<Value>)> = None;
    let mut text = String::new();
    for ev in events {
        match ev {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(t),
            StreamEvent::TextEnd { .. } => parts.push(AssistantPart::Text {
                text: std::mem::take(&mut text),
            }),
            StreamEvent::ReasoningStart { metadata, .. } => {
                reasoning = Some((String::new(), metadata.clone()))
            }
            StreamEvent::ReasoningDelta { text: t, .. } => {
                if let Some((r, _)) = reasoning.as_mut() {
                    r.push_str(t);
                }
            }
            StreamEvent::ReasoningEnd { metadata, .. } => {
                if let Some((text, start_meta)) = reasoning.take() {
                    parts.push(AssistantPart::Reasoning {
                        text,
                        metadata: metadata.clone().or(start_meta),
                    });
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
            _ => {}
        }
    }
    parts
}

/// Request bodies and response headers of a kept vcrpy cassette.
pub struct Interaction {
    pub body: Value,
    pub status: u16,
    pub headers: Headers,
}

pub fn cassette(rel: &str) -> Vec<Interaction> {
    let text = std::fs::read_to_string(path(&format!("cassettes/{rel}"))).expect("cassette");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("cassette yaml");
    let mut out = Vec::new();
    for it in doc["interactions"].as_sequence().expect("interactions") {
        let req = &it["request"];
        let body = match (&req["body"], &req["parsed_body"]) {
            (serde_yaml::Value::String(s), _) => serde_json::from_str(s).unwrap_or(Value::Null),
            (_, pb) if !pb.is_null() => serde_json::to_value(pb).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let resp = &it["response"];
        let status = resp["status"]["code"].as_u64().unwrap_or(0) as u16;
        let mut headers = Headers::new();
        if let Some(map) = resp["headers"].as_mapping() {
            for (k, v) in map {
                let value = match v {
                    serde_yaml::Value::Sequence(s) => s.first().and_then(|x| x.as_str()),
                    other => other.as_str(),
                };
                if let (Some(k), Some(v)) = (k.as_str(), value) {
                    headers.insert(k, v);
                }
            }
        }
        out.push(Interaction {
            body,
            status,
            headers,
        });
    }
    out
}

/// The JSON type name of a value, for shape comparisons.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `(key, type)` pairs of an object, sorted.
pub fn shape(v: &Value) -> BTreeSet<(String, &'static str)> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), kind(v))).collect())
        .unwrap_or_default()
}

/// Decode one SSE body given as text (a 200 response ending with `outcome`).
pub fn decode_sse_text(api: Api, body: &str, outcome: EndOutcome) -> Vec<StreamEvent> {
    decode_response(api, 200, &Headers::new(), [body.as_bytes()], outcome)
}

/// The error events, in order.
pub fn errors(events: &[StreamEvent]) -> Vec<&ProviderError> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Error(e) => Some(e),
            _ => None,
        })
        .collect()
}
