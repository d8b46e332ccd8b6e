//! A whole response read back from its normalized events: the parts in order with their text
//! joined, the finish and the error. What every API's `assemble` builds its body from.

use std::collections::HashMap;

use serde_json::Value;

use crate::event::{FinishReason, ProviderError, StreamEvent, ToolCall, Usage};
use crate::provider::openai_chat::tool_input_to_arguments;

/// One content part of a reply, deltas joined.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyPart {
    Text {
        id: String,
        text: String,
    },
    Reasoning {
        id: String,
        text: String,
        start: Option<Value>,
        end: Option<Value>,
    },
    Refusal {
        id: String,
        text: String,
    },
    Call {
        id: String,
        tool: String,
        /// The argument text as streamed (or the input re-serialized when none was).
        args: String,
        input: Value,
        provider_executed: bool,
        metadata: Option<Value>,
    },
    Result {
        id: String,
        tool: String,
        output: Value,
        is_error: bool,
    },
}

/// How the reply finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub reason: FinishReason,
    pub raw: Option<String>,
    pub usage: Usage,
}

/// A whole reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    pub parts: Vec<ReplyPart>,
    pub finish: Option<Finish>,
    pub error: Option<ProviderError>,
}

impl Reply {
    /// Read one response's events back into a reply (a later `start-step` is ignored).
    pub fn from_events(events: &[StreamEvent]) -> Reply {
        let mut r = Reply::default();
        let mut args: HashMap<&str, String> = HashMap::new();
        for ev in events {
            match ev {
                StreamEvent::StartStep
                | StreamEvent::TextEnd { .. }
                | StreamEvent::ToolInputEnd { .. } => {}
                StreamEvent::TextStart { id } => r.parts.push(ReplyPart::Text {
                    id: id.clone(),
                    text: String::new(),
                }),
                StreamEvent::TextDelta { id, text } => match r.text_mut(id) {
                    Some(t) => t.push_str(text),
                    None => r.parts.push(ReplyPart::Text {
                        id: id.clone(),
                        text: text.clone(),
                    }),
                },
                StreamEvent::RefusalDelta { id, text } => match r.parts.last_mut() {
                    Some(ReplyPart::Refusal { id: last, text: t }) if last == id => {
                        t.push_str(text)
                    }
                    _ => r.parts.push(ReplyPart::Refusal {
                        id: id.clone(),
                        text: text.clone(),
                    }),
                },
                StreamEvent::ReasoningStart { id, metadata } => {
                    r.parts.push(ReplyPart::Reasoning {
                        id: id.clone(),
                        text: String::new(),
                        start: metadata.clone(),
                        end: None,
                    })
                }
                StreamEvent::ReasoningDelta { id, text } => match r.reasoning_mut(id) {
                    Some((t, _)) => t.push_str(text),
                    None => r.parts.push(ReplyPart::Reasoning {
                        id: id.clone(),
                        text: text.clone(),
                        start: None,
                        end: None,
                    }),
                },
                StreamEvent::ReasoningEnd { id, metadata } => {
                    if let Some((_, end)) = r.reasoning_mut(id) {
                        *end = metadata.clone();
                    }
                }
                StreamEvent::ToolInputStart { id, .. } => {
                    args.insert(id, String::new());
                }
                StreamEvent::ToolInputDelta { id, delta } => {
                    args.entry(id).or_default().push_str(delta);
                }
                StreamEvent::ToolCall(ToolCall {
                    id,
                    tool,
                    input,
                    provider_executed,
                    metadata,
                }) => {
                    let streamed = args.remove(id.as_str()).filter(|a| !a.trim().is_empty());
                    r.parts.push(ReplyPart::Call {
                        id: id.clone(),
                        tool: tool.clone(),
                        args: streamed.unwrap_or_else(|| match input {
                            Value::Object(m) if m.is_empty() => String::new(),
                            other => tool_input_to_arguments(other),
                        }),
                        input: input.clone(),
                        provider_executed: *provider_executed,
                        metadata: metadata.clone(),
                    })
                }
                StreamEvent::ToolResult {
                    id,
                    tool,
                    output,
                    is_error,
                } => r.parts.push(ReplyPart::Result {
                    id: id.clone(),
                    tool: tool.clone(),
                    output: output.clone(),
                    is_error: *is_error,
                }),
                StreamEvent::FinishStep {
                    finish_reason,
                    raw_finish_reason,
                    usage,
                } => {
                    r.finish.get_or_insert(Finish {
                        reason: *finish_reason,
                        raw: raw_finish_reason.clone(),
                        usage: *usage,
                    });
                }
                StreamEvent::Error(e) => {
                    r.error.get_or_insert_with(|| e.clone());
                }
            }
        }
        r
    }

    fn text_mut(&mut self, id: &str) -> Option<&mut String> {
        self.parts.iter_mut().rev().find_map(|p| match p {
            ReplyPart::Text { id: i, text } if i == id => Some(text),
            _ => None,
        })
    }

    fn reasoning_mut(&mut self, id: &str) -> Option<(&mut String, &mut Option<Value>)> {
        self.parts.iter_mut().rev().find_map(|p| match p {
            ReplyPart::Reasoning {
                id: i, text, end, ..
            } if i == id => Some((text, end)),
            _ => None,
        })
    }

    /// The finish, or a plain stop with no usage when the events had none.
    pub fn finish_or_default(&self) -> Finish {
        self.finish.clone().unwrap_or(Finish {
            reason: FinishReason::Unknown,
            raw: None,
            usage: Usage::default(),
        })
    }

    /// The recorded raw finish reason when `known` accepts it (it came from this API), else
    /// `mapped(reason)`.
    pub fn raw_finish(
        &self,
        known: impl Fn(&str, FinishReason) -> bool,
        mapped: impl Fn(FinishReason) -> Option<&'static str>,
    ) -> Option<String> {
        let f = self.finish_or_default();
        match f.raw {
            Some(raw) if known(&raw, f.reason) => Some(raw),
            _ => mapped(f.reason).map(str::to_string),
        }
    }
}

/// `events` with consecutive deltas of one block joined into one delta: the form a JSON reply
/// decodes to, so a stream and a JSON reply of the same answer compare equal after it.
pub fn coalesce(events: &[StreamEvent]) -> Vec<StreamEvent> {
    let mut out: Vec<StreamEvent> = Vec::with_capacity(events.len());
    for ev in events {
        match (out.last_mut(), ev) {
            (
                Some(StreamEvent::TextDelta { id: a, text }),
                StreamEvent::TextDelta { id: b, text: t },
            )
            | (
                Some(StreamEvent::ReasoningDelta { id: a, text }),
                StreamEvent::ReasoningDelta { id: b, text: t },
            )
            | (
                Some(StreamEvent::RefusalDelta { id: a, text }),
                StreamEvent::RefusalDelta { id: b, text: t },
            )
            | (
                Some(StreamEvent::ToolInputDelta { id: a, delta: text }),
                StreamEvent::ToolInputDelta { id: b, delta: t },
            ) if a == b => text.push_str(t),
            _ => out.push(ev.clone()),
        }
    }
    out
}
