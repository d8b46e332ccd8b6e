//! Loading and validating scenario files.
//!
//! The file is parsed with `toml_edit` (which keeps the byte span of every key and value) and
//! walked by hand, so that every problem — syntax, unknown key, wrong type, bad name, missing
//! cassette — is reported with its file, line and column, and so that all problems in a file
//! are reported together rather than one per edit-run cycle.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use indexmap::IndexMap;
use serde_json::Value as Json;
use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::conversation::ToolSpec;
use crate::processor::config::{
    CompactionMode, DetectorSpec, DoomAction, RetryPreset, DETECTOR_FORMS,
};
use crate::provider::Api;
use crate::report::{Finish, FINISH_REASONS};

use super::error::ScenarioError;
use super::expect::{Bound, DetectorExpect, DoomExpect, Expectations, FloatBound, TokenBounds};
use super::schema::{CassetteRef, Limits, MatchMode, Policy, ResultRule, Scenario, ScenarioTool};
use super::suggest::nearest;
use super::tools::ToolAnswer;

/// What to check beyond the file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Check that every cassette file exists (off for `record`, which creates them).
    pub check_cassettes: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            check_cassettes: true,
        }
    }
}

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
];
const TOKEN_KEYS: &[&str] = &[
    "input",
    "output",
    "reasoning",
    "cache_read",
    "cache_write",
    "total",
];
const BOUND_KEYS: &[&str] = &["min", "max"];
const DOOM_EXPECT_KEYS: &[&str] = &["step", "tool", "detector"];

/// Load and validate a scenario, checking that its cassettes exist. Every problem in the file
/// is returned, not just the first.
pub fn validate(path: &Path) -> Result<Scenario, Vec<ScenarioError>> {
    load(path, &LoadOptions::default())
}

/// Load and validate a scenario file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Scenario, Vec<ScenarioError>> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        vec![ScenarioError::whole_file(
            path,
            format!("cannot read scenario: {e}"),
        )]
    })?;
    parse_str(&src, path, opts)
}

/// Validate scenario text as if read from `path` (used for messages, the default name and
/// resolving cassettes).
pub fn parse_str(
    src: &str,
    path: &Path,
    opts: &LoadOptions,
) -> Result<Scenario, Vec<ScenarioError>> {
    let mut cx = Ctx::new(path, src);
    let doc = match ImDocument::parse(src) {
        Ok(doc) => doc,
        Err(e) => {
            let msg = e.message().trim().to_string();
            cx.error(e.span(), format!("TOML syntax error: {msg}"), None);
            return Err(cx.errors);
        }
    };
    let root = Tbl {
        t: doc.as_table(),
        name: "the top level".to_string(),
        span: None,
    };
    let scenario = cx.scenario(&root, opts);
    if cx.errors.is_empty() {
        Ok(scenario)
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.column));
        Err(cx.errors)
    }
}

/// Every `*.toml` file under `dir`, recursively, sorted. Hidden entries (names starting with
/// `.`) are skipped, and symbolic links to directories are not followed (no cycles). A
/// missing or unreadable directory is an error: a typo'd directory must not pass CI with zero
/// scenarios.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            ScenarioError::whole_file(&d, format!("cannot read scenario directory: {e}"))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                ScenarioError::whole_file(&d, format!("cannot read scenario directory: {e}"))
            })?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml")
                && (ft.is_file() || std::fs::metadata(&path).is_ok_and(|m| m.is_file()))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A table (standard or inline) with its name for messages and its span.
struct Tbl<'a> {
    t: &'a dyn TableLike,
    name: String,
    span: Option<Range<usize>>,
}

struct Ctx<'a> {
    path: &'a Path,
    src: &'a str,
    errors: Vec<ScenarioError>,
}

fn kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
    }
}

fn did_you_mean(s: &str) -> String {
    format!("did you mean `{s}`?")
}

/// The detector name a typo most likely meant, keeping its parameters (`consecutiv:3` →
/// `consecutive:3`).
fn detector_suggestion(s: &str) -> Option<String> {
    let heads: Vec<&str> = DETECTOR_FORMS
        .iter()
        .map(|f| f.split(':').next().unwrap_or(f))
        .collect();
    let (head, rest) = match s.split_once(':') {
        Some((h, r)) => (h, Some(r)),
        None => (s, None),
    };
    let i = heads
        .iter()
        .position(|h| Some(*h) == nearest(head, &heads))?;
    let form = DETECTOR_FORMS[i];
    Some(match (form.contains(':'), rest) {
        (true, Some(rest)) => format!("{}:{rest}", heads[i]),
        _ => form.to_string(),
    })
}

impl<'a> Ctx<'a> {
    fn new(path: &'a Path, src: &'a str) -> Self {
        Ctx {
            path,
            src,
            errors: Vec::new(),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = self.src.get(..offset).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn line_of(&self, span: &Option<Range<usize>>) -> usize {
        span.as_ref().map(|s| self.position(s.start).0).unwrap_or(1)
    }

    fn error(&mut self, span: Option<Range<usize>>, message: String, suggestion: Option<String>) {
        let (line, column) = span.map(|s| self.position(s.start)).unwrap_or((1, 1));
        self.errors.push(ScenarioError {
            path: self.path.to_path_buf(),
            line,
            column,
            message,
            suggestion,
        });
    }

    /// The span of a key's value (falling back to the key, then the table).
    fn value_span(&self, t: &Tbl, key: &str) -> Option<Range<usize>> {
        t.t.get_key_value(key)
            .and_then(|(k, item)| item.span().or_else(|| k.span()))
            .or_else(|| t.span.clone())
    }

    fn key_span(&self, t: &Tbl, key: &str) -> Option<Range<usize>> {
        t.t.get_key_value(key)
            .and_then(|(k, _)| k.span())
            .or_else(|| t.span.clone())
    }

    /// Report every key of `t` that is not in `valid`, with the nearest valid key.
    fn known_keys(&mut self, t: &Tbl, valid: &[&str]) {
        let keys: Vec<String> = t.t.iter().map(|(k, _)| k.to_string()).collect();
        for key in keys {
            if valid.contains(&key.as_str()) {
                continue;
            }
            let hint = match nearest(&key, valid) {
                Some(s) => did_you_mean(s),
                None => format!("valid keys are {}", valid.join(", ")),
            };
            let span = self.key_span(t, &key);
            self.error(
                span,
                format!("unknown key `{key}` in {}", t.name),
                Some(hint),
            );
        }
    }

    fn type_error(&mut self, t: &Tbl, key: &str, expected: &str) {
        let Some(item) = t.t.get(key) else { return };
        let found = kind(item);
        let hint = match item.as_str() {
            Some(s) if s.trim().parse::<f64>().is_ok() && !expected.contains("string") => Some(
                format!("write the number without quotes: {key} = {}", s.trim()),
            ),
            _ => None,
        };
        let span = self.value_span(t, key);
        self.error(
            span,
            format!("`{key}` in {} must be {expected}, found {found}", t.name),
            hint,
        );
    }

    fn missing(&mut self, t: &Tbl, key: &str) {
        let span = t.span.clone();
        self.error(
            span,
            format!("missing required key `{key}` in {}", t.name),
            None,
        );
    }

    fn string(&mut self, t: &Tbl, key: &str) -> Option<String> {
        let item = t.t.get(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.type_error(t, key, "a string");
                None
            }
        }
    }

    fn uint(&mut self, t: &Tbl, key: &str, min: u64, max: u64) -> Option<u64> {
        let item = t.t.get(key)?;
        let what = if min == 0 {
            "a whole number ≥ 0".to_string()
        } else {
            format!("a whole number ≥ {min}")
        };
        match item.as_integer() {
            Some(n) if n >= 0 && (n as u64) >= min && (n as u64) <= max => Some(n as u64),
            Some(n) => {
                let span = self.value_span(t, key);
                self.error(
                    span,
                    format!(
                        "`{key}` in {} must be {what} and at most {max}, found {n}",
                        t.name
                    ),
                    None,
                );
                None
            }
            None => {
                self.type_error(t, key, &what);
                None
            }
        }
    }

    /// A string naming one of `names` (parsed by `T::from_str`).
    fn named<T: FromStr<Err = String>>(&mut self, t: &Tbl, key: &str, names: &[&str]) -> Option<T> {
        let s = self.string(t, key)?;
        match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(msg) => {
                let hint = match nearest(&s, names) {
                    Some(n) => format!("{} (valid: {})", did_you_mean(n), names.join(", ")),
                    None => format!("valid: {}", names.join(", ")),
                };
                let span = self.value_span(t, key);
                self.error(span, format!("{msg} (`{key}` in {})", t.name), Some(hint));
                None
            }
        }
    }

    fn detector(
        &mut self,
        s: &str,
        span: Option<Range<usize>>,
        place: &str,
    ) -> Option<DetectorSpec> {
        match s.parse::<DetectorSpec>() {
            Ok(d) => Some(d),
            Err(msg) => {
                let forms = DETECTOR_FORMS.join(", ");
                let hint = match detector_suggestion(s) {
                    Some(d) if d != s => format!("{} (valid forms: {forms})", did_you_mean(&d)),
                    _ => format!("valid forms: {forms}"),
                };
                self.error(span, format!("{msg} ({place})"), Some(hint));
                None
            }
        }
    }

    fn sub_table<'d>(&mut self, parent: &Tbl<'d>, key: &str, name: &str) -> Option<Tbl<'d>> {
        let item = parent.t.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(Tbl {
                t,
                name: name.to_string(),
                span: item
                    .span()
                    .or_else(|| parent.t.key(key).and_then(|k| k.span())),
            }),
            None => {
                self.type_error(parent, key, "a table");
                None
            }
        }
    }

    /// `[[key]]` entries, or `key = [{…}, …]`.
    fn table_list<'d>(&mut self, parent: &Tbl<'d>, key: &str, name: &str) -> Vec<Tbl<'d>> {
        let Some(item) = parent.t.get(key) else {
            return Vec::new();
        };
        match item {
            Item::ArrayOfTables(aot) => aot
                .iter()
                .map(|t| Tbl {
                    t: t as &dyn TableLike,
                    name: name.to_string(),
                    span: t.span(),
                })
                .collect(),
            Item::Value(Value::Array(arr)) => {
                let mut out = Vec::new();
                for v in arr.iter() {
                    match v.as_inline_table() {
                        Some(t) => out.push(Tbl {
                            t: t as &dyn TableLike,
                            name: name.to_string(),
                            span: v.span(),
                        }),
                        None => self.error(
                            v.span(),
                            format!("each entry of `{key}` in {} must be a table", parent.name),
                            None,
                        ),
                    }
                }
                out
            }
            _ => {
                self.type_error(parent, key, &format!("an array of tables ([[{name}]])"));
                Vec::new()
            }
        }
    }

    fn json(&mut self, item: &Item, place: &str) -> Json {
        match item {
            Item::None => Json::Null,
            Item::Value(v) => self.json_value(v, place),
            Item::Table(t) => Json::Object(
                t.iter()
                    .map(|(k, v)| (k.to_string(), self.json(v, place)))
                    .collect(),
            ),
            Item::ArrayOfTables(a) => Json::Array(
                a.iter()
                    .map(|t| {
                        Json::Object(
                            t.iter()
                                .map(|(k, v)| (k.to_string(), self.json(v, place)))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn json_value(&mut self, v: &Value, place: &str) -> Json {
        match v {
            Value::String(s) => Json::String(s.value().clone()),
            Value::Integer(i) => Json::from(*i.value()),
            Value::Float(f) => match serde_json::Number::from_f64(*f.value()) {
                Some(n) => Json::Number(n),
                None => {
                    self.error(
                        v.span(),
                        format!("{place}: `{}` cannot be represented in JSON", f.value()),
                        None,
                    );
                    Json::Null
                }
            },
            Value::Boolean(b) => Json::Bool(*b.value()),
            Value::Datetime(d) => Json::String(d.value().to_string()),
            Value::Array(a) => Json::Array(a.iter().map(|v| self.json_value(v, place)).collect()),
            Value::InlineTable(t) => Json::Object(
                t.iter()
                    .map(|(k, v)| (k.to_string(), self.json_value(v, place)))
                    .collect(),
            ),
        }
    }

    fn scenario(&mut self, root: &Tbl, opts: &LoadOptions) -> Scenario {
        self.known_keys(root, ROOT_KEYS);
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match self.string(root, "name") {
            Some(n) if n.trim().is_empty() => {
                let span = self.value_span(root, "name");
                self.error(span, "`name` must not be empty".into(), None);
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
            let span = self.value_span(root, "cassettes");
            self.error(
                span,
                format!(
                    "`cassettes` must be an array of paths, found {}",
                    kind(item)
                ),
                hint,
            );
            return Vec::new();
        };
        if arr.is_empty() {
            let span = self.value_span(root, "cassettes");
            self.error(span, "`cassettes` lists no cassette to replay".into(), None);
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
                let span = self.value_span(&t, "soft_max_steps");
                self.error(
                    span,
                    format!("`soft_max_steps` ({soft}) is above `max_steps` ({hard}) in [limits]: it would never apply"),
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
                let span = self.value_span(r, "error");
                self.error(
                    span,
                    format!("`error` in [[tools.results]] of tool `{tool}` is the error text, not a flag"),
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

    /// A number or `{ min, max }`.
    fn bound(&mut self, t: &Tbl, key: &str) -> Option<Bound> {
        let item = t.t.get(key)?;
        if item.as_integer().is_some() {
            return self.uint(t, key, 0, i64::MAX as u64).map(Bound::exact);
        }
        let Some(sub) = self.sub_table_quiet(t, key) else {
            self.type_error(t, key, "a whole number or { min, max }");
            return None;
        };
        self.known_keys(&sub, BOUND_KEYS);
        let min = self.uint(&sub, "min", 0, i64::MAX as u64);
        let max = self.uint(&sub, "max", 0, i64::MAX as u64);
        self.check_range(t, key, &sub, min.map(|v| v as f64), max.map(|v| v as f64))?;
        Some(Bound { min, max })
    }

    fn float_bound(&mut self, t: &Tbl, key: &str) -> Option<FloatBound> {
        let item = t.t.get(key)?;
        let num = |item: &Item| {
            item.as_float()
                .or_else(|| item.as_integer().map(|i| i as f64))
        };
        if let Some(v) = num(item) {
            if v < 0.0 || !v.is_finite() {
                let span = self.value_span(t, key);
                self.error(
                    span,
                    format!("`{key}` in {} must be ≥ 0, found {v}", t.name),
                    None,
                );
                return None;
            }
            return Some(FloatBound {
                min: Some(v),
                max: Some(v),
            });
        }
        let Some(sub) = self.sub_table_quiet(t, key) else {
            self.type_error(t, key, "a number or { min, max }");
            return None;
        };
        self.known_keys(&sub, BOUND_KEYS);
        let get = |cx: &mut Self, k: &str| -> Option<f64> {
            let item = sub.t.get(k)?;
            match num(item) {
                Some(v) if v >= 0.0 && v.is_finite() => Some(v),
                _ => {
                    cx.type_error(&sub, k, "a number ≥ 0");
                    None
                }
            }
        };
        let min = get(self, "min");
        let max = get(self, "max");
        self.check_range(t, key, &sub, min, max)?;
        Some(FloatBound { min, max })
    }

    fn sub_table_quiet<'d>(&mut self, t: &Tbl<'d>, key: &str) -> Option<Tbl<'d>> {
        let item = t.t.get(key)?;
        let sub = item.as_table_like()?;
        Some(Tbl {
            t: sub,
            name: format!("`{key}` in {}", t.name),
            span: item.span(),
        })
    }

    fn check_range(
        &mut self,
        t: &Tbl,
        key: &str,
        sub: &Tbl,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Option<()> {
        let has = |k: &str| sub.t.get(k).is_some();
        if sub.t.iter().any(|(k, _)| !BOUND_KEYS.contains(&k)) {
            // Already reported as an unknown key; "needs min or max" would only repeat it.
            return None;
        }
        if !has("min") && !has("max") {
            let span = self.value_span(t, key);
            self.error(
                span,
                format!("`{key}` in {} needs `min`, `max` or both", t.name),
                None,
            );
            return None;
        }
        if let (Some(a), Some(b)) = (min, max) {
            if a > b {
                let span = self.value_span(t, key);
                self.error(
                    span,
                    format!("`{key}` in {}: min ({a}) is greater than max ({b})", t.name),
                    None,
                );
                return None;
            }
        }
        if (has("min") && min.is_none()) || (has("max") && max.is_none()) {
            return None;
        }
        Some(())
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
