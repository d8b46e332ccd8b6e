//! What the processor sends to the model: the request of a step (history plus the MAX_STEPS
//! prefill or the compaction prompt) and the messages a closed step adds to the history.

use std::sync::Arc;

use super::action::SendRequest;
use super::compaction::{COMPACTION_PROMPT, COMPACTION_SYSTEM};
use super::outcome::RequestKind;
use super::step::{Part, PartKind, ToolStatus, TOOL_INTERRUPTED};
use super::Processor;
use crate::conversation::{AssistantPart, Conversation, Message, RequestOptions, ToolResult};
use crate::event::ToolCall;

/// opencode's `MAX_STEPS` prompt (session/prompt/max-steps.txt), appended as an assistant
/// prefill once the soft step limit is reached (reference §4.2 step 9).
pub const MAX_STEPS_PROMPT: &str = "CRITICAL - MAXIMUM STEPS REACHED

The maximum number of steps allowed for this task has been reached. Tools are disabled until next user input. Respond with text only.

STRICT REQUIREMENTS:
1. Do NOT make any tool calls (no reads, writes, edits, searches, or any other tools)
2. MUST provide a text response summarizing work done so far
3. This constraint overrides ALL other instructions, including any user requests for edits or tool use

Response must include:
- Statement that maximum steps for this agent have been reached
- Summary of what has been accomplished so far
- List of any remaining tasks that were not completed
- Recommendations for what should be done next

Any attempts to use tools is a violation of this constraint. Pause and respond with text only.";

impl Processor {
    /// The request of step `number`: the history, plus the MAX_STEPS prefill from the soft
    /// limit on (reference §4.2 step 9), or the compaction request: the compaction agent's
    /// system prompt, no tools, the history and the compaction prompt (§6.3). The
    /// history does not change between attempts, so a retry rebuilds the same request.
    pub(super) fn build_request(
        &self,
        number: u32,
        kind: RequestKind,
        attempt: u32,
    ) -> SendRequest {
        let prefill = kind == RequestKind::Step
            && self
                .config
                .soft_max_steps
                .is_some_and(|soft| number >= soft);
        let conversation = match kind {
            // The history as it is: shared, not copied.
            RequestKind::Step if !prefill => Arc::clone(&self.history),
            RequestKind::Step => {
                let mut conversation = Conversation::clone(&self.history);
                conversation.messages.push(Message::Assistant {
                    parts: vec![AssistantPart::Text {
                        text: MAX_STEPS_PROMPT.to_string(),
                    }],
                });
                Arc::new(conversation)
            }
            RequestKind::Compaction => {
                let mut conversation = Conversation::clone(&self.history);
                conversation.system = Some(COMPACTION_SYSTEM.to_string());
                conversation.tools.clear();
                conversation.messages.push(Message::User {
                    content: COMPACTION_PROMPT.to_string(),
                });
                Arc::new(conversation)
            }
        };
        SendRequest {
            step: number,
            attempt,
            kind,
            conversation,
            // opencode sends `min(limit.output, 32_000)` with every request (reference §8);
            // tapeloop does when the scenario states the output limit, and otherwise leaves
            // the provider's default, so recordings do not depend on the price table.
            options: RequestOptions {
                max_output_tokens: self
                    .config
                    .output_limit
                    .map(|_| self.limits.max_output_tokens()),
                ..RequestOptions::new(self.config.model.clone())
            },
        }
    }
}

/// The messages a closed step contributes to the history (reference §1.3 history replay):
/// the assistant message (text, reasoning, tool calls, provider tool results) and the client
/// tool results in call order. Pending/running parts replay as "[Tool execution was
/// interrupted]".
pub(super) fn replay_messages(parts: &[Part]) -> (Option<Message>, Option<Message>) {
    let mut assistant = Vec::new();
    let mut results = Vec::new();
    for part in parts.iter().filter(|p| p.persisted) {
        match &part.kind {
            PartKind::Text(t) | PartKind::Refusal(t) if !t.is_empty() => {
                assistant.push(AssistantPart::Text { text: t.clone() })
            }
            PartKind::Reasoning { text, metadata } if !text.is_empty() || metadata.is_some() => {
                assistant.push(AssistantPart::Reasoning {
                    text: text.clone(),
                    metadata: metadata.clone(),
                })
            }
            PartKind::Tool(tp) => {
                assistant.push(AssistantPart::ToolCall(ToolCall {
                    id: tp.call_id.clone(),
                    tool: tp.tool.clone(),
                    input: tp.input.clone(),
                    provider_executed: tp.provider_executed,
                    metadata: tp.metadata.clone(),
                }));
                let (output, is_error) = match tp.status {
                    ToolStatus::Completed => (tp.output.clone(), false),
                    ToolStatus::Error => (tp.output.clone(), true),
                    ToolStatus::Pending | ToolStatus::Running => {
                        (TOOL_INTERRUPTED.to_string(), true)
                    }
                };
                if tp.provider_executed {
                    if let Some(out) = &tp.provider_output {
                        assistant.push(AssistantPart::ToolResult {
                            id: tp.call_id.clone(),
                            tool: tp.tool.clone(),
                            output: out.clone(),
                        });
                    }
                } else {
                    results.push(ToolResult {
                        call_id: tp.call_id.clone(),
                        tool: tp.tool.clone(),
                        output,
                        is_error,
                    });
                }
            }
            _ => {}
        }
    }
    let assistant = (!assistant.is_empty()).then_some(Message::Assistant { parts: assistant });
    let tools = (!results.is_empty()).then_some(Message::Tool { results });
    (assistant, tools)
}
