//! The agent's tool set and opencode's repair of calls to tools it does not have (reference §7
//! tier 1, opencode `session/llm.ts` `experimental_repairToolCall` and `tool/invalid.ts`).
//!
//! The AI SDK rejects a call to a name that is not in the request's tools (`NoSuchToolError`);
//! opencode repairs it: if the lower-cased name is a tool, the call is renamed; otherwise it
//! becomes a call to the internal `invalid` tool with input `{tool, error}`, which completes with
//! "The arguments provided to the tool are invalid: <error>". The loop goes on, and the doom-loop
//! check compares the `invalid` inputs, so three calls to one unknown tool in one response fire
//! it whatever their arguments.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// opencode's internal tool that calls to unavailable tools are rerouted to. It is always in
/// opencode's tool set (never offered to the model), so the "Available tools" list names it.
pub const INVALID_TOOL: &str = "invalid";

/// What opencode makes of a call to `name`.
#[derive(Debug, Clone, PartialEq)]
pub enum Repair {
    /// The agent has the tool.
    Keep,
    /// The lower-cased name is a tool: the call is renamed.
    Rename(String),
    /// Rerouted to [`INVALID_TOOL`]: the call's new input and the tool's result.
    Invalid { input: Value, output: String },
}

/// The AI SDK's `NoSuchToolError` message. The list is opencode 1.18's: every tool name,
/// `invalid` included, in alphabetical order (as its own "Available tools: glob, grep,
/// invalid, read, …" messages show).
pub fn unavailable_message(tools: &BTreeSet<String>, name: &str) -> String {
    let mut names: Vec<&str> = tools.iter().map(String::as_str).collect();
    if !tools.contains(INVALID_TOOL) {
        names.push(INVALID_TOOL);
        names.sort_unstable();
    }
    format!(
        "Model tried to call unavailable tool '{name}'. Available tools: {}.",
        names.join(", ")
    )
}

/// Repair a call to `name` against the agent's tool set (see the module docs).
pub fn repair(tools: &BTreeSet<String>, name: &str) -> Repair {
    if tools.contains(name) {
        return Repair::Keep;
    }
    let lower = name.to_lowercase();
    if lower != name && tools.contains(&lower) {
        return Repair::Rename(lower);
    }
    let error = unavailable_message(tools, name);
    let output = format!("The arguments provided to the tool are invalid: {error}");
    // `{tool, error}` in this key order: the doom-loop check compares `JSON.stringify` output.
    let mut input = Map::new();
    input.insert("tool".to_string(), Value::String(name.to_string()));
    input.insert("error".to_string(), Value::String(error));
    Repair::Invalid {
        input: Value::Object(input),
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repairs() {
        let tools = set(&["read", "bash"]);
        assert_eq!(repair(&tools, "read"), Repair::Keep);
        assert_eq!(repair(&tools, "Read"), Repair::Rename("read".into()));
        let Repair::Invalid { input, output } = repair(&tools, "get_weather") else {
            panic!("not rerouted");
        };
        let error = "Model tried to call unavailable tool 'get_weather'. \
                     Available tools: bash, invalid, read.";
        assert_eq!(
            super::super::json::js_stringify(&input),
            format!(r#"{{"tool":"get_weather","error":"{error}"}}"#)
        );
        assert_eq!(
            output,
            format!("The arguments provided to the tool are invalid: {error}")
        );
        // A name that is only a case variant of nothing is rerouted, not renamed.
        assert!(matches!(repair(&tools, "GREP"), Repair::Invalid { .. }));
    }
}
