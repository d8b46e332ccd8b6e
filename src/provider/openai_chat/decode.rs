//! The Chat Completions stream decoder: `chat.completion.chunk` payloads to normalized events.

use std::borrow::Cow;

use serde_json::{json, Value};

use super::*;
use crate::event::{EndOutcome, ErrorClass, FinishReason, ProviderError, StreamEvent, Usage};
use crate::provider::error::{cut_off_error, protocol_error};

/// One tool call being assembled from fragments that share an `index`.
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    args: String,
    /// `tool-input-start` has been emitted.
    started: bool,
}

/// Decoder state for one chat-completions response.
pub struct Decoder {
    /// Open text block id (`text-N`).
    text: Option<String>,
    /// Open reasoning block id (`reasoning-N`).
    reasoning: Option<String>,
    /// OpenRouter `reasoning_details` to carry on `reasoning-end` (signatures, encrypted data).
    reasoning_meta: Option<ReasoningMeta>,
    /// Blocks opened so far, for unique ids.
    blocks: u32,
    refusal_id: Option<String>,
    calls: Vec<PendingCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    /// `[DONE]` seen.
    done: bool,
    /// An `Error` was emitted: everything after is ignored.
    failed: bool,
}

/// OpenRouter reasoning round-trip data.
#[derive(Default)]
struct ReasoningMeta {
    signature: Option<String>,
    format: Option<String>,
    /// Non-text details (`reasoning.encrypted`, `reasoning.summary`) kept verbatim.
    others: Vec<Value>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            text: None,
            reasoning: None,
            reasoning_meta: None,
            blocks: 0,
            refusal_id: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            done: false,
            failed: false,
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.blocks);
        self.blocks += 1;
        id
    }

    fn close_text(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(id) = self.text.take() {
            out.push(StreamEvent::TextEnd { id });
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(id) = self.reasoning.take() {
            let metadata = self.reasoning_meta.take().and_then(|m| {
                if m.signature.is_none() && m.others.is_empty() {
                    return None;
                }
                let mut details = Vec::with_capacity(1 + m.others.len());
                if let Some(sig) = m.signature {
                    details.push(json!({
                        "type": "reasoning.text",
                        "signature": sig,
                        "format": m.format,
                    }));
                }
                details.extend(m.others);
                Some(json!({ "reasoning_details": details }))
            });
            out.push(StreamEvent::ReasoningEnd { id, metadata });
        }
    }

    fn push_text(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        self.close_reasoning(out);
        let id = match &self.text {
            Some(id) => id.clone(),
            None => {
                let id = self.next_id("text");
                out.push(StreamEvent::TextStart { id: id.clone() });
                self.text = Some(id.clone());
                id
            }
        };
        out.push(StreamEvent::TextDelta {
            id,
            text: text.to_owned(),
        });
    }

    fn push_reasoning(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        self.close_text(out);
        let id = match &self.reasoning {
            Some(id) => id.clone(),
            None => {
                let id = self.next_id("reasoning");
                out.push(StreamEvent::ReasoningStart {
                    id: id.clone(),
                    metadata: None,
                });
                self.reasoning = Some(id.clone());
                id
            }
        };
        out.push(StreamEvent::ReasoningDelta {
            id,
            text: text.to_owned(),
        });
    }

    fn note_reasoning_details(&mut self, details: &[ReasoningDetail<'_>]) {
        for d in details {
            let kind = d.kind.as_deref().unwrap_or("reasoning.text");
            if kind == "reasoning.text" {
                if let Some(sig) = d.signature.as_deref().filter(|s| !s.is_empty()) {
                    let m = self.reasoning_meta.get_or_insert_with(Default::default);
                    m.signature = Some(sig.to_owned());
                    m.format = d.format.as_deref().map(str::to_owned);
                }
            } else if let Some(data) = d.data.as_deref().filter(|s| !s.is_empty()) {
                let m = self.reasoning_meta.get_or_insert_with(Default::default);
                m.others
                    .push(json!({"type": kind, "data": data, "format": d.format}));
            } else if let Some(summary) = d.summary.as_deref().filter(|s| !s.is_empty()) {
                let m = self.reasoning_meta.get_or_insert_with(Default::default);
                m.others
                    .push(json!({"type": kind, "summary": summary, "format": d.format}));
            }
        }
    }

    /// Reasoning text of one delta, from whichever field this server uses. `reasoning` and
    /// `reasoning_details` carry the same text on OpenRouter, so only one is taken.
    fn reasoning_text<'d>(delta: &'d Delta<'_>) -> Option<Cow<'d, str>> {
        if let Some(r) = delta.reasoning_content.as_deref().filter(|s| !s.is_empty()) {
            return Some(Cow::Borrowed(r));
        }
        if let Some(r) = delta.reasoning.as_deref().filter(|s| !s.is_empty()) {
            return Some(Cow::Borrowed(r));
        }
        let details = delta.reasoning_details.as_deref()?;
        let mut text = String::new();
        for d in details {
            match d.kind.as_deref().unwrap_or("reasoning.text") {
                "reasoning.text" => text.push_str(d.text.as_deref().unwrap_or("")),
                "reasoning.summary" => text.push_str(d.summary.as_deref().unwrap_or("")),
                _ => {}
            }
        }
        (!text.is_empty()).then_some(Cow::Owned(text))
    }

    fn tool_fragment(
        &mut self,
        tc: ToolCallDelta<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), String> {
        let id = tc.id.as_deref().filter(|s| !s.is_empty());
        let (name, args) = match tc.function {
            Some(f) => (
                f.name.filter(|s| !s.is_empty()),
                f.arguments.map(|a| a.0).unwrap_or(Cow::Borrowed("")),
            ),
            None => (None, Cow::Borrowed("")),
        };
        // Key on `index`. Without one (a few old servers), a new non-empty id opens a new call
        // and anything else continues the last call.
        let index = match tc.index {
            Some(i) => i,
            None => match (self.calls.last(), id) {
                (Some(last), Some(id)) if last.id != id => last.index + 1,
                (Some(last), _) => last.index,
                (None, _) => 0,
            },
        };
        let pos = match self.calls.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                // The first fragment of a call must name the tool (the AI SDK rejects the
                // stream otherwise); the id may be missing on a few local servers.
                let Some(name) = name.as_deref() else {
                    return Err(format!("tool call {index} started without a function name"));
                };
                self.close_reasoning(out);
                self.close_text(out);
                self.calls.push(PendingCall {
                    index,
                    id: id.map_or_else(|| format!("call_{index}"), str::to_owned),
                    name: name.to_owned(),
                    args: String::new(),
                    started: false,
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        if !call.started {
            call.started = true;
            out.push(StreamEvent::ToolInputStart {
                id: call.id.clone(),
                tool: call.name.clone(),
                provider_executed: false,
            });
        }
        if !args.is_empty() {
            call.args.push_str(&args);
            out.push(StreamEvent::ToolInputDelta {
                id: call.id.clone(),
                delta: args.into_owned(),
            });
        }
        Ok(())
    }

    /// Close open blocks and emit every assembled tool call.
    fn finish_content(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_reasoning(out);
        self.close_text(out);
        self.refusal_id = None;
        for call in self.calls.drain(..) {
            end_function_call(call.id, call.name, &call.args, None, out);
        }
    }

    /// Emit `err` once; blocks are closed so the event sequence stays well formed, and
    /// half-assembled tool calls are dropped.
    fn fail(&mut self, err: ProviderError, out: &mut Vec<StreamEvent>) {
        self.close_reasoning(out);
        self.close_text(out);
        self.calls.clear();
        self.failed = true;
        out.push(StreamEvent::Error(err));
    }

    fn chunk(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        let parsed = fast::chunk(data).map(Ok);
        let chunk: Chunk<'_> = match parsed.unwrap_or_else(|| serde_json::from_str(data)) {
            Ok(c) => c,
            Err(e) => return self.fail(protocol_error(&e, data, "…"), out),
        };
        let usage = chunk
            .usage
            .as_deref()
            .or_else(|| chunk.x_groq.as_ref().and_then(|x| x.usage.as_ref()));
        if let Some(usage) = usage {
            self.usage = Some(usage.normalize());
        }
        let error = chunk.error.filter(|e| !e.is_null());
        if error.is_some() || event == Some("error") {
            let fields = match &error {
                Some(e) => ErrorFields::from_value(e),
                None => ErrorFields {
                    message: Some(data.to_owned()),
                    ..Default::default()
                },
            };
            return self.fail(classify(None, None, fields, false), out);
        }
        // Only choice 0 is the agent's response; with `n > 1` other choices interleave.
        let Some(choice) = chunk.choices.and_then(|c| c.0) else {
            return;
        };
        if let Some(delta) = choice.delta {
            if let Some(details) = delta.reasoning_details.as_deref() {
                self.note_reasoning_details(details);
            }
            if let Some(r) = Self::reasoning_text(&delta) {
                self.push_reasoning(&r, out);
            }
            match &delta.content {
                Some(Content::Text(t)) => self.push_text(t, out),
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        self.content_part(p, out);
                    }
                }
                None => {}
            }
            if let Some(r) = delta.refusal.as_deref().filter(|s| !s.is_empty()) {
                let id = match &self.refusal_id {
                    Some(id) => id.clone(),
                    None => {
                        let id = self.next_id("refusal");
                        self.refusal_id = Some(id.clone());
                        id
                    }
                };
                out.push(StreamEvent::RefusalDelta {
                    id,
                    text: r.to_owned(),
                });
            }
            for tc in delta.tool_calls.into_iter().flatten() {
                if let Err(msg) = self.tool_fragment(tc, out) {
                    return self.fail(
                        ProviderError {
                            class: ErrorClass::Protocol,
                            status: None,
                            message: msg,
                            retryable: false,
                            retry_after_ms: None,
                            code: None,
                        },
                        out,
                    );
                }
            }
        }
        if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
            // OpenRouter repeats the finish chunk: the first one counts.
            if self.finish.is_none() {
                self.finish = Some(reason.into_owned());
                self.finish_content(out);
            }
        }
    }

    fn content_part(&mut self, part: &ContentPart<'_>, out: &mut Vec<StreamEvent>) {
        match part.kind.as_deref() {
            Some("thinking") => match &part.thinking {
                Some(Content::Text(t)) => self.push_reasoning(t, out),
                Some(Content::Parts(inner)) => {
                    for p in inner {
                        if let Some(t) = p.text.as_deref() {
                            self.push_reasoning(t, out);
                        }
                    }
                }
                None => {}
            },
            Some("text") | None => {
                if let Some(t) = part.text.as_deref() {
                    self.push_text(t, out);
                }
            }
            // Images, references and other parts carry no text for the loop.
            Some(_) => {}
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Map a chat `finish_reason` onto the AI SDK vocabulary.
pub fn map_finish_reason(raw: Option<&str>) -> FinishReason {
    match raw {
        Some("stop") | Some("end_turn") | Some("eos") => FinishReason::Stop,
        Some("length") | Some("max_tokens") | Some("model_length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("tool_calls") | Some("function_call") | Some("tool_use") => FinishReason::ToolCalls,
        Some("error") => FinishReason::Error,
        Some(_) => FinishReason::Other,
        None => FinishReason::Unknown,
    }
}

impl crate::provider::PayloadDecoder for Decoder {
    fn payload(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.failed || self.done {
            return;
        }
        let trimmed = data.trim();
        if trimmed == "[DONE]" {
            self.done = true;
            return;
        }
        if trimmed.is_empty() {
            return;
        }
        self.chunk(event, data, out);
    }

    /// `finish-step` is emitted here, when the body has ended cleanly — as the AI SDK does in
    /// its stream `flush`. The finish chunk precedes the usage chunk, and a connection that
    /// drops after `[DONE]` still fails the request in opencode, so nothing is final earlier.
    fn end(&mut self, outcome: EndOutcome, out: &mut Vec<StreamEvent>) {
        if self.failed {
            return;
        }
        if outcome != EndOutcome::Complete || !(self.done || self.finish.is_some()) {
            return self.fail(cut_off_error(outcome, "[DONE]"), out);
        }
        self.finish_content(out);
        out.push(StreamEvent::FinishStep {
            finish_reason: map_finish_reason(self.finish.as_deref()),
            raw_finish_reason: self.finish.take(),
            usage: self.usage.unwrap_or_default(),
        });
        self.failed = true; // nothing more may follow a finished response
    }
}
