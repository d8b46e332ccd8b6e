//! Mock tools: answering tool calls from `[[tools.results]]` (FORMATS.md "Tool results").
//!
//! A call is answered by the first entry, in file order, whose `when` is a subset of the
//! call's arguments and that has not answered a call yet; once every matching entry has been
//! used, the last matching one answers again. "Subset" means every key of `when` is present in
//! the arguments with an equal value, recursively for nested objects; arrays and scalars
//! compare by equality (numbers by value, so `1` equals `1.0`). An absent `when` matches every
//! call. State is per [`ToolScripts`] value: make one per run, and the answers are
//! deterministic.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::schema::{ResultRule, Scenario, ScenarioTool, ToolAnswer};

/// A call to a scripted tool that no `[[tools.results]]` entry matches. The runner sends
/// [`NoMatch::to_answer`] back to the model and adds [`NoMatch::warning`] to the report.
#[derive(Debug, Clone, PartialEq)]
pub struct NoMatch {
    pub tool: String,
    pub args: Value,
}

impl NoMatch {
    /// The error result for the model.
    pub fn to_answer(&self) -> ToolAnswer {
        ToolAnswer {
            output: format!(
                "tapeloop: no scripted result of tool `{}` matches arguments {}",
                self.tool, self.args
            ),
            is_error: true,
        }
    }

    /// The warning line for the run report.
    pub fn warning(&self) -> String {
        format!(
            "tool `{}` called with {} but no [[tools.results]] entry matches; answered with an error",
            self.tool, self.args
        )
    }
}

#[derive(Debug, Clone)]
struct Script {
    rules: Vec<ResultRule>,
    used: Vec<bool>,
}

/// The scripted tools of one run, with their "already answered" state.
#[derive(Debug, Clone, Default)]
pub struct ToolScripts {
    scripts: IndexMap<String, Script>,
}

impl ToolScripts {
    /// Scripts for the tools that have `[[tools.results]]`.
    pub fn new(tools: &[ScenarioTool]) -> Self {
        let scripts = tools
            .iter()
            .filter(|t| !t.results.is_empty())
            .map(|t| {
                (
                    t.spec.name.clone(),
                    Script {
                        rules: t.results.clone(),
                        used: vec![false; t.results.len()],
                    },
                )
            })
            .collect();
        ToolScripts { scripts }
    }

    /// Scripts for a scenario's tools.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        ToolScripts::new(&scenario.tools)
    }

    /// Whether the scenario scripts this tool (else the cassette's `tool` lines answer it).
    pub fn is_scripted(&self, tool: &str) -> bool {
        self.scripts.contains_key(tool)
    }

    /// Answer a call. `None`: the tool is not scripted (use the cassette). `Some(Err)`: it is
    /// scripted but no entry matches these arguments.
    pub fn answer(&mut self, tool: &str, args: &Value) -> Option<Result<ToolAnswer, NoMatch>> {
        let script = self.scripts.get_mut(tool)?;
        let matching: Vec<usize> = script
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.when.as_ref().is_none_or(|w| map_subset(w, args)))
            .map(|(i, _)| i)
            .collect();
        let Some(&last) = matching.last() else {
            return Some(Err(NoMatch {
                tool: tool.to_string(),
                args: args.clone(),
            }));
        };
        let chosen = matching
            .iter()
            .copied()
            .find(|&i| !script.used[i])
            .unwrap_or(last);
        script.used[chosen] = true;
        Some(Ok(script.rules[chosen].answer.clone()))
    }

    /// Forget which entries have answered (start of a new run).
    pub fn reset(&mut self) {
        for s in self.scripts.values_mut() {
            s.used.iter_mut().for_each(|u| *u = false);
        }
    }
}

fn map_subset(when: &Map<String, Value>, args: &Value) -> bool {
    let Some(args) = args.as_object() else {
        return when.is_empty();
    };
    when.iter()
        .all(|(k, w)| args.get(k).is_some_and(|a| subset(w, a)))
}

/// `when` ⊆ `value`: objects recursively by key, everything else by [`json_eq`].
pub fn subset(when: &Value, value: &Value) -> bool {
    match when {
        Value::Object(w) => value.is_object() && map_subset(w, value),
        _ => json_eq(when, value),
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
