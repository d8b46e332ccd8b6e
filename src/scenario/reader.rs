//! The TOML walker behind the loader: [`Ctx`] collects every problem with its file, line and
//! column, and reads typed values (strings, counts, names, tables, JSON, bounds) from a
//! [`Tbl`], reporting a wrong type or an unknown key with the nearest valid spelling.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use serde_json::Value as Json;
use toml_edit::{Item, TableLike, Value};

use crate::processor::config::{DetectorSpec, DETECTOR_FORMS};

use super::error::ScenarioError;
use super::expect::{Bound, FloatBound};
use super::suggest::nearest;

const BOUND_KEYS: &[&str] = &["min", "max"];

/// A table (standard or inline) with its name for messages and its span.
pub(super) struct Tbl<'a> {
    pub(super) t: &'a dyn TableLike,
    pub(super) name: String,
    pub(super) span: Option<Range<usize>>,
}

pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    pub(super) src: &'a str,
    pub(super) errors: Vec<ScenarioError>,
}

pub(super) fn kind(item: &Item) -> &'static str {
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

pub(super) fn did_you_mean(s: &str) -> String {
    format!("did you mean `{s}`?")
}

/// The detector name a typo most likely meant, keeping its parameters (`consecutiv:3` →
/// `consecutive:3`).
pub(super) fn detector_suggestion(s: &str) -> Option<String> {
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
    pub(super) fn new(path: &'a Path, src: &'a str) -> Self {
        Ctx {
            path,
            src,
            errors: Vec::new(),
        }
    }

    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = self.src.get(..offset).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub(super) fn line_of(&self, span: &Option<Range<usize>>) -> usize {
        span.as_ref().map(|s| self.position(s.start).0).unwrap_or(1)
    }

    pub(super) fn error(
        &mut self,
        span: Option<Range<usize>>,
        message: String,
        suggestion: Option<String>,
    ) {
        let (line, column) = span.map(|s| self.position(s.start)).unwrap_or((1, 1));
        self.errors.push(ScenarioError {
            path: self.path.to_path_buf(),
            line,
            column,
            message,
            suggestion,
        });
    }

    /// Report a problem with a key's value, at the value.
    pub(super) fn value_error(
        &mut self,
        t: &Tbl,
        key: &str,
        message: String,
        suggestion: Option<String>,
    ) {
        let span = self.value_span(t, key);
        self.error(span, message, suggestion);
    }

    /// The span of a key's value (falling back to the key, then the table).
    pub(super) fn value_span(&self, t: &Tbl, key: &str) -> Option<Range<usize>> {
        t.t.get_key_value(key)
            .and_then(|(k, item)| item.span().or_else(|| k.span()))
            .or_else(|| t.span.clone())
    }

    pub(super) fn key_span(&self, t: &Tbl, key: &str) -> Option<Range<usize>> {
        t.t.get_key_value(key)
            .and_then(|(k, _)| k.span())
            .or_else(|| t.span.clone())
    }

    /// Report every key of `t` that is not in `valid`, with the nearest valid key.
    pub(super) fn known_keys(&mut self, t: &Tbl, valid: &[&str]) {
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

    pub(super) fn type_error(&mut self, t: &Tbl, key: &str, expected: &str) {
        let Some(item) = t.t.get(key) else { return };
        let found = kind(item);
        let hint = match item.as_str() {
            Some(s) if s.trim().parse::<f64>().is_ok() && !expected.contains("string") => Some(
                format!("write the number without quotes: {key} = {}", s.trim()),
            ),
            _ => None,
        };
        self.value_error(
            t,
            key,
            format!("`{key}` in {} must be {expected}, found {found}", t.name),
            hint,
        );
    }

    pub(super) fn missing(&mut self, t: &Tbl, key: &str) {
        let span = t.span.clone();
        self.error(
            span,
            format!("missing required key `{key}` in {}", t.name),
            None,
        );
    }

    pub(super) fn string(&mut self, t: &Tbl, key: &str) -> Option<String> {
        let item = t.t.get(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.type_error(t, key, "a string");
                None
            }
        }
    }

    pub(super) fn uint(&mut self, t: &Tbl, key: &str, min: u64, max: u64) -> Option<u64> {
        let item = t.t.get(key)?;
        let what = if min == 0 {
            "a whole number ≥ 0".to_string()
        } else {
            format!("a whole number ≥ {min}")
        };
        match item.as_integer() {
            Some(n) if n >= 0 && (n as u64) >= min && (n as u64) <= max => Some(n as u64),
            Some(n) => {
                self.value_error(
                    t,
                    key,
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
    pub(super) fn named<T: FromStr<Err = String>>(
        &mut self,
        t: &Tbl,
        key: &str,
        names: &[&str],
    ) -> Option<T> {
        let s = self.string(t, key)?;
        match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(msg) => {
                let hint = match nearest(&s, names) {
                    Some(n) => format!("{} (valid: {})", did_you_mean(n), names.join(", ")),
                    None => format!("valid: {}", names.join(", ")),
                };
                self.value_error(t, key, format!("{msg} (`{key}` in {})", t.name), Some(hint));
                None
            }
        }
    }

    pub(super) fn detector(
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

    pub(super) fn sub_table<'d>(
        &mut self,
        parent: &Tbl<'d>,
        key: &str,
        name: &str,
    ) -> Option<Tbl<'d>> {
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
    pub(super) fn table_list<'d>(
        &mut self,
        parent: &Tbl<'d>,
        key: &str,
        name: &str,
    ) -> Vec<Tbl<'d>> {
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

    pub(super) fn json(&mut self, item: &Item, place: &str) -> Json {
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

    pub(super) fn json_value(&mut self, v: &Value, place: &str) -> Json {
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

    /// A number or `{ min, max }`.
    pub(super) fn bound(&mut self, t: &Tbl, key: &str) -> Option<Bound> {
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

    pub(super) fn float_bound(&mut self, t: &Tbl, key: &str) -> Option<FloatBound> {
        let item = t.t.get(key)?;
        let num = |item: &Item| {
            item.as_float()
                .or_else(|| item.as_integer().map(|i| i as f64))
        };
        if let Some(v) = num(item) {
            if v < 0.0 || !v.is_finite() {
                self.value_error(
                    t,
                    key,
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

    pub(super) fn sub_table_quiet<'d>(&mut self, t: &Tbl<'d>, key: &str) -> Option<Tbl<'d>> {
        let item = t.t.get(key)?;
        let sub = item.as_table_like()?;
        Some(Tbl {
            t: sub,
            name: format!("`{key}` in {}", t.name),
            span: item.span(),
        })
    }

    pub(super) fn check_range(
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
            self.value_error(
                t,
                key,
                format!("`{key}` in {} needs `min`, `max` or both", t.name),
                None,
            );
            return None;
        }
        if let (Some(a), Some(b)) = (min, max) {
            if a > b {
                self.value_error(
                    t,
                    key,
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
}
