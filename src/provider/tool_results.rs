//! Reading an agent's request: the tool results it sends back, per wire API, so `tapeloop
//! exec` can see how a black-box agent answered the calls it was served (a result, an error,
//! or a rejection).

use serde_json::Value;

use super::Api;

/// One tool result in a request: the call id it answers, its text, and whether the agent
/// marked it as an error.
pub type ToolResultSeen = (String, String, bool);

/// The tool results in `body`, in request order. Only the results of the request's last
/// turn matter to a caller comparing requests in order, but all are returned: earlier ones
/// repeat what earlier requests sent.
pub fn tool_results(api: Api, body: &Value) -> Vec<ToolResultSeen> {
    let mut out = Vec::new();
    match api {
        Api::OpenAiChat => {
            for m in items(body, "messages") {
                if m.get("role").and_then(Value::as_str) == Some("tool") {
                    out.push((
                        str_at(m, "tool_call_id"),
                        content_text(m.get("content")),
                        false,
                    ));
                }
            }
        }
        Api::OpenAiResponses => {
            for it in items(body, "input") {
                if it.get("type").and_then(Value::as_str) == Some("function_call_output") {
                    out.push((str_at(it, "call_id"), content_text(it.get("output")), false));
                }
            }
        }
        Api::Anthropic => {
            for m in items(body, "messages") {
                for block in m
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                        out.push((
                            str_at(block, "tool_use_id"),
                            content_text(block.get("content")),
                            block.get("is_error").and_then(Value::as_bool) == Some(true),
                        ));
                    }
                }
            }
        }
        Api::Gemini => {
            for c in items(body, "contents") {
                for part in c
                    .get("parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(fr) = part.get("functionResponse") {
                        let id = fr
                            .get("id")
                            .and_then(Value::as_str)
                            .or_else(|| fr.get("name").and_then(Value::as_str))
                            .unwrap_or_default()
                            .to_string();
                        let response = fr.get("response");
                        let is_error = response.and_then(|r| r.get("error")).is_some();
                        out.push((id, content_text(response), is_error));
                    }
                }
            }
        }
    }
    out
}

fn items<'a>(body: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    body.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn str_at(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A content field as text: a string as is, text parts joined, anything else as JSON.
fn content_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("text").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join(""),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_apis_tool_results() {
        let chat = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c1"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}]});
        assert_eq!(
            tool_results(Api::OpenAiChat, &chat),
            vec![("c1".into(), "42".into(), false)]
        );
        let responses =
            json!({"input": [{"type": "function_call_output", "call_id": "fc", "output": "ok"}]});
        assert_eq!(
            tool_results(Api::OpenAiResponses, &responses),
            vec![("fc".into(), "ok".into(), false)]
        );
        let anthropic = json!({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu", "is_error": true,
             "content": [{"type": "text", "text": "The user rejected permission"}]}]}]});
        assert_eq!(
            tool_results(Api::Anthropic, &anthropic),
            vec![("tu".into(), "The user rejected permission".into(), true)]
        );
        let gemini = json!({"contents": [{"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {"result": 1}}}]}]});
        assert_eq!(
            tool_results(Api::Gemini, &gemini),
            vec![("f".into(), "{\"result\":1}".into(), false)]
        );
    }

    #[test]
    fn hostile_shapes_give_nothing_rather_than_panic() {
        for api in Api::ALL {
            for body in [
                json!(null),
                json!([]),
                json!({"messages": 3}),
                json!({"messages": [1, "x", null]}),
                json!({"input": {"a": 1}}),
                json!({"contents": [{"parts": "nope"}]}),
            ] {
                let _ = tool_results(api, &body);
            }
        }
    }
}
