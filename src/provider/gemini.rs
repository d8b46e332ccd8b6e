//! Gemini / Vertex `streamGenerateContent`: stream decoding, HTTP error classification, request
//! bodies.
//!
//! Every payload (an SSE `data:` of `alt=sse`, or one element of the streamed JSON array) is a
//! whole `GenerateContentResponse`; only `candidates[0]` is read. There is no terminal event:
//! the stream ends at EOF, and a response is complete only if some chunk carried a
//! `finishReason` (see `reference/provider-stream-notes.md` §5).
//!
//! Mapping choices:
//! - Text and thought parts form blocks with adapter-chosen ids (`"0"`, `"1"`, …); a block
//!   stays open while parts of the same kind follow and closes when another kind arrives.
//! - `thoughtSignature` must round-trip: on a thought part it goes into `reasoning-end`
//!   metadata, on a function call into the `tool-call` metadata, and on a plain text part into
//!   an empty reasoning block emitted just before that text (`request_body` puts it back on
//!   the text part). The key is always `{"thoughtSignature":…}`.
//! - Gemini has no call ids unless the server sends `functionCall.id`: calls get `call_0`,
//!   `call_1`, … in stream order.
//! - Vertex streamed arguments (`partialArgs` with JSON paths) are assembled into the argument
//!   object; a `functionCall` without `willContinue: true` (the empty terminator, or the last
//!   partial chunk when the terminator is missing) completes the call, as does the
//!   `finishReason` chunk or the end of a finished stream.
//! - Usage is cumulative on every chunk, "last value wins" per field: input =
//!   `promptTokenCount − cachedContentTokenCount + toolUsePromptTokenCount` (grounding/search
//!   tool prompts are billed as input and counted in `totalTokenCount`), cache_read =
//!   `cachedContentTokenCount`, output = `candidatesTokenCount` (which excludes thoughts),
//!   reasoning = `thoughtsTokenCount`. So `Usage::total()` equals `totalTokenCount`.

use serde::Deserialize;
use serde_json::{json, Map, Number, Value};

use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions};
use crate::event::{EndOutcome, ErrorClass, FinishReason, ProviderError, StreamEvent, Usage};
use crate::http::{self, Headers};

use super::error::{body_text_message, error_json, network_error, protocol_error};

// ---------------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    candidates: Option<FirstCandidate>,
    usage_metadata: Option<UsageMetadata>,
    /// Boxed, like `error`: rare, and out of line they keep `Chunk` small to move.
    prompt_feedback: Option<Box<PromptFeedback>>,
    error: Option<Box<GoogleError>>,
}

/// `candidates`, reduced while parsing to its first element: only `candidates[0]` is read.
/// Every element is still parsed, so a malformed candidate fails the chunk exactly as a `Vec`
/// would, but no `Vec` is built per chunk.
struct FirstCandidate(Option<Candidate>);

impl<'de> Deserialize<'de> for FirstCandidate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FirstCandidate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                // What serde's `Vec` says, so error messages are unchanged.
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(c) = seq.next_element::<Candidate>()? {
                    if first.is_none() {
                        first = Some(c);
                    }
                }
                Ok(FirstCandidate(first))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    parts: Option<Vec<Part>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    thought: Option<bool>,
    thought_signature: Option<String>,
    function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCall {
    id: Option<String>,
    name: Option<String>,
    args: Option<Value>,
    partial_args: Option<Vec<PartialArg>>,
    will_continue: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialArg {
    json_path: Option<String>,
    string_value: Option<String>,
    number_value: Option<Number>,
    bool_value: Option<bool>,
    null_value: Option<Value>,
    struct_value: Option<Value>,
    list_value: Option<Value>,
    will_continue: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// `google.rpc.Status` as Google's JSON error bodies carry it.
#[derive(Deserialize, Default)]
struct GoogleError {
    code: Option<i64>,
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<GoogleError>,
}

// ---------------------------------------------------------------------------------------------
// Decoder

#[derive(Debug, Default, Clone, Copy)]
struct UsageAcc {
    prompt: Option<u64>,
    candidates: Option<u64>,
    thoughts: Option<u64>,
    cached: Option<u64>,
    tool_prompt: Option<u64>,
}

impl UsageAcc {
    /// A count present in `u` replaces the one held; an absent one keeps it.
    fn merge(&mut self, u: &UsageMetadata) {
        self.prompt = u.prompt_token_count.or(self.prompt);
        self.candidates = u.candidates_token_count.or(self.candidates);
        self.thoughts = u.thoughts_token_count.or(self.thoughts);
        self.cached = u.cached_content_token_count.or(self.cached);
        self.tool_prompt = u.tool_use_prompt_token_count.or(self.tool_prompt);
    }

    fn usage(&self) -> Usage {
        let cached = self.cached.unwrap_or(0);
        Usage {
            input: self.prompt.unwrap_or(0).saturating_sub(cached) + self.tool_prompt.unwrap_or(0),
            output: self.candidates.unwrap_or(0),
            reasoning: self.thoughts.unwrap_or(0),
            cache_read: cached,
            cache_write: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Reasoning,
}

/// A Vertex function call whose arguments are still streaming.
#[derive(Debug)]
struct PendingCall {
    id: String,
    name: String,
    args: Value,
    signature: Option<String>,
    /// JSON path of a string value that `willContinue`s into the next partial arg.
    continuing: Option<String>,
}

/// Decodes one Gemini `streamGenerateContent` response.
pub struct Decoder {
    /// The open text or reasoning block.
    open: Option<(BlockKind, String)>,
    /// Signature for the open reasoning block, emitted at its end.
    reasoning_signature: Option<String>,
    next_block: u32,
    next_call: u32,
    pending: Option<PendingCall>,
    saw_call: bool,
    finish: Option<String>,
    usage: UsageAcc,
    done: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            open: None,
            reasoning_signature: None,
            next_block: 0,
            next_call: 0,
            pending: None,
            saw_call: false,
            finish: None,
            usage: UsageAcc::default(),
            done: false,
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut Vec<StreamEvent>) {
        self.done = true;
        self.pending = None;
        self.open = None;
        out.push(StreamEvent::Error(err));
    }

    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        match self.open.take() {
            Some((BlockKind::Text, id)) => out.push(StreamEvent::TextEnd { id }),
            Some((BlockKind::Reasoning, id)) => out.push(StreamEvent::ReasoningEnd {
                id,
                metadata: self
                    .reasoning_signature
                    .take()
                    .map(|s| json!({ "thoughtSignature": s })),
            }),
            None => {}
        }
    }

    fn new_block_id(&mut self) -> String {
        let id = self.next_block.to_string();
        self.next_block += 1;
        id
    }

    /// The id of an open block of `kind`, opening one (and closing any other) if needed.
    fn block(&mut self, kind: BlockKind, out: &mut Vec<StreamEvent>) -> String {
        if let Some((k, id)) = &self.open {
            if *k == kind {
                return id.clone();
            }
        }
        self.close_block(out);
        let id = self.new_block_id();
        out.push(match kind {
            BlockKind::Text => StreamEvent::TextStart { id: id.clone() },
            BlockKind::Reasoning => StreamEvent::ReasoningStart {
                id: id.clone(),
                metadata: None,
            },
        });
        self.open = Some((kind, id.clone()));
        id
    }

    fn call_id(&mut self, given: Option<String>) -> String {
        let n = self.next_call;
        self.next_call += 1;
        given
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("call_{n}"))
    }

    fn emit_call(
        &mut self,
        id: String,
        name: String,
        args: Value,
        signature: Option<String>,
        started: bool,
        out: &mut Vec<StreamEvent>,
    ) {
        if !started {
            out.push(StreamEvent::ToolInputStart {
                id: id.clone(),
                tool: name.clone(),
                provider_executed: false,
            });
        }
        out.push(StreamEvent::ToolInputDelta {
            id: id.clone(),
            delta: args.to_string(),
        });
        out.push(StreamEvent::ToolInputEnd { id: id.clone() });
        out.push(StreamEvent::ToolCall {
            id,
            tool: name,
            input: args,
            provider_executed: false,
            metadata: signature.map(|s| json!({ "thoughtSignature": s })),
        });
        self.saw_call = true;
    }

    fn finish_pending(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(p) = self.pending.take() {
            self.emit_call(p.id, p.name, p.args, p.signature, true, out);
        }
    }

    fn part(&mut self, part: Part, out: &mut Vec<StreamEvent>) {
        if let Some(fc) = part.function_call {
            self.close_block(out);
            return self.function_call(fc, part.thought_signature, out);
        }
        let Some(text) = part.text else {
            // Inline data, executable code and other part kinds carry nothing we consume; a
            // lone signature still has to round-trip.
            if let Some(sig) = part.thought_signature {
                self.signature_block(sig, out);
            }
            return;
        };
        if part.thought == Some(true) {
            let id = self.block(BlockKind::Reasoning, out);
            if !text.is_empty() {
                out.push(StreamEvent::ReasoningDelta { id, text });
            }
            if let Some(sig) = part.thought_signature {
                self.reasoning_signature = Some(sig);
            }
            return;
        }
        if let Some(sig) = part.thought_signature {
            self.signature_block(sig, out);
        }
        if !text.is_empty() {
            let id = self.block(BlockKind::Text, out);
            out.push(StreamEvent::TextDelta { id, text });
        }
    }

    /// An empty reasoning block that only carries a signature found on a non-thought part.
    fn signature_block(&mut self, sig: String, out: &mut Vec<StreamEvent>) {
        self.close_block(out);
        let id = self.new_block_id();
        out.push(StreamEvent::ReasoningStart {
            id: id.clone(),
            metadata: None,
        });
        out.push(StreamEvent::ReasoningEnd {
            id,
            metadata: Some(json!({ "thoughtSignature": sig })),
        });
    }

    fn function_call(
        &mut self,
        fc: FunctionCall,
        signature: Option<String>,
        out: &mut Vec<StreamEvent>,
    ) {
        let will_continue = fc.will_continue == Some(true);
        if let Some(name) = fc.name.filter(|n| !n.is_empty()) {
            // A new call: any streamed call still open is complete.
            self.finish_pending(out);
            let id = self.call_id(fc.id);
            if will_continue || fc.partial_args.is_some() {
                out.push(StreamEvent::ToolInputStart {
                    id: id.clone(),
                    tool: name.clone(),
                    provider_executed: false,
                });
                let mut pending = PendingCall {
                    id,
                    name,
                    args: fc.args.unwrap_or_else(|| Value::Object(Map::new())),
                    signature,
                    continuing: None,
                };
                apply_partial_args(&mut pending, fc.partial_args.unwrap_or_default());
                self.pending = Some(pending);
                if !will_continue {
                    self.finish_pending(out);
                }
            } else {
                let args = match fc.args {
                    Some(v @ Value::Object(_)) => v,
                    _ => Value::Object(Map::new()),
                };
                self.emit_call(id, name, args, signature, false, out);
            }
            return;
        }
        // A continuation (partial args) or the empty terminator of the streamed call.
        if let Some(p) = self.pending.as_mut() {
            if p.signature.is_none() {
                p.signature = signature;
            }
            apply_partial_args(p, fc.partial_args.unwrap_or_default());
            if !will_continue {
                self.finish_pending(out);
            }
        } else if let Some(sig) = signature {
            self.signature_block(sig, out);
        }
    }

    fn chunk(&mut self, chunk: Chunk, out: &mut Vec<StreamEvent>) {
        if let Some(err) = chunk.error {
            return self.fail(classify(None, *err, None), out);
        }
        if let Some(u) = &chunk.usage_metadata {
            self.usage.merge(u);
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            // The prompt itself was blocked: no candidates follow.
            self.finish.get_or_insert(reason);
        }
        let Some(cand) = chunk.candidates.and_then(|c| c.0) else {
            return;
        };
        if let Some(parts) = cand.content.and_then(|c| c.parts) {
            for part in parts {
                self.part(part, out);
            }
        }
        if let Some(reason) = cand.finish_reason {
            self.finish_pending(out);
            self.close_block(out);
            self.finish = Some(reason);
        }
    }
}

/// Set the values of Vertex `partialArgs` into the call's argument object.
fn apply_partial_args(call: &mut PendingCall, args: Vec<PartialArg>) {
    for arg in args {
        let Some(path) = arg.json_path else { continue };
        let cont = arg.will_continue == Some(true);
        if let Some(s) = arg.string_value {
            let appending = call.continuing.as_deref() == Some(path.as_str());
            if let Some(slot) = json_path_slot(&mut call.args, &path) {
                match slot {
                    Value::String(existing) if appending => existing.push_str(&s),
                    _ => *slot = Value::String(s),
                }
            }
            call.continuing = cont.then_some(path);
            continue;
        }
        call.continuing = None;
        let value = if let Some(n) = arg.number_value {
            Value::Number(n)
        } else if let Some(b) = arg.bool_value {
            Value::Bool(b)
        } else if let Some(v) = arg.struct_value.or(arg.list_value) {
            v
        } else if arg.null_value.is_some() {
            Value::Null
        } else {
            continue;
        };
        if let Some(slot) = json_path_slot(&mut call.args, &path) {
            *slot = value;
        }
    }
}

/// The value at a simple JSON path (`$.a.b[2].c`, `$['k']`), creating objects and array
/// elements on the way. `None` for paths it cannot follow (a bad path, an index over 10 000).
fn json_path_slot<'v>(root: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut cur = root;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return None;
            }
            rest = &r[end..];
            cur = object_entry(cur, key);
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let inner = &r[..close];
            rest = &r[close + 1..];
            if let Some(key) = inner
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            {
                cur = object_entry(cur, key);
            } else {
                let idx: usize = inner.trim().parse().ok()?;
                if idx > 10_000 {
                    return None;
                }
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let arr = cur.as_array_mut()?;
                if arr.len() <= idx {
                    arr.resize(idx + 1, Value::Null);
                }
                cur = &mut arr[idx];
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

fn object_entry<'v>(v: &'v mut Value, key: &str) -> &'v mut Value {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m.entry(key.to_string()).or_insert(Value::Null),
        _ => unreachable!("just made an object"),
    }
}

/// Gemini `finishReason` → normalized reason (the AI SDK's mapping, unknown values → other).
fn map_finish_reason(raw: &str, had_calls: bool) -> FinishReason {
    match raw {
        "STOP" if had_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        "MALFORMED_FUNCTION_CALL" => FinishReason::Error,
        _ => FinishReason::Other,
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl super::PayloadDecoder for Decoder {
    fn payload(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        match serde_json::from_str::<Chunk>(data) {
            Ok(chunk) => self.chunk(chunk, out),
            Err(e) => self.fail(protocol_error(&e, data, ""), out),
        }
    }

    fn end(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        self.done = true;
        match (&self.finish, outcome) {
            (Some(_), EndOutcome::Complete) => {
                self.finish_pending(out);
                self.close_block(out);
                let raw = self.finish.take().unwrap_or_default();
                out.push(StreamEvent::FinishStep {
                    finish_reason: map_finish_reason(&raw, self.saw_call),
                    raw_finish_reason: Some(raw),
                    usage: self.usage.usage(),
                });
            }
            (None, EndOutcome::Complete) => {
                self.pending = None;
                out.push(StreamEvent::Error(network_error(
                    "stream ended without a finishReason".into(),
                )));
            }
            (_, outcome) => {
                self.pending = None;
                out.push(StreamEvent::Error(network_error(format!(
                    "stream ended ({})",
                    outcome.as_str()
                ))));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Classify a `google.rpc.Status` by its `status` name, then the HTTP status.
fn classify(
    http_status: Option<u16>,
    err: GoogleError,
    headers: Option<&Headers>,
) -> ProviderError {
    let status_code = http_status.or_else(|| err.code.and_then(|c| u16::try_from(c).ok()));
    let message = err
        .message
        .clone()
        .unwrap_or_else(|| err.status.clone().unwrap_or_else(|| "error".into()));
    let detail_str = |ty: &str, field: &str| -> Option<String> {
        err.details.iter().find_map(|d| {
            let t = d.get("@type")?.as_str()?;
            if t.ends_with(ty) {
                d.get(field)?.as_str().map(str::to_string)
            } else {
                None
            }
        })
    };
    let reason = detail_str("google.rpc.ErrorInfo", "reason");
    let retry_delay =
        detail_str("google.rpc.RetryInfo", "retryDelay").and_then(|d| http::parse_duration_ms(&d));
    let (class, mut retryable) = match err.status.as_deref() {
        Some("RESOURCE_EXHAUSTED") => (ErrorClass::RateLimited, true),
        Some("UNAVAILABLE") => (ErrorClass::Overloaded, true),
        Some("INTERNAL") | Some("UNKNOWN") | Some("DEADLINE_EXCEEDED") => {
            (ErrorClass::Server, true)
        }
        Some("UNAUTHENTICATED") | Some("PERMISSION_DENIED") => (ErrorClass::Auth, false),
        Some("INVALID_ARGUMENT")
            if matches!(
                reason.as_deref(),
                Some("API_KEY_INVALID") | Some("API_KEY_EXPIRED")
            ) =>
        {
            (ErrorClass::Auth, false)
        }
        Some("INVALID_ARGUMENT")
        | Some("NOT_FOUND")
        | Some("FAILED_PRECONDITION")
        | Some("OUT_OF_RANGE") => (ErrorClass::InvalidRequest, false),
        _ => match status_code {
            Some(s) => (http::class_for_status(s), http::status_is_retryable(s)),
            None => (ErrorClass::Server, true),
        },
    };
    let (class, retryable_final) = if http::is_context_overflow_message(&message) {
        (ErrorClass::ContextOverflow, false)
    } else {
        if let Some(s) = status_code {
            retryable = retryable || (http::status_is_retryable(s) && class != ErrorClass::Auth);
        }
        (class, retryable)
    };
    let header_wait = match (headers, status_code) {
        (Some(h), Some(s)) if s == 429 || s >= 500 => http::retry_after_ms(h, None),
        _ => None,
    };
    ProviderError {
        class,
        status: http_status,
        message,
        retryable: retryable_final,
        retry_after_ms: retry_delay.or(header_wait),
        code: err.status,
    }
}

/// Classify a non-2xx Gemini response. Gemini sends its JSON error under
/// `Content-Type: text/event-stream`, bare; SSE-framed and array-wrapped bodies work too. The
/// `RetryInfo.retryDelay` in the body is the requested wait; a `retry-after` header is the
/// fallback (429/5xx only).
pub fn classify_error(status: u16, headers: &Headers, body: &[u8]) -> ProviderError {
    let err = error_json(body)
        .and_then(|v| serde_json::from_value::<ErrorEnvelope>(v).ok())
        .and_then(|e| e.error);
    match err {
        Some(err) => classify(Some(status), err, Some(headers)),
        None => {
            let message = body_text_message(status, body);
            classify(
                Some(status),
                GoogleError {
                    message: Some(message),
                    ..GoogleError::default()
                },
                Some(headers),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// The `generateContent` body for a conversation (the model goes in the URL).
///
/// Assistant turns become `model` contents; tool results become `functionResponse` parts of a
/// `user` content (`response: {"output": …}`, or `{"error": …}` for failed tools).
/// Consecutive contents of the same role are merged. A reasoning part that only carries a
/// signature (text empty) puts that `thoughtSignature` back on the next text part, where it
/// came from; other reasoning parts go back as `thought: true` parts. Tool schemas drop the
/// keys Gemini's OpenAPI-subset `parameters` rejects (`$schema`, `additionalProperties`).
pub fn request_body(conv: &Conversation, opts: &RequestOptions) -> Value {
    let mut contents: Vec<Value> = Vec::new();
    let mut push =
        |role: &str, parts: Vec<Value>| super::push_turn(&mut contents, role, "parts", parts);
    for msg in &conv.messages {
        match msg {
            Message::User { content } => push("user", vec![json!({ "text": content })]),
            Message::Assistant { parts } => push("model", model_parts(parts)),
            Message::Tool { results } => {
                let parts = results
                    .iter()
                    .map(|r| {
                        let key = if r.is_error { "error" } else { "output" };
                        json!({ "functionResponse": {
                            "name": r.tool,
                            "response": { key: r.output },
                        }})
                    })
                    .collect();
                push("user", parts);
            }
        }
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if let Some(system) = conv.system.as_deref().filter(|s| !s.is_empty()) {
        body.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system }] }),
        );
    }
    if !conv.tools.is_empty() {
        let decls: Vec<Value> = conv
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "parameters": clean_schema(&t.schema),
                })
            })
            .collect();
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    }
    if let Some(max) = opts.max_output_tokens {
        body.insert("generationConfig".into(), json!({ "maxOutputTokens": max }));
    }
    Value::Object(body)
}

fn signature_of(metadata: &Option<Value>) -> Option<&str> {
    metadata.as_ref()?.get("thoughtSignature")?.as_str()
}

fn model_parts(parts: &[AssistantPart]) -> Vec<Value> {
    let mut out = Vec::with_capacity(parts.len());
    let mut carried: Option<&str> = None;
    for part in parts {
        match part {
            AssistantPart::Reasoning { text, metadata } if text.is_empty() => {
                if let Some(sig) = signature_of(metadata) {
                    if let Some(prev) = carried.replace(sig) {
                        out.push(json!({ "text": "", "thoughtSignature": prev }));
                    }
                }
            }
            AssistantPart::Reasoning { text, metadata } => {
                let mut p = json!({ "text": text, "thought": true });
                if let Some(sig) = signature_of(metadata) {
                    p["thoughtSignature"] = json!(sig);
                }
                out.push(p);
            }
            AssistantPart::Text { text } => {
                let mut p = json!({ "text": text });
                if let Some(sig) = carried.take() {
                    p["thoughtSignature"] = json!(sig);
                }
                out.push(p);
            }
            AssistantPart::ToolCall {
                tool,
                input,
                metadata,
                ..
            } => {
                let args = if input.is_object() {
                    input.clone()
                } else {
                    Value::Object(Map::new())
                };
                let mut p = json!({ "functionCall": { "name": tool, "args": args } });
                if let Some(sig) = signature_of(metadata).or(carried.take()) {
                    p["thoughtSignature"] = json!(sig);
                }
                out.push(p);
            }
            // Gemini has no provider-executed tool results to send back.
            AssistantPart::ToolResult { .. } => {}
        }
    }
    if let Some(sig) = carried {
        out.push(json!({ "text": "", "thoughtSignature": sig }));
    }
    out
}

/// A copy of a JSON schema without the keywords Gemini's `parameters` rejects. Keys of a
/// `properties` map are property names, not keywords, and are kept.
fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "$schema" | "additionalProperties"))
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("properties", Value::Object(props)) => Value::Object(
                            props
                                .iter()
                                .map(|(name, s)| (name.clone(), clean_schema(s)))
                                .collect(),
                        ),
                        _ => clean_schema(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `candidates` keeps the first element, still parses (and fails on) every element, and
    /// words its errors as serde's `Vec` did.
    #[test]
    fn first_candidate_only() {
        let pick = |json: &str| {
            serde_json::from_str::<Chunk>(json)
                .map(|c| c.candidates.and_then(|c| c.0).and_then(|c| c.finish_reason))
        };
        assert_eq!(
            pick(r#"{"candidates":[{"finishReason":"STOP"},{"finishReason":"MAX_TOKENS"}]}"#)
                .unwrap(),
            Some("STOP".to_string())
        );
        assert_eq!(pick(r#"{"candidates":[]}"#).unwrap(), None);
        assert_eq!(pick(r#"{"candidates":null}"#).unwrap(), None);
        assert!(pick(r#"{"candidates":[{},{"finishReason":7}]}"#).is_err());
        let err = pick(r#"{"candidates":{}}"#).unwrap_err().to_string();
        let vec_err = serde_json::from_str::<Vec<u8>>("{}")
            .unwrap_err()
            .to_string();
        assert_eq!(err.split(" at ").next(), vec_err.split(" at ").next());
    }
}
