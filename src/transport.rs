//! Transports: where the response to a model request comes from.
//!
//! In replay, [`CassetteReplay`] serves a cassette's interactions in order and answers tool
//! calls from its `tool` lines; it checks each request against the recorded one in `strict`
//! mode. Live recording sends over HTTP instead (the recorder), and the same adapter code
//! decodes both.

use serde_json::Value;

use std::borrow::Cow;

use crate::cassette::{Cassette, CassetteError, CassetteStream, Interaction, ToolRecord};

pub use crate::scenario::MatchMode;

/// Why a request could not be answered from the cassette.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayMiss {
    /// Every interaction has been used.
    Exhausted { available: usize },
    /// Strict mode: the request differs from the recorded one at `path`.
    Divergence {
        interaction: u64,
        path: String,
        recorded: String,
        sent: String,
    },
}

impl std::fmt::Display for ReplayMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayMiss::Exhausted { available } => write!(
                f,
                "the loop asked for request {} but the cassette has only {available}",
                available + 1
            ),
            ReplayMiss::Divergence {
                interaction,
                path,
                recorded,
                sent,
            } => write!(
                f,
                "request differs from recorded interaction {interaction} at {path}: recorded {recorded}, sent {sent}"
            ),
        }
    }
}

/// Serves one cassette's interactions and tool results to one replay, from a cassette loaded
/// whole or from a [`CassetteStream`] that reads the file as the replay goes.
pub struct CassetteReplay<'a> {
    source: Source<'a>,
    next: usize,
    tool_used: Vec<bool>,
    mode: MatchMode,
}

enum Source<'a> {
    Loaded(&'a Cassette),
    Streamed(Box<CassetteStream>),
}

/// How a replay's cassette ended, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEnd {
    /// Complete interactions the cassette holds.
    pub interactions: usize,
    /// Interactions the run never asked for.
    pub unused: usize,
    /// The cassette had no footer.
    pub truncated: bool,
}

impl<'a> CassetteReplay<'a> {
    pub fn new(cassette: &'a Cassette, mode: MatchMode) -> Self {
        CassetteReplay {
            source: Source::Loaded(cassette),
            next: 0,
            tool_used: vec![false; cassette.tools.len()],
            mode,
        }
    }

    /// Replay from a stream: memory stays bounded by the interactions in flight.
    pub fn streamed(stream: CassetteStream, mode: MatchMode) -> CassetteReplay<'static> {
        CassetteReplay {
            source: Source::Streamed(Box::new(stream)),
            next: 0,
            tool_used: Vec::new(),
            mode,
        }
    }

    /// The next interaction for a request. `body` builds the request body; it is only called
    /// in strict mode, so sequence-mode replay never pays for building it.
    pub fn next_response(
        &mut self,
        body: impl FnOnce() -> Value,
    ) -> Result<Cow<'a, Interaction>, ReplayMiss> {
        let inter: Cow<'a, Interaction> = match &mut self.source {
            Source::Loaded(c) => {
                let c: &'a Cassette = c;
                match c.interactions.get(self.next) {
                    Some(i) => Cow::Borrowed(i),
                    None => {
                        return Err(ReplayMiss::Exhausted {
                            available: c.interactions.len(),
                        })
                    }
                }
            }
            Source::Streamed(s) => match s.next_interaction() {
                Some(i) => Cow::Owned(i),
                None => {
                    return Err(ReplayMiss::Exhausted {
                        available: s.served(),
                    })
                }
            },
        };
        if self.mode == MatchMode::Strict {
            if let Some(diff) = first_difference(&inter.request.body, &body()) {
                return Err(ReplayMiss::Divergence {
                    interaction: inter.id,
                    path: diff.path,
                    recorded: diff.left,
                    sent: diff.right,
                });
            }
        }
        self.next += 1;
        Ok(inter)
    }

    /// How many interactions were consumed.
    pub fn used(&self) -> usize {
        self.next
    }

    /// The recorded result of a tool call: the `tool` line with this `call_id`, else the first
    /// unused line for the same tool, in file order. Each line answers once.
    pub fn tool_result(&mut self, call_id: &str, tool: &str) -> Option<&ToolRecord> {
        let used = &mut self.tool_used;
        let by_id = |tools: &[ToolRecord], used: &[bool]| {
            tools.iter().enumerate().position(|(i, t)| {
                !used.get(i).copied().unwrap_or(false) && t.call_id == call_id && t.tool == tool
            })
        };
        let by_tool = |tools: &[ToolRecord], used: &[bool]| {
            tools
                .iter()
                .enumerate()
                .position(|(i, t)| !used.get(i).copied().unwrap_or(false) && t.tool == tool)
        };
        let tools: &[ToolRecord] = match &mut self.source {
            Source::Loaded(c) => &c.tools,
            Source::Streamed(s) => {
                // The lines read so far are a prefix of the file's: a `call_id` match there is
                // the first in the file. Otherwise the answer depends on lines not read yet.
                if by_id(s.tool_lines(), used).is_some() {
                    s.tool_lines()
                } else {
                    s.all_tool_lines()
                }
            }
        };
        let idx = by_id(tools, used).or_else(|| by_tool(tools, used))?;
        if used.len() < tools.len() {
            used.resize(tools.len(), false);
        }
        used[idx] = true;
        Some(&tools[idx])
    }

    /// Finish the replay: for a stream, read and check the rest of the file (the first error
    /// in it is returned); then say how many interactions went unused.
    pub fn finish(self) -> Result<ReplayEnd, CassetteError> {
        match self.source {
            Source::Loaded(c) => Ok(ReplayEnd {
                interactions: c.interactions.len(),
                unused: c.interactions.len() - self.next,
                truncated: c.is_truncated(),
            }),
            Source::Streamed(s) => {
                let end = s.finish()?;
                Ok(ReplayEnd {
                    interactions: end.interactions,
                    unused: end.interactions - self.next,
                    truncated: end.truncation.is_some(),
                })
            }
        }
    }
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
}
