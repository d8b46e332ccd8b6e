//! The Gemini stream decoder: `GenerateContentResponse` chunks to normalized events.

use serde_json::{json, Map, Value};

use super::error::classify;
use super::*;
use crate::event::{EndOutcome, FinishReason, ProviderError, StreamEvent, ToolCall, Usage};
use crate::limits::{Budget, LimitError, DEFAULT as LIMITS};
use crate::provider::error::{limit_error, network_error, protocol_error};

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
    /// Memory the assembled `partialArgs` of this response may take (JSON paths can ask for
    /// far more than their own size: `$[10000][10000]…`).
    args_budget: Budget,
    /// The limit that stopped decoding, if one did.
    limit: Option<LimitError>,
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
            args_budget: LIMITS.budget("the streamed function-call arguments of one response"),
            limit: None,
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut Vec<StreamEvent>) {
        self.done = true;
        self.pending = None;
        self.open = None;
        out.push(StreamEvent::Error(err));
    }

    /// Stop at a limit: the stream ends in a protocol error naming it, and
    /// [`limit_exceeded`](crate::provider::PayloadDecoder::limit_exceeded) reports it.
    fn fail_limit(&mut self, err: LimitError, out: &mut Vec<StreamEvent>) {
        self.fail(limit_error(&err), out);
        self.limit = Some(err);
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
        out.push(StreamEvent::ToolCall(ToolCall {
            id,
            tool: name,
            input: args,
            provider_executed: false,
            metadata: signature.map(|s| json!({ "thoughtSignature": s })),
        }));
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
                let applied = apply_partial_args(
                    &mut pending,
                    fc.partial_args.unwrap_or_default(),
                    &mut self.args_budget,
                );
                if let Err(e) = applied {
                    return self.fail_limit(e, out);
                }
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
            let applied = apply_partial_args(
                p,
                fc.partial_args.unwrap_or_default(),
                &mut self.args_budget,
            );
            if let Err(e) = applied {
                return self.fail_limit(e, out);
            }
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

/// Set the values of Vertex `partialArgs` into the call's argument object, charging what
/// they build to `budget`.
fn apply_partial_args(
    call: &mut PendingCall,
    args: Vec<PartialArg>,
    budget: &mut Budget,
) -> Result<(), LimitError> {
    for arg in args {
        let Some(path) = arg.json_path else { continue };
        let cont = arg.will_continue == Some(true);
        if let Some(s) = arg.string_value {
            let appending = call.continuing.as_deref() == Some(path.as_str());
            budget.charge(s.len())?;
            if let Some(slot) = json_path_slot(&mut call.args, &path, budget)? {
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
            // Parsed by serde_json, so at most 128 levels deep itself; its size was the
            // payload's.
            v
        } else if arg.null_value.is_some() {
            Value::Null
        } else {
            continue;
        };
        if let Some(slot) = json_path_slot(&mut call.args, &path, budget)? {
            *slot = value;
        }
    }
    Ok(())
}

/// Memory charged for one JSON value slot an argument path creates.
const SLOT_BYTES: usize = std::mem::size_of::<Value>();

/// The value at a simple JSON path (`$.a.b[2].c`, `$['k']`), creating objects and array
/// elements on the way. `Ok(None)` for paths it cannot follow (a bad path, an index over
/// 10 000); `Err` when the path has more segments than the depth limit or what it creates
/// would pass `budget`.
fn json_path_slot<'v>(
    root: &'v mut Value,
    path: &str,
    budget: &mut Budget,
) -> Result<Option<&'v mut Value>, LimitError> {
    let Some(mut rest) = path.trim().strip_prefix('$') else {
        return Ok(None);
    };
    let max_depth = budget.limits().max_depth;
    let mut cur = root;
    let mut depth = 0usize;
    while !rest.is_empty() {
        depth += 1;
        if depth > max_depth {
            return Err(LimitError::Depth {
                what: "a partialArgs jsonPath",
                limit: max_depth,
            });
        }
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Ok(None);
            }
            rest = &r[end..];
            cur = object_entry(cur, key, budget)?;
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else {
                return Ok(None);
            };
            let inner = &r[..close];
            rest = &r[close + 1..];
            if let Some(key) = inner
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            {
                cur = object_entry(cur, key, budget)?;
            } else {
                let Ok(idx) = inner.trim().parse::<usize>() else {
                    return Ok(None);
                };
                if idx > 10_000 {
                    return Ok(None);
                }
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let Some(arr) = cur.as_array_mut() else {
                    return Ok(None);
                };
                if arr.len() <= idx {
                    budget.charge((idx + 1 - arr.len()) * SLOT_BYTES)?;
                    arr.resize(idx + 1, Value::Null);
                }
                cur = &mut arr[idx];
            }
        } else {
            return Ok(None);
        }
    }
    Ok(Some(cur))
}

fn object_entry<'v>(
    v: &'v mut Value,
    key: &str,
    budget: &mut Budget,
) -> Result<&'v mut Value, LimitError> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else {
        unreachable!("just made an object")
    };
    if !m.contains_key(key) {
        budget.charge(key.len() + 2 * SLOT_BYTES)?;
    }
    Ok(m.entry(key.to_string()).or_insert(Value::Null))
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

impl crate::provider::PayloadDecoder for Decoder {
    fn limit_exceeded(&self) -> Option<&LimitError> {
        self.limit.as_ref()
    }

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
