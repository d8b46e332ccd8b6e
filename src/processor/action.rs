//! What the processor and its driver exchange: the actions the driver must carry out (send a
//! request, execute a tool, wait, stop) and their payloads.

use std::sync::Arc;

use serde_json::Value;

use super::outcome::{RequestKind, Termination};
use crate::conversation::{Conversation, RequestOptions};

/// A model request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub step: u32,
    pub attempt: u32,
    pub kind: RequestKind,
    /// Shared with the processor's history while neither changes: a step's request costs a
    /// reference, not a copy of every message and tool schema so far. Drop it before feeding
    /// the response's events, or the history's next change copies it.
    pub conversation: Arc<Conversation>,
    pub options: RequestOptions,
}

/// A client tool call to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInvocation {
    pub step: u32,
    pub call_id: String,
    pub tool: String,
    pub input: Value,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(SendRequest),
    ExecuteTool(ToolInvocation),
    /// Advance the simulated clock by `ms`, then call `on_wait_elapsed`.
    Wait {
        ms: u64,
    },
    Stop(Termination),
}
