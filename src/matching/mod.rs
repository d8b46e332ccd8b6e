//! Request matching: the one definition of when a sent request "is" a recorded one.
//!
//! - [`first_difference`] compares two JSON values and names the first differing path (object
//!   key order ignored, numbers by value, a recorded `[REDACTED]` placeholder matching any
//!   secret).
//! - [`canonical`] drops the volatile top-level fields and normalizes volatile text (dates,
//!   absolute paths) so two runs of the same agent compare equal.
//! - [`strict_difference`] is strict matching as `run --strict`, `serve --strict` and
//!   `record --mode new` apply it: the first difference of the two canonical bodies.
//! - [`session_key`] groups requests into conversations (the `x-tapeloop-session` header, else
//!   the conversation prefix), for `serve --match sequence|strict` and the recording proxy.
//! - [`Matcher`] is how `serve` and the proxy's `--mode new` decide which recorded request a
//!   sent one is ([`ServeMatch`]): `conversation` compares the canonical bodies with the
//!   volatile fields of [`CONVERSATION_IGNORE`] (and any `--ignore` [`IgnorePath`]) removed,
//!   so settings an agent changes between runs (stream, token limits, sampling, cache
//!   breakpoints, ids it invents) never decide the answer, while the conversation (model,
//!   system, messages / input / contents with tool calls and results, tools) always does.

use serde_json::{json, Value};

mod canonical;

pub use canonical::canonical;
use canonical::{canonical_string, canonicalize};

/// The first difference between a recorded and a sent request body, both made canonical:
/// the strict match rule (module docs).
pub fn strict_difference(recorded: &Value, sent: &Value) -> Option<JsonDifference> {
    first_difference(&canonical(recorded), &canonical(sent))
}

/// The first place two JSON values differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonDifference {
    /// A JSONPath-like location: `$.messages[2].content`.
    pub path: String,
    /// The left value there (compact JSON, `(absent)` when missing).
    pub left: String,
    pub right: String,
}

/// Compare two JSON values canonically (object key order ignored) and return the first
/// difference in document order of `left`, then keys only in `right`.
pub fn first_difference(left: &Value, right: &Value) -> Option<JsonDifference> {
    let mut path = String::from("$");
    diff_at(left, right, &mut path)
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 80 {
                let cut: String = s.chars().take(77).collect();
                format!("{cut}...")
            } else {
                s
            }
        }
    }
}

fn diff_at(left: &Value, right: &Value, path: &mut String) -> Option<JsonDifference> {
    match (left, right) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let len = path.len();
                push_key(path, k);
                let d = match b.get(k) {
                    Some(vb) => diff_at(va, vb, path),
                    None => Some(JsonDifference {
                        path: path.clone(),
                        left: show(Some(va)),
                        right: show(None),
                    }),
                };
                if d.is_some() {
                    return d;
                }
                path.truncate(len);
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    let len = path.len();
                    push_key(path, k);
                    let d = JsonDifference {
                        path: path.clone(),
                        left: show(None),
                        right: show(Some(vb)),
                    };
                    path.truncate(len);
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let d = match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff_at(x, y, path),
                    (x, y) => Some(JsonDifference {
                        path: path.clone(),
                        left: show(x),
                        right: show(y),
                    }),
                };
                if d.is_some() {
                    return d;
                }
                path.truncate(len);
            }
            None
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        (Value::String(a), Value::String(b)) if redacted_match(a, b) => None,
        (a, b) if a == b => None,
        (a, b) => Some(JsonDifference {
            path: path.clone(),
            left: show(Some(a)),
            right: show(Some(b)),
        }),
    }
}

/// Whether a recorded string with `[REDACTED]` placeholders matches a sent string: each
/// placeholder stands for whatever secret was removed before the cassette was written.
fn redacted_match(recorded: &str, sent: &str) -> bool {
    const MARK: &str = crate::cassette::REDACTED;
    if !recorded.contains(MARK) {
        return false;
    }
    let parts: Vec<&str> = recorded.split(MARK).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !sent.starts_with(first) || sent.len() < first.len() + last.len() || !sent.ends_with(last) {
        return false;
    }
    let mut rest = &sent[first.len()..sent.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn push_key(path: &mut String, key: &str) {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_string())));
    }
}

/// The session key of a request (see the module docs).
pub fn session_key(headers: &hyper::HeaderMap, body: &Value) -> String {
    if let Some(v) = headers
        .get("x-tapeloop-session")
        .and_then(|v| v.to_str().ok())
    {
        return format!("header:{v}");
    }
    let system = body
        .get("system")
        .or_else(|| body.get("instructions"))
        .or_else(|| body.get("systemInstruction"))
        .cloned()
        .unwrap_or(Value::Null);
    let first = ["messages", "input", "contents"]
        .iter()
        .find_map(|k| body.get(*k))
        .map(first_turn)
        .unwrap_or(Value::Null);
    let canon = canonical(&json!([system, first]));
    let digest = sha2_hex(canonical_string(&canon).as_bytes());
    format!("prefix:{}", &digest[..12])
}

/// The opening of a conversation: its leading system/developer messages (OpenAI keeps the
/// system prompt inside `messages` / `input`) plus the first other message, so runs that share
/// a system prompt but start from different prompts get different sessions.
fn first_turn(v: &Value) -> Value {
    let Value::Array(items) = v else {
        return v.clone(); // Responses `input` as a plain string
    };
    let is_system = |m: &Value| {
        matches!(
            m.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        )
    };
    let lead: Vec<Value> = items.iter().take_while(|m| is_system(m)).cloned().collect();
    let first = items
        .iter()
        .find(|m| !is_system(m))
        .cloned()
        .unwrap_or(Value::Null);
    json!([lead, first])
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

crate::string_enum! {
    /// How `serve` finds the recorded interaction for a request (`--match`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum ServeMatch: "match mode" {
        /// By conversation, over every cassette served ([`Matcher`]).
        #[default]
        Conversation = "conversation",
        /// In recorded order per session; bodies are not compared.
        Sequence = "sequence",
        /// In recorded order per session; a body that differs is refused.
        Strict = "strict",
    }
}

/// Fields conversation matching ignores by default: request settings rather than the
/// conversation (streaming, token limits, sampling, storage and tracing fields), Anthropic
/// cache breakpoints (agents move them every step) and ids a client invents for its own input
/// items. [`canonical`] already drops `user`, `metadata`, `store`, `prompt_cache_key`,
/// `safety_identifier` and `service_tier`.
pub const CONVERSATION_IGNORE: &[&str] = &[
    "$.stream",
    "$.stream_options",
    "$.max_tokens",
    "$.max_completion_tokens",
    "$.max_output_tokens",
    "$.temperature",
    "$.top_p",
    "$.top_k",
    "$.seed",
    "$.n",
    "$.presence_penalty",
    "$.frequency_penalty",
    "$.logprobs",
    "$.top_logprobs",
    "$.parallel_tool_calls",
    "$.generationConfig",
    "$.include",
    "$.truncation",
    "$..cache_control",
    "$.messages[*].id",
    "$.input[*].id",
];

/// A field pattern to leave out of matching: `$.a.b`, `$.a[*].b`, `$.a[0]`, `$..b` (key `b`
/// at any depth), `$["odd key"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    Any,
    Anywhere(String),
}

impl std::fmt::Display for IgnorePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for IgnorePath {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("ignore path `{text}`: {why} (write e.g. `$.temperature`, `$.messages[*].id` or `$..cache_control`)")
        };
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(bad("it must start with `$`"));
        };
        let mut segments = Vec::new();
        let key_len = |r: &str| r.find(['.', '[']).unwrap_or(r.len());
        while !rest.is_empty() {
            let dotted = match rest.strip_prefix("..") {
                Some(r) => Some(("..", r, Segment::Anywhere as fn(String) -> Segment)),
                None => rest
                    .strip_prefix('.')
                    .map(|r| (".", r, Segment::Key as fn(_) -> _)),
            };
            if let Some((dots, r, segment)) = dotted {
                let n = key_len(r);
                if n == 0 {
                    return Err(bad(&format!("`{dots}` must be followed by a key")));
                }
                segments.push(segment(r[..n].to_string()));
                rest = &r[n..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else {
                    return Err(bad("a `[` is not closed"));
                };
                let inner = &r[..end];
                segments.push(if inner == "*" {
                    Segment::Any
                } else if let Ok(i) = inner.parse::<usize>() {
                    Segment::Index(i)
                } else if let Ok(Value::String(k)) = serde_json::from_str::<Value>(inner) {
                    Segment::Key(k)
                } else {
                    return Err(bad("`[...]` holds `*`, an index or a quoted key"));
                });
                rest = &r[end + 1..];
            } else {
                return Err(bad("expected `.`, `..` or `[` after `$`"));
            }
        }
        if segments.is_empty() {
            return Err(bad("it names no field"));
        }
        Ok(IgnorePath {
            text: text.to_string(),
            segments,
        })
    }
}

impl IgnorePath {
    /// Remove what the path names from `value`.
    pub fn remove(&self, value: &mut Value) {
        remove_at(value, &self.segments);
    }
}

fn remove_at(value: &mut Value, segments: &[Segment]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let last = rest.is_empty();
    match (first, value) {
        (Segment::Key(k), Value::Object(m)) => {
            if last {
                m.shift_remove(k);
            } else if let Some(v) = m.get_mut(k) {
                remove_at(v, rest);
            }
        }
        (Segment::Index(i), Value::Array(a)) => {
            if last {
                if *i < a.len() {
                    a.remove(*i);
                }
            } else if let Some(v) = a.get_mut(*i) {
                remove_at(v, rest);
            }
        }
        (Segment::Any, Value::Array(a)) => {
            if last {
                a.clear();
            } else {
                a.iter_mut().for_each(|v| remove_at(v, rest));
            }
        }
        (Segment::Any, Value::Object(m)) => {
            if last {
                m.clear();
            } else {
                m.values_mut().for_each(|v| remove_at(v, rest));
            }
        }
        (Segment::Anywhere(k), v) => remove_anywhere(v, k, rest),
        _ => {}
    }
}

fn remove_anywhere(value: &mut Value, key: &str, rest: &[Segment]) {
    match value {
        Value::Object(m) => {
            if rest.is_empty() {
                m.shift_remove(key);
            } else if let Some(v) = m.get_mut(key) {
                remove_at(v, rest);
            }
            m.values_mut().for_each(|v| remove_anywhere(v, key, rest));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| remove_anywhere(v, key, rest)),
        _ => {}
    }
}

/// A request body made ready for comparison under one [`Matcher`]: computed once per
/// recorded request and once per sent one.
#[derive(Debug, Clone)]
pub struct Prepared {
    value: Value,
    /// The canonical text with sorted keys, to rank near misses.
    text: String,
}

impl Prepared {
    /// The canonical body.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// Gemini function schemas name their types in either case (`OBJECT` from google-genai,
/// `object` from raw HTTP and most recorders); the API accepts both, so conversation matching
/// compares them lowercased.
fn lowercase_gemini_schema_types(body: &mut Value) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match x {
                        Value::String(s) if k == "type" => *s = s.to_ascii_lowercase(),
                        _ => walk(x),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Some(Value::Array(tools)) = body.get_mut("tools") else {
        return;
    };
    for t in tools {
        if let Some(Value::Array(decls)) = t.get_mut("functionDeclarations") {
            for d in decls {
                if let Some(p) = d.get_mut("parameters") {
                    walk(p);
                }
            }
        }
    }
}

/// The match rule of `serve` and the proxy (module docs).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub mode: ServeMatch,
    ignore: Vec<IgnorePath>,
}

impl Matcher {
    /// `mode` with `extra` ignore paths: conversation mode adds them to
    /// [`CONVERSATION_IGNORE`]; strict mode uses only them (none: exactly `run --strict`).
    pub fn new(mode: ServeMatch, extra: Vec<IgnorePath>) -> Self {
        let mut ignore: Vec<IgnorePath> = if mode == ServeMatch::Conversation {
            CONVERSATION_IGNORE
                .iter()
                .map(|p| p.parse().expect("the default ignore paths parse"))
                .collect()
        } else {
            Vec::new()
        };
        ignore.extend(extra);
        Matcher { mode, ignore }
    }

    /// The ignore paths in force.
    pub fn ignored(&self) -> &[IgnorePath] {
        &self.ignore
    }

    /// `body` made canonical, without the ignored fields, with `model` filled in when the body
    /// names none (Gemini carries it in the path, a cassette in its header).
    pub fn prepare(&self, body: &Value, model: Option<&str>) -> Prepared {
        self.prepare_owned(body.clone(), model)
    }

    /// [`Matcher::prepare`] for a body the caller gives up, made canonical in place.
    pub fn prepare_owned(&self, mut value: Value, model: Option<&str>) -> Prepared {
        canonicalize(&mut value);
        for p in &self.ignore {
            p.remove(&mut value);
        }
        if self.mode == ServeMatch::Conversation {
            lowercase_gemini_schema_types(&mut value);
        }
        if let (Value::Object(m), Some(model)) = (&mut value, model) {
            if !m.contains_key("model") {
                m.insert("model".into(), Value::String(model.to_string()));
            }
        }
        let text = canonical_string(&value);
        Prepared { value, text }
    }

    /// The first difference of two prepared bodies (`None`: they match).
    pub fn difference(&self, recorded: &Prepared, sent: &Prepared) -> Option<JsonDifference> {
        if recorded.text == sent.text {
            return None;
        }
        first_difference(&recorded.value, &sent.value)
    }

    /// How close a recorded request is to a sent one, to name the nearest on a miss: the
    /// length of the common prefix of their canonical texts (sorted keys, so the
    /// conversation arrays weigh first).
    pub fn closeness(recorded: &Prepared, sent: &Prepared) -> usize {
        recorded
            .text
            .bytes()
            .zip(sent.text.bytes())
            .take_while(|(a, b)| a == b)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_is_ignored() {
        assert_eq!(
            first_difference(&json!({"a": 1, "b": [1, 2]}), &json!({"b": [1, 2], "a": 1})),
            None
        );
    }

    #[test]
    fn reports_first_differing_path() {
        let d = first_difference(
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            &json!({"model": "m", "messages": [{"role": "user", "content": "ho"}]}),
        )
        .unwrap();
        assert_eq!(d.path, "$.messages[0].content");
        assert_eq!(d.left, "\"hi\"");
        assert_eq!(d.right, "\"ho\"");
    }

    #[test]
    fn missing_and_extra_keys_and_elements() {
        let d = first_difference(&json!({"a": 1}), &json!({"a": 1, "b": 2})).unwrap();
        assert_eq!((d.path.as_str(), d.left.as_str()), ("$.b", "(absent)"));
        let d = first_difference(&json!([1, 2]), &json!([1])).unwrap();
        assert_eq!((d.path.as_str(), d.right.as_str()), ("$[1]", "(absent)"));
        let d = first_difference(&json!({"x-y": 1}), &json!({"x-y": 2})).unwrap();
        assert_eq!(d.path, "$[\"x-y\"]");
    }

    #[test]
    fn redacted_values_match_any_secret() {
        let recorded =
            json!({"headers": {"authorization": "Bearer [REDACTED]"}, "k": "[REDACTED]"});
        let sent = json!({"headers": {"authorization": "Bearer sk-live-123"}, "k": "AIzaXYZ"});
        assert_eq!(first_difference(&recorded, &sent), None);
        let wrong = json!({"headers": {"authorization": "Basic abc"}, "k": "x"});
        assert_eq!(
            first_difference(&recorded, &wrong).unwrap().path,
            "$.headers.authorization"
        );
        assert!(redacted_match("a [REDACTED] b [REDACTED] c", "a 1 b 2 c"));
        assert!(!redacted_match("a [REDACTED] b [REDACTED] c", "a 1 x 2 c"));
        assert!(!redacted_match("plain", "plain"));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(first_difference(&json!(1.0), &json!(1)), None);
    }

    #[test]
    fn canonical_drops_volatile_fields_and_text() {
        let a = json!({"model": "m", "user": "u1", "messages": [{"role": "system", "content": "Today is 2026-11-21. cwd: /home/alice/proj"}]});
        let b = json!({"messages": [{"content": "Today is 2025-01-02. cwd: /tmp/x", "role": "system"}], "model": "m", "user": "u2"});
        assert_eq!(first_difference(&canonical(&a), &canonical(&b)), None);
        let c = json!({"model": "m2"});
        assert!(first_difference(&canonical(&a), &canonical(&c)).is_some());
    }

    #[test]
    fn session_keys() {
        let mut h = hyper::HeaderMap::new();
        let body = json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]});
        let body2 = json!({"messages": [{"role": "user", "content": "hi"}]});
        let other = json!({"messages": [{"role": "user", "content": "bye"}]});
        assert_eq!(session_key(&h, &body), session_key(&h, &body2));
        assert_ne!(session_key(&h, &body), session_key(&h, &other));
        // OpenAI keeps the system prompt in `messages`: the user prompt must still count.
        let sys_a = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}]});
        let sys_a2 = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}]});
        let sys_b = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "b"}]});
        assert_eq!(session_key(&h, &sys_a), session_key(&h, &sys_a2));
        assert_ne!(session_key(&h, &sys_a), session_key(&h, &sys_b));
        let input_a = json!({"input": [{"role": "developer", "content": "s"}, {"role": "user", "content": "a"}]});
        let input_b = json!({"input": [{"role": "developer", "content": "s"}, {"role": "user", "content": "b"}]});
        assert_ne!(session_key(&h, &input_a), session_key(&h, &input_b));
        h.insert("x-tapeloop-session", "abc".parse().unwrap());
        assert_eq!(session_key(&h, &body), "header:abc");
    }

    #[test]
    fn ignore_paths_parse_and_remove() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "m": [{"id": 1, "x": 1}, {"id": 2}],
            "deep": [{"cache_control": 1, "k": {"cache_control": 2}}], "odd key": 1});
        for p in [
            "$.a.b",
            "$.m[*].id",
            "$..cache_control",
            "$[\"odd key\"]",
            "$.m[1]",
        ] {
            p.parse::<IgnorePath>().unwrap().remove(&mut v);
        }
        assert_eq!(
            v,
            json!({"a": {"c": 2}, "m": [{"x": 1}], "deep": [{"k": {}}]})
        );
        for bad in ["", "a.b", "$", "$.", "$..", "$[", "$[x]", "$a"] {
            let e = bad.parse::<IgnorePath>().unwrap_err();
            assert!(e.contains("ignore path"), "{bad}: {e}");
        }
        // Removing what is absent, or through a scalar, changes nothing.
        let mut s = json!(3);
        "$.a[*].b".parse::<IgnorePath>().unwrap().remove(&mut s);
        assert_eq!(s, json!(3));
    }

    #[test]
    fn conversation_matching_ignores_settings_but_not_the_conversation() {
        let m = Matcher::new(ServeMatch::Conversation, Vec::new());
        let rec = json!({"model": "m", "stream": true, "max_tokens": 10, "temperature": 0.2,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]});
        let sent = json!({"model": "m", "stream": false, "max_tokens": 99,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
        assert!(m
            .difference(&m.prepare(&rec, None), &m.prepare(&sent, None))
            .is_none());
        let other = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "ho"}]}]});
        let d = m
            .difference(&m.prepare(&rec, None), &m.prepare(&other, None))
            .unwrap();
        assert_eq!(d.path, "$.messages[0].content[0].text");
        // The model is part of the conversation, from the body or from outside it.
        let gem = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
        assert!(m
            .difference(&m.prepare(&gem, Some("a")), &m.prepare(&gem, Some("a")))
            .is_none());
        let d = m
            .difference(&m.prepare(&gem, Some("a")), &m.prepare(&gem, Some("b")))
            .unwrap();
        assert_eq!(d.path, "$.model");
        // Gemini schema type names in either case.
        let upper = json!({"contents": [], "tools": [{"functionDeclarations": [{"name": "f",
            "parameters": {"type": "OBJECT", "properties": {"type": {"type": "STRING"}}}}]}]});
        let lower = json!({"contents": [], "tools": [{"functionDeclarations": [{"name": "f",
            "parameters": {"type": "object", "properties": {"type": {"type": "string"}}}}]}]});
        assert!(m
            .difference(&m.prepare(&upper, None), &m.prepare(&lower, None))
            .is_none());
        // Strict keeps the settings unless told otherwise.
        let strict = Matcher::new(ServeMatch::Strict, Vec::new());
        assert_eq!(
            strict
                .difference(&strict.prepare(&rec, None), &strict.prepare(&sent, None))
                .unwrap()
                .path,
            "$.stream"
        );
        let strict = Matcher::new(
            ServeMatch::Strict,
            [
                "$.max_tokens",
                "$.stream",
                "$.temperature",
                "$..cache_control",
            ]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect(),
        );
        assert!(strict
            .difference(&strict.prepare(&rec, None), &strict.prepare(&sent, None))
            .is_none());
        // The nearest recorded request shares the longest canonical prefix.
        let near = Matcher::closeness(&m.prepare(&rec, None), &m.prepare(&other, None));
        let far = Matcher::closeness(
            &m.prepare(&json!({"model": "z"}), None),
            &m.prepare(&other, None),
        );
        assert!(near > far);
    }
}
