//! The sections of a scenario file, read into a [`Scenario`]: the top level, `cassettes`,
//! `[limits]`, `[policy]`, `[[tools]]` with their `[[tools.results]]`, and `[expect]`. Each
//! lists its valid keys, so a typo is reported with the nearest one.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::conversation::ToolSpec;
use crate::processor::config::{CompactionMode, DoomAction, RetryPreset, DETECTOR_FORMS};
use crate::provider::Api;
use crate::report::{Finish, FINISH_REASONS};

use super::expect::{DetectorExpect, DoomExpect, Expectations, RetryAfterExpect, TokenBounds};
use super::load::LoadOptions;
use super::reader::{did_you_mean, kind, Ctx, Tbl};
use super::schema::{
    CassetteRef, Limits, MatchMode, Policy, ResultRule, Scenario, ScenarioTool, ToolAnswer,
};
use super::suggest::nearest;

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "api",
    "model",
    "provider",
    "cassettes",
    "system",
    "prompt",
    "limits",
    "policy",
    "tools",
    "expect",
    "agent",
];
const LIMITS_KEYS: &[&str] = &[
    "max_steps",
    "soft_max_steps",
    "max_retries",
    "context",
    "output",
];
const POLICY_KEYS: &[&str] = &[
    "doom_loop",
    "doom_action",
    "retry",
    "seed",
    "compaction",
    "match",
];
const TOOL_KEYS: &[&str] = &["name", "description", "schema", "results"];
const RESULT_KEYS: &[&str] = &["when", "output", "error"];
const EXPECT_KEYS: &[&str] = &[
    "finish",
    "doom_loop",
    "retries",
    "steps",
    "tool_calls",
    "cost_usd",
    "tokens",
    "sim_ms",
    "detectors",
    "retry_after",
];
const TOKEN_KEYS: &[&str] = &[
    "input",
    "output",
    "reasoning",
    "cache_read",
    "cache_write",
    "total",
];
const DOOM_EXPECT_KEYS: &[&str] = &["step", "tool", "detector"];

impl Ctx<'_> {
    pub(super) fn scenario(&mut self, root: &Tbl, opts: &LoadOptions) -> Scenario {
        self.known_keys(root, ROOT_KEYS);
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match self.string(root, "name") {
            Some(n) if n.trim().is_empty() => {
                self.value_error(root, "name", "`name` must not be empty".into(), None);
                n
            }
            Some(n) => n,
            None => stem,
        };
        let api_names: Vec<&str> = Api::ALL.iter().map(|a| a.as_str()).collect();
        let api = self.named::<Api>(root, "api", &api_names);
        let cassettes = self.cassettes(root, opts);
        let prompt = self.string(root, "prompt");
        if root.t.get("prompt").is_none() {
            self.missing(root, "prompt");
        }
        let limits = self.limits(root);
        let policy = self.policy(root);
        let tools = self.tools(root);
        let agent = self.agent(root);
        let expect = match self.sub_table(root, "expect", "[expect]") {
            Some(t) => self.expect(&t),
            None => Expectations::default(),
        };
        Scenario {
            path: self.path.to_path_buf(),
            name,
            description: self.string(root, "description"),
            api,
            model: self.string(root, "model"),
            provider: self.string(root, "provider"),
            cassettes,
            system: self.string(root, "system"),
            prompt: prompt.unwrap_or_default(),
            limits,
            policy,
            tools,
            expect,
            agent,
        }
    }

    fn cassettes(&mut self, root: &Tbl, opts: &LoadOptions) -> Vec<CassetteRef> {
        let Some(item) = root.t.get("cassettes") else {
            self.missing(root, "cassettes");
            return Vec::new();
        };
        let Some(arr) = item.as_array() else {
            let hint = item
                .as_str()
                .map(|s| format!("write a list: cassettes = [\"{s}\"]"));
            self.value_error(
                root,
                "cassettes",
                format!(
                    "`cassettes` must be an array of paths, found {}",
                    kind(item)
                ),
                hint,
            );
            return Vec::new();
        };
        if arr.is_empty() {
            self.value_error(
                root,
                "cassettes",
                "`cassettes` lists no cassette to replay".into(),
                None,
            );
        }
        let dir = self.path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut out: Vec<CassetteRef> = Vec::new();
        for v in arr.iter() {
            let Some(written) = v.as_str() else {
                self.error(
                    v.span(),
                    "each entry of `cassettes` must be a path string".into(),
                    None,
                );
                continue;
            };
            let path = dir.join(written);
            if out.iter().any(|c| c.path == path) {
                self.error(
                    v.span(),
                    format!("cassette `{written}` is listed twice"),
                    None,
                );
                continue;
            }
            if opts.check_cassettes && !path.is_file() {
                let hint = cassette_hint(written, &path);
                self.error(
                    v.span(),
                    format!(
                        "cassette `{written}` not found (looked for {})",
                        path.display()
                    ),
                    hint,
                );
            }
            out.push(CassetteRef {
                written: written.to_string(),
                path,
            });
        }
        out
    }

    fn limits(&mut self, root: &Tbl) -> Limits {
        let Some(t) = self.sub_table(root, "limits", "[limits]") else {
            return Limits::default();
        };
        self.known_keys(&t, LIMITS_KEYS);
        let u32max = u64::from(u32::MAX);
        let limits = Limits {
            max_steps: self.uint(&t, "max_steps", 1, u32max).map(|n| n as u32),
            soft_max_steps: self.uint(&t, "soft_max_steps", 1, u32max).map(|n| n as u32),
            max_retries: self.uint(&t, "max_retries", 0, u32max).map(|n| n as u32),
            context: self.uint(&t, "context", 1, i64::MAX as u64),
            output: self.uint(&t, "output", 1, i64::MAX as u64),
        };
        if let (Some(soft), Some(hard)) = (limits.soft_max_steps, limits.max_steps) {
            if soft > hard {
                self.value_error(&t, "soft_max_steps", format!("`soft_max_steps` ({soft}) is above `max_steps` ({hard}) in [limits]: it would never apply"),
                    Some(format!("use a value ≤ {hard}")),
                );
            }
        }
        limits
    }

    fn policy(&mut self, root: &Tbl) -> Policy {
        let mut policy = Policy::default();
        let Some(t) = self.sub_table(root, "policy", "[policy]") else {
            return policy;
        };
        self.known_keys(&t, POLICY_KEYS);
        if let Some(item) = t.t.get("doom_loop") {
            let mut specs = Vec::new();
            let place = "`doom_loop` in [policy]";
            if let Some(s) = item.as_str() {
                let span = self.value_span(&t, "doom_loop");
                specs.extend(self.detector(s, span, place));
            } else if let Some(arr) = item.as_array() {
                for v in arr.iter() {
                    match v.as_str() {
                        Some(s) => {
                            if let Some(d) = self.detector(s, v.span(), place) {
                                if specs.contains(&d) {
                                    self.error(
                                        v.span(),
                                        format!("detector `{d}` is listed twice in {place}"),
                                        None,
                                    );
                                } else {
                                    specs.push(d);
                                }
                            }
                        }
                        None => self.error(
                            v.span(),
                            format!("each entry of {place} must be a detector name string"),
                            Some(format!("valid forms: {}", DETECTOR_FORMS.join(", "))),
                        ),
                    }
                }
            } else {
                self.type_error(&t, "doom_loop", "a detector name or a list of names");
            }
            policy.doom_loop = specs;
        }
        if let Some(v) = self.named(&t, "doom_action", &DoomAction::NAMES) {
            policy.doom_action = v;
        }
        if let Some(v) = self.named(&t, "retry", &RetryPreset::NAMES) {
            policy.retry = v;
        }
        if let Some(v) = self.uint(&t, "seed", 0, i64::MAX as u64) {
            policy.seed = v;
        }
        if let Some(v) = self.named(&t, "compaction", &CompactionMode::NAMES) {
            policy.compaction = v;
        }
        if let Some(v) = self.named(&t, "match", &MatchMode::NAMES) {
            policy.match_mode = v;
        }
        policy
    }

    fn tools(&mut self, root: &Tbl) -> Vec<ScenarioTool> {
        let mut out: Vec<ScenarioTool> = Vec::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for t in self.table_list(root, "tools", "[[tools]]") {
            self.known_keys(&t, TOOL_KEYS);
            let name = self.string(&t, "name");
            if t.t.get("name").is_none() {
                self.missing(&t, "name");
            }
            let name = name.unwrap_or_default();
            if t.t.get("name").is_some() {
                let span = self.value_span(&t, "name");
                if name.trim().is_empty() {
                    self.error(span, "tool `name` must not be empty".into(), None);
                } else if let Some(line) = first_line.get(&name) {
                    self.error(
                        span,
                        format!("tool `{name}` is defined twice (first at line {line})"),
                        None,
                    );
                } else {
                    let line = self.line_of(&span);
                    first_line.insert(name.clone(), line);
                }
            }
            let description = self.string(&t, "description").unwrap_or_default();
            let schema = match t.t.get("schema") {
                Some(item) if item.is_table_like() => {
                    self.json(item, &format!("schema of tool `{name}`"))
                }
                Some(_) => {
                    self.type_error(&t, "schema", "a table (a JSON schema)");
                    Json::Null
                }
                None => serde_json::json!({"type": "object", "properties": {}}),
            };
            let mut results = Vec::new();
            for r in self.table_list(&t, "results", "[[tools.results]]") {
                if let Some(rule) = self.result_rule(&r, &name) {
                    results.push(rule);
                }
            }
            out.push(ScenarioTool {
                spec: ToolSpec {
                    name,
                    description,
                    schema,
                },
                results,
            });
        }
        out
    }

    fn result_rule(&mut self, r: &Tbl, tool: &str) -> Option<ResultRule> {
        self.known_keys(r, RESULT_KEYS);
        let when = match r.t.get("when") {
            Some(item) if item.is_table_like() => match self.json(item, "`when`") {
                Json::Object(m) => Some(m),
                _ => None,
            },
            Some(_) => {
                self.type_error(r, "when", "a table of argument values");
                None
            }
            None => None,
        };
        let output = self.string(r, "output");
        let error = match r.t.get("error") {
            Some(item) if item.as_bool().is_some() => {
                self.value_error(r, "error", format!("`error` in [[tools.results]] of tool `{tool}` is the error text, not a flag"),
                    Some("answer with a tool error by writing `error = \"<message>\"` instead of `output`".into()),
                );
                return None;
            }
            _ => self.string(r, "error"),
        };
        let line = self.line_of(&r.span);
        match (output, error) {
            (Some(output), None) => Some(ResultRule {
                when,
                answer: ToolAnswer {
                    output,
                    is_error: false,
                },
                line,
            }),
            (None, Some(error)) => Some(ResultRule {
                when,
                answer: ToolAnswer {
                    output: error,
                    is_error: true,
                },
                line,
            }),
            (Some(_), Some(_)) => {
                let span = r.span.clone();
                self.error(
                    span,
                    format!(
                        "a [[tools.results]] entry of tool `{tool}` has both `output` and `error`"
                    ),
                    Some(
                        "keep one: `output` answers normally, `error` answers with a tool error"
                            .into(),
                    ),
                );
                None
            }
            (None, None) => {
                // Absent (not mistyped) and not explained by an unknown-key error already.
                let typo = r.t.iter().any(|(k, _)| !RESULT_KEYS.contains(&k));
                if r.t.get("output").is_none() && r.t.get("error").is_none() && !typo {
                    let span = r.span.clone();
                    self.error(
                        span,
                        format!("a [[tools.results]] entry of tool `{tool}` has neither `output` nor `error`"),
                        Some("add `output = \"…\"` or `error = \"…\"`".into()),
                    );
                }
                None
            }
        }
    }

    fn expect(&mut self, t: &Tbl) -> Expectations {
        self.known_keys(t, EXPECT_KEYS);
        let mut e = Expectations {
            finish: self.named::<Finish>(t, "finish", FINISH_REASONS),
            ..Expectations::default()
        };
        if let Some(item) = t.t.get("doom_loop") {
            if let Some(b) = item.as_bool() {
                e.doom_loop = Some(if b { DoomExpect::Any } else { DoomExpect::None });
            } else if let Some(sub) = self.sub_table_quiet(t, "doom_loop") {
                self.known_keys(&sub, DOOM_EXPECT_KEYS);
                let step = self.uint(&sub, "step", 1, u64::from(u32::MAX));
                // `tool` is optional: a text-repeat loop has no tool.
                let tool = self.string(&sub, "tool");
                if sub.t.get("step").is_none() {
                    self.missing(&sub, "step");
                }
                let detector = match self.string(&sub, "detector") {
                    Some(s) => {
                        let span = self.value_span(&sub, "detector");
                        self.detector(&s, span, "`detector` in [expect] doom_loop")
                            .map(Some)
                    }
                    None => Some(None),
                };
                if let (Some(step), Some(detector)) = (step, detector) {
                    e.doom_loop = Some(DoomExpect::At {
                        step: step as u32,
                        tool,
                        detector,
                    });
                }
            } else {
                self.type_error(
                    t,
                    "doom_loop",
                    "`false`, `true` or { step, tool, detector }",
                );
            }
        }
        e.retries = self.bound(t, "retries");
        e.steps = self.bound(t, "steps");
        e.tool_calls = self.bound(t, "tool_calls");
        e.cost_usd = self.float_bound(t, "cost_usd");
        e.sim_ms = self.bound(t, "sim_ms");
        e.retry_after = self.named(t, "retry_after", &RetryAfterExpect::NAMES);
        if let Some(tok) = self.sub_table(t, "tokens", "`tokens` in [expect]") {
            self.known_keys(&tok, TOKEN_KEYS);
            e.tokens = TokenBounds {
                input: self.bound(&tok, "input"),
                output: self.bound(&tok, "output"),
                reasoning: self.bound(&tok, "reasoning"),
                cache_read: self.bound(&tok, "cache_read"),
                cache_write: self.bound(&tok, "cache_write"),
                total: self.bound(&tok, "total"),
            };
        }
        if let Some(det) = self.sub_table(t, "detectors", "`detectors` in [expect]") {
            let mut map = IndexMap::new();
            let keys: Vec<String> = det.t.iter().map(|(k, _)| k.to_string()).collect();
            for key in keys {
                let span = self.key_span(&det, &key);
                let Some(spec) = self.detector(&key, span, "a key of `detectors` in [expect]")
                else {
                    continue;
                };
                let item = det.t.get(&key);
                let want = match (
                    item.and_then(|i| i.as_bool()),
                    item.and_then(|i| i.as_integer()),
                ) {
                    (Some(true), _) => Some(DetectorExpect::Fires),
                    (Some(false), _) => Some(DetectorExpect::Never),
                    (_, Some(n)) if n >= 1 && n <= i64::from(u32::MAX) => {
                        Some(DetectorExpect::At(n as u32))
                    }
                    _ => {
                        self.type_error(&det, &key, "a step number ≥ 1, `true` or `false`");
                        None
                    }
                };
                if let Some(w) = want {
                    map.insert(spec, w);
                }
            }
            e.detectors = map;
        }
        e
    }
}

/// A suggestion for a missing cassette: the nearest `.jsonl` file in the directory it points
/// into, keeping the path as the user wrote it.
fn cassette_hint(written: &str, resolved: &Path) -> Option<String> {
    let dir = resolved.parent()?;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Some(format!("directory {} does not exist", dir.display()));
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    names.sort();
    let file = resolved.file_name()?.to_string_lossy().into_owned();
    match nearest(&file, &names) {
        Some(n) => {
            let prefix = written.len() - written.rsplit(['/', '\\']).next().unwrap_or("").len();
            Some(did_you_mean(&format!("{}{n}", &written[..prefix])))
        }
        None if names.is_empty() => Some(format!("no .jsonl files in {}", dir.display())),
        None => Some(format!(
            "cassettes in {}: {}",
            dir.display(),
            names.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}
