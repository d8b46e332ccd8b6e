//! Reading an agent's request: the tool results it sends back, with the calls they answer,
//! per wire API. `import` turns them into cassette `tool` lines; `tapeloop exec` reads how a
//! black-box agent answered the calls it was served (a result, an error, a rejection).

use std::collections::HashMap;

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
    let list = |key: &str| {
        body.get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], |v| v)
    };
    match api {
        Api::OpenAiChat => {
            let msgs = list("messages");
            let calls = msgs
                .iter()
                .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
                .flatten()
                .filter_map(|c| {
                    let f = c.get("function");
                    let name = f.and_then(|f| str_at(f, "name"));
                    let args = parse_args(f.and_then(|f| f.get("arguments")));
                    Some((str_at(c, "id")?, name.unwrap_or(""), args))
                });
            let results = msgs
                .iter()
                .filter(|m| str_at(m, "role") == Some("tool"))
                .map(|m| Answer {
                    id: str_at(m, "tool_call_id"),
                    output: m.get("content"),
                    error: false,
                    named: str_at(m, "name"),
                });
            match_by_id(calls, results)
        }
        Api::Anthropic => {
            let blocks = list("messages")
                .iter()
                .filter_map(|m| m.get("content").and_then(Value::as_array))
                .flatten();
            let calls = blocks
                .clone()
                .filter(|b| is(b, "tool_use"))
                .filter_map(|b| {
                    let input = b.get("input").cloned().unwrap_or(Value::Null);
                    Some((str_at(b, "id")?, str_at(b, "name").unwrap_or(""), input))
                });
            let results = blocks.filter(|b| is(b, "tool_result")).map(|b| Answer {
                id: str_at(b, "tool_use_id"),
                output: b.get("content"),
                error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                named: None,
            });
            match_by_id(calls, results)
        }
        Api::OpenAiResponses => {
            let items = list("input");
            let calls = items
                .iter()
                .filter(|i| is(i, "function_call"))
                .filter_map(|i| {
                    let args = parse_args(i.get("arguments"));
                    Some((str_at(i, "call_id")?, str_at(i, "name").unwrap_or(""), args))
                });
            let results = items
                .iter()
                .filter(|i| is(i, "function_call_output"))
                .map(|i| Answer {
                    id: str_at(i, "call_id"),
                    output: i.get("output"),
                    error: false,
                    named: None,
                });
            match_by_id(calls, results)
        }
        Api::Gemini => gemini_results(list("contents")),
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn is(v: &Value, ty: &str) -> bool {
    str_at(v, "type") == Some(ty)
}

/// A tool result as an id-keyed API sends it.
struct Answer<'a> {
    id: Option<&'a str>,
    output: Option<&'a Value>,
    error: bool,
    /// The tool name, when the result itself carries one (OpenAI chat `name`).
    named: Option<&'a str>,
}

/// Pair each result with the call of the same id (`(id, tool, input)`, the last one of an id
/// wins); a result whose call is not in the history keeps its own tool name, else `unknown`.
fn match_by_id<'a>(
    calls: impl Iterator<Item = (&'a str, &'a str, Value)>,
    results: impl Iterator<Item = Answer<'a>>,
) -> Vec<ToolResultSeen> {
    let calls: HashMap<&str, (&str, Value)> = calls.map(|(id, t, i)| (id, (t, i))).collect();
    results
        .map(|r| {
            let id = r.id.unwrap_or("");
            let (tool, input) = match calls.get(id) {
                Some((tool, input)) => (tool.to_string(), input.clone()),
                None => (r.named.unwrap_or("unknown").to_string(), Value::Null),
            };
            ToolResultSeen {
                call_id: id.to_string(),
                tool,
                input,
                output: flatten_text(r.output.unwrap_or(&Value::Null)),
                error: r.error,
            }
        })
        .collect()
}

/// Gemini results carry no call id (or an optional one): match by id when present, else the
/// first unused call of the same name; a result without id is named `NAME#N`.
fn gemini_results(contents: &[Value]) -> Vec<ToolResultSeen> {
    let mut out = Vec::new();
    let parts: Vec<&Value> = contents
        .iter()
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten()
        .collect();
    let field =
        |p: &Value, camel: &str, snake: &str| p.get(camel).or_else(|| p.get(snake)).cloned();
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
        out.push(ToolResultSeen {
            call_id,
            tool: name.to_string(),
            input,
            output,
            error: false,
        });
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
    fn responses_results_and_results_whose_call_is_not_in_the_history() {
        let responses = serde_json::json!({"input":[
            {"type":"function_call","call_id":"r1","name":"grep","arguments":"{\"q\":1}"},
            {"type":"function_call_output","call_id":"r1","output":"found"},
            {"type":"function_call_output","call_id":"gone","output":"?"}]});
        let t = tool_results(Api::OpenAiResponses, &responses);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].tool.as_str(), &t[0].input),
            ("grep", &serde_json::json!({"q": 1}))
        );
        assert_eq!(
            (t[1].call_id.as_str(), t[1].tool.as_str()),
            ("gone", "unknown")
        );
        assert_eq!(t[1].input, Value::Null);

        // A chat result that names its tool keeps the name when its call is missing.
        let chat = serde_json::json!({"messages":[
            {"role":"tool","tool_call_id":"x","name":"bash","content":"ok"},
            {"role":"tool","content":"no id"}]});
        let t = tool_results(Api::OpenAiChat, &chat);
        assert_eq!(
            (t[0].tool.as_str(), t[1].tool.as_str()),
            ("bash", "unknown")
        );
        assert_eq!(t[1].call_id, "");
    }

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
