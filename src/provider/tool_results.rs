//! Reading an agent's request: the tool results it sends back, with the calls they answer,
//! per wire API. `import` turns them into cassette `tool` lines; `tapeloop exec` reads how a
//! black-box agent answered the calls it was served (a result, an error, a rejection).

use serde_json::Value;

use super::Api;

/// One tool result in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResultSeen {
    pub call_id: String,
    /// The tool of the call it answers (`unknown` when the call is not in the history).
    pub tool: String,
    pub input: Value,
    /// A string for text results (text blocks joined), else the JSON as sent.
    pub output: Value,
    pub error: bool,
}

impl ToolResultSeen {
    /// The output as text.
    pub fn output_text(&self) -> String {
        match &self.output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

fn parse_args(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// Anthropic `tool_result.content` as a string when it is only text blocks.
fn flatten_text(v: &Value) -> Value {
    if let Value::Array(blocks) = v {
        let texts: Option<Vec<&str>> = blocks
            .iter()
            .map(|b| {
                (b.get("type").and_then(Value::as_str) == Some("text"))
                    .then(|| b.get("text").and_then(Value::as_str))
                    .flatten()
            })
            .collect();
        if let Some(t) = texts {
            return Value::String(t.concat());
        }
    }
    v.clone()
}

/// Every tool result in a request body's history, in order, each with the call it answers
/// (tool and input found by the call id in the same history).
pub fn tool_results(api: Api, body: &Value) -> Vec<ToolResultSeen> {
    let mut out = Vec::new();
    let record =
        |call_id: String, tool: String, input: Value, output: Value, error: bool| ToolResultSeen {
            call_id,
            tool,
            input,
            output,
            error,
        };
    let empty = Vec::new();
    match api {
        Api::OpenAiChat => {
            let msgs = body
                .get("messages")
                .and_then(Value::as_array)
                .unwrap_or(&empty);
            let mut calls = std::collections::HashMap::new();
            for m in msgs {
                for c in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .unwrap_or(&empty)
                {
                    if let Some(id) = c.get("id").and_then(Value::as_str) {
                        let f = c.get("function");
                        let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
                        calls.insert(
                            id.to_string(),
                            (
                                name.unwrap_or("").to_string(),
                                parse_args(f.and_then(|f| f.get("arguments"))),
                            ),
                        );
                    }
                }
            }
            for m in msgs {
                if m.get("role").and_then(Value::as_str) != Some("tool") {
                    continue;
                }
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (name, input) = calls.get(&id).cloned().unwrap_or_else(|| {
                    let n = m.get("name").and_then(Value::as_str).unwrap_or("unknown");
                    (n.to_string(), Value::Null)
                });
                let output = flatten_text(m.get("content").unwrap_or(&Value::Null));
                out.push(record(id, name, input, output, false));
            }
        }
        Api::Anthropic => {
            let msgs = body
                .get("messages")
                .and_then(Value::as_array)
                .unwrap_or(&empty);
            let blocks = || {
                msgs.iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_array))
                    .flatten()
            };
            let mut calls = std::collections::HashMap::new();
            for b in blocks() {
                if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                    if let Some(id) = b.get("id").and_then(Value::as_str) {
                        let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                        calls.insert(
                            id.to_string(),
                            (
                                name.to_string(),
                                b.get("input").cloned().unwrap_or(Value::Null),
                            ),
                        );
                    }
                }
            }
            for b in blocks() {
                if b.get("type").and_then(Value::as_str) != Some("tool_result") {
                    continue;
                }
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (name, input) = calls
                    .get(&id)
                    .cloned()
                    .unwrap_or(("unknown".into(), Value::Null));
                let output = flatten_text(b.get("content").unwrap_or(&Value::Null));
                let error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                out.push(record(id, name, input, output, error));
            }
        }
        Api::Gemini => {
            let parts: Vec<&Value> = body
                .get("contents")
                .and_then(Value::as_array)
                .unwrap_or(&empty)
                .iter()
                .filter_map(|c| c.get("parts").and_then(Value::as_array))
                .flatten()
                .collect();
            let field = |p: &Value, camel: &str, snake: &str| {
                p.get(camel).or_else(|| p.get(snake)).cloned()
            };
            let calls: Vec<Value> = parts
                .iter()
                .filter_map(|p| field(p, "functionCall", "function_call"))
                .collect();
            let mut used = vec![false; calls.len()];
            let mut n = 0;
            for p in &parts {
                let Some(fr) = field(p, "functionResponse", "function_response") else {
                    continue;
                };
                n += 1;
                let name = fr.get("name").and_then(Value::as_str).unwrap_or("unknown");
                let id = fr.get("id").and_then(Value::as_str);
                // Match by id when present, else the first unused call of the same name.
                let found = calls.iter().enumerate().position(|(k, c)| {
                    !used[k]
                        && match id {
                            Some(id) => c.get("id").and_then(Value::as_str) == Some(id),
                            None => c.get("name").and_then(Value::as_str) == Some(name),
                        }
                });
                let input = match found {
                    Some(k) => {
                        used[k] = true;
                        calls[k].get("args").cloned().unwrap_or(Value::Null)
                    }
                    None => Value::Null,
                };
                let call_id = id
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{name}#{n}"));
                let output = fr.get("response").cloned().unwrap_or(Value::Null);
                out.push(record(call_id, name.to_string(), input, output, false));
            }
        }
        Api::OpenAiResponses => {
            let items = body
                .get("input")
                .and_then(Value::as_array)
                .unwrap_or(&empty);
            let mut calls = std::collections::HashMap::new();
            for it in items {
                if it.get("type").and_then(Value::as_str) == Some("function_call") {
                    if let Some(id) = it.get("call_id").and_then(Value::as_str) {
                        let name = it.get("name").and_then(Value::as_str).unwrap_or("");
                        calls.insert(
                            id.to_string(),
                            (name.to_string(), parse_args(it.get("arguments"))),
                        );
                    }
                }
            }
            for it in items {
                if it.get("type").and_then(Value::as_str) != Some("function_call_output") {
                    continue;
                }
                let id = it
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (name, input) = calls
                    .get(&id)
                    .cloned()
                    .unwrap_or(("unknown".into(), Value::Null));
                let output = flatten_text(it.get("output").unwrap_or(&Value::Null));
                out.push(record(id, name, input, output, false));
            }
        }
    }
    out
}

/// The names of the tools a request declares (the agent's tool set), in request order.
pub fn declared_tools(api: Api, body: &Value) -> Vec<String> {
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
    match api {
        Api::OpenAiChat => tools
            .filter_map(|t| t.get("function").and_then(name))
            .collect(),
        Api::OpenAiResponses | Api::Anthropic => tools.filter_map(name).collect(),
        Api::Gemini => tools
            .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
            .flatten()
            .filter_map(name)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_from_each_api() {
        let chat = serde_json::json!({"messages":[
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"read","arguments":"{\"path\":\"a\"}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"hello"}]});
        let t = tool_results(Api::OpenAiChat, &chat);
        assert_eq!(
            (t[0].tool.as_str(), &t[0].input, &t[0].output),
            (
                "read",
                &serde_json::json!({"path":"a"}),
                &Value::from("hello")
            )
        );

        let anthropic = serde_json::json!({"messages":[
            {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"ls","input":{}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"x"}],"is_error":true}]}]});
        let t = tool_results(Api::Anthropic, &anthropic);
        assert_eq!(
            (t[0].call_id.as_str(), t[0].tool.as_str(), t[0].error),
            ("t1", "ls", true)
        );
        assert_eq!(t[0].output, "x");

        let gemini = serde_json::json!({"contents":[
            {"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}}},{"functionCall":{"name":"f","args":{"a":2}}}]},
            {"role":"user","parts":[{"functionResponse":{"name":"f","response":{"r":1}}},{"functionResponse":{"name":"f","response":{"r":2}}}]}]});
        let t = tool_results(Api::Gemini, &gemini);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[1].call_id.as_str(), &t[1].input),
            ("f#2", &serde_json::json!({"a":2}))
        );

        let responses = serde_json::json!({"input":[
            {"type":"function_call","call_id":"fc","name":"g","arguments":"{}"},
            {"type":"function_call_output","call_id":"fc","output":"done"}]});
        let t = tool_results(Api::OpenAiResponses, &responses);
        assert_eq!(
            (t[0].tool.as_str(), &t[0].output),
            ("g", &Value::from("done"))
        );
    }

    #[test]
    fn declared_tools_per_api() {
        let chat =
            serde_json::json!({"tools": [{"type": "function", "function": {"name": "read"}}]});
        assert_eq!(declared_tools(Api::OpenAiChat, &chat), ["read"]);
        let anthropic = serde_json::json!({"tools": [{"name": "bash"}, {"name": "edit"}]});
        assert_eq!(declared_tools(Api::Anthropic, &anthropic), ["bash", "edit"]);
        let gemini = serde_json::json!({"tools": [{"functionDeclarations": [{"name": "f"}]}]});
        assert_eq!(declared_tools(Api::Gemini, &gemini), ["f"]);
        assert!(declared_tools(Api::OpenAiResponses, &serde_json::json!({"tools": 1})).is_empty());
    }

    #[test]
    fn hostile_shapes_give_nothing_rather_than_panic() {
        for api in Api::ALL {
            for body in [
                serde_json::json!(null),
                serde_json::json!([]),
                serde_json::json!({"messages": 3}),
                serde_json::json!({"messages": [1, "x", null, {"role": "tool"}]}),
                serde_json::json!({"input": {"a": 1}}),
                serde_json::json!({"contents": [{"parts": "nope"}, {"parts": [{"functionResponse": 1}]}]}),
            ] {
                let _ = tool_results(api, &body);
            }
        }
    }
}
