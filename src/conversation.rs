//! The conversation an agent loop sends to the model, independent of wire format.
//!
//! The processor owns and grows it step by step; each provider adapter turns it into its own
//! request body (`provider::request_body`). Provider data that must round-trip (thinking
//! signatures, encrypted reasoning, Gemini `thoughtSignature`) rides in `metadata`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::event::ToolCall;

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON schema of the arguments object.
    #[serde(default = "empty_object_schema")]
    pub schema: Value,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// One part of an assistant message, in the order the model produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum AssistantPart {
    Text {
        text: String,
    },
    Reasoning {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
    },
    ToolCall(ToolCall),
    /// The result of a provider-executed (server) tool, sent back as the provider gave it.
    ToolResult {
        id: String,
        tool: String,
        output: Value,
    },
}

/// The result of a client-side tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    pub tool: String,
    pub output: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum Message {
    User {
        content: String,
    },
    Assistant {
        parts: Vec<AssistantPart>,
    },
    /// Results of the previous assistant message's client tool calls, in call order.
    Tool {
        results: Vec<ToolResult>,
    },
}

/// Everything a model request is built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
}

/// Per-request settings that are not part of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestOptions {
    pub model: String,
    /// Stream the response (always true for the agent loop).
    #[serde(default = "yes")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

fn yes() -> bool {
    true
}

impl RequestOptions {
    pub fn new(model: impl Into<String>) -> Self {
        RequestOptions {
            model: model.into(),
            stream: true,
            max_output_tokens: None,
        }
    }
}
