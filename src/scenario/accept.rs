//! Accepting an observed run as a scenario's expectations (insta-style "bless").
//!
//! [`plan`] rewrites the scenario's `[expect]` table from the observed run(s) with `toml_edit`,
//! so comments, key order and formatting elsewhere in the file are untouched (a replaced value
//! keeps its trailing comment); `[expect]` is created at the end of the file when missing. The
//! plan carries a unified diff; nothing is written until [`AcceptPlan::apply`].
//!
//! What is written:
//!
//! - `finish`, `steps`, `tool_calls`, `retries` (count) and `doom_loop` (`false` or
//!   `{ step, tool }`, plus `detector` when `[policy] doom_loop` lists several detectors): the
//!   exact observed values. Replaying is deterministic, so any change is worth a look.
//! - `cost_usd = { max = … }`: the observed cost × 1.10, rounded up to two significant digits;
//!   `tokens = { <class> = { max = … } }`: for each token class that is not zero, observed ×
//!   1.10 rounded up. The headroom absorbs price-table and tokenizer updates without hiding
//!   real growth.
//! - `sim_ms` and `detectors` only when already present: `sim_ms = { max = ⌈observed × 1.10⌉ }`,
//!   each listed detector's observed first step (or `false`).
//!
//! With several runs (one per cassette) exact values that differ become `{ min, max }` over
//! the runs; a `finish` or `doom_loop` that differs between runs is removed, since one value
//! cannot describe them; bounds take the largest observation.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::processor::config::DetectorSpec;
use crate::report::RunRecord;

use super::error::ScenarioError;

/// A pending rewrite of one scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptPlan {
    pub path: PathBuf,
    pub old_text: String,
    pub new_text: String,
    /// Unified diff from old to new (empty when nothing changes).
    pub diff: String,
}

impl AcceptPlan {
    /// Whether applying would change the file.
    pub fn changes(&self) -> bool {
        self.old_text != self.new_text
    }

    /// Write the new text. Refuses when the file changed since the plan was made; writes a
    /// temporary file next to it and renames it into place.
    pub fn apply(&self) -> Result<(), ScenarioError> {
        let io = |e: std::io::Error| {
            ScenarioError::whole_file(&self.path, format!("cannot write scenario: {e}"))
        };
        let current = std::fs::read_to_string(&self.path).map_err(io)?;
        if current != self.old_text {
            return Err(ScenarioError::whole_file(
                &self.path,
                "the scenario changed since the accept plan was made; run accept again",
            ));
        }
        if !self.changes() {
            return Ok(());
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario.toml".into());
        let tmp = self.path.with_file_name(format!(".{name}.accept.tmp"));
        std::fs::write(&tmp, &self.new_text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// Plan writing one observed run into the scenario at `path`.
pub fn plan(path: &Path, observed: &RunRecord) -> Result<AcceptPlan, ScenarioError> {
    plan_runs(path, std::slice::from_ref(observed))
}

/// Plan writing several runs of one scenario (one per cassette) into its `[expect]`.
pub fn plan_runs(path: &Path, observed: &[RunRecord]) -> Result<AcceptPlan, ScenarioError> {
    let old_text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::whole_file(path, format!("cannot read scenario: {e}")))?;
    plan_text(path, &old_text, observed)
}

/// [`plan_runs`] on text already read (`path` names it in errors and the diff).
pub fn plan_text(
    path: &Path,
    text: &str,
    observed: &[RunRecord],
) -> Result<AcceptPlan, ScenarioError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let line = e
            .span()
            .map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1)
            .unwrap_or(0);
        ScenarioError {
            path: path.to_path_buf(),
            line,
            column: 0,
            message: format!("TOML syntax error: {}", e.message().trim()),
            suggestion: None,
        }
    })?;
    if observed.is_empty() {
        return Err(ScenarioError::whole_file(path, "no observed run to accept"));
    }
    let several_detectors = doc
        .get("policy")
        .and_then(|p| p.get("doom_loop"))
        .and_then(|d| d.as_array())
        .is_some_and(|a| a.len() > 1);
    if doc.get("expect").is_none() {
        doc.insert("expect", Item::Table(Table::new()));
    }
    let expect = doc
        .get_mut("expect")
        .and_then(|e| e.as_table_like_mut())
        .ok_or_else(|| {
            ScenarioError::whole_file(path, "`expect` is not a table; fix it before accepting")
        })?;
    write_expect(expect, observed, several_detectors);
    let new_text = doc.to_string();
    let name = path.display().to_string();
    let diff = if new_text == text {
        String::new()
    } else {
        similar::TextDiff::from_lines(text, &new_text)
            .unified_diff()
            .context_radius(3)
            .header(&name, &name)
            .to_string()
    };
    Ok(AcceptPlan {
        path: path.to_path_buf(),
        old_text: text.to_string(),
        new_text,
        diff,
    })
}

/// Set `key`, keeping the old value's comments and spacing when it is replaced.
/// Replaces the item in place (`insert` would reset the key's decor, dropping the comment
/// lines above it).
fn set(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

fn range_value(min: u64, max: u64) -> Value {
    if min == max {
        Value::from(min as i64)
    } else {
        let mut t = InlineTable::new();
        t.insert("min", Value::from(min as i64));
        t.insert("max", Value::from(max as i64));
        Value::InlineTable(t)
    }
}

fn max_value(max: Value) -> Value {
    let mut t = InlineTable::new();
    t.insert("max", max);
    Value::InlineTable(t)
}

/// ⌈v × 1.10⌉.
fn headroom(v: u64) -> u64 {
    v.saturating_add(v.div_ceil(10))
}

/// v × 1.10 rounded up to two significant digits (0 stays 0).
fn cost_headroom(v: f64) -> f64 {
    let x = v * 1.1;
    if !x.is_finite() || x <= 0.0 {
        return 0.0;
    }
    let exp = x.log10().floor() as i32;
    // The epsilon keeps float noise (0.05 × 1.1 = 0.05500000000000001) from adding a digit.
    let mantissa = (x / 10f64.powi(exp - 1) - 1e-9).ceil() as u64;
    format!("{mantissa}e{}", exp - 1).parse().unwrap_or(x)
}

/// Reads one token class of a run.
type TokenField = fn(&RunRecord) -> u64;

fn write_expect(expect: &mut dyn TableLike, runs: &[RunRecord], several_detectors: bool) {
    let first = &runs[0];
    if runs.iter().all(|r| r.finish == first.finish) {
        set(expect, "finish", Value::from(first.finish.as_str()));
    } else {
        expect.remove("finish");
    }
    if runs.iter().all(|r| r.doom_loop == first.doom_loop) {
        let v = match &first.doom_loop {
            None => Value::from(false),
            Some(hit) => {
                let mut t = InlineTable::new();
                t.insert("step", Value::from(i64::from(hit.step)));
                t.insert("tool", Value::from(hit.tool.as_str()));
                if several_detectors {
                    t.insert("detector", Value::from(hit.detector.as_str()));
                }
                Value::InlineTable(t)
            }
        };
        set(expect, "doom_loop", v);
    } else {
        expect.remove("doom_loop");
    }
    let span = |f: &dyn Fn(&RunRecord) -> u64| {
        let vals: Vec<u64> = runs.iter().map(f).collect();
        let min = vals.iter().copied().min().unwrap_or(0);
        let max = vals.iter().copied().max().unwrap_or(0);
        range_value(min, max)
    };
    set(expect, "retries", span(&|r| r.retries.len() as u64));
    set(expect, "steps", span(&|r| u64::from(r.steps)));
    set(expect, "tool_calls", span(&|r| u64::from(r.tool_calls)));
    let cost = runs.iter().map(|r| r.cost_usd).fold(0.0, f64::max);
    set(
        expect,
        "cost_usd",
        max_value(Value::from(cost_headroom(cost))),
    );
    let mut tokens = InlineTable::new();
    let classes: [(&str, TokenField); 5] = [
        ("input", |r| r.tokens.input),
        ("output", |r| r.tokens.output),
        ("reasoning", |r| r.tokens.reasoning),
        ("cache_read", |r| r.tokens.cache_read),
        ("cache_write", |r| r.tokens.cache_write),
    ];
    for (name, get) in classes {
        let max = runs.iter().map(get).max().unwrap_or(0);
        if max > 0 {
            tokens.insert(name, max_value(Value::from(headroom(max) as i64)));
        }
    }
    if tokens.is_empty() {
        expect.remove("tokens");
    } else {
        set(expect, "tokens", Value::InlineTable(tokens));
    }
    if expect.contains_key("sim_ms") {
        let max = runs.iter().map(|r| r.sim_ms).max().unwrap_or(0);
        set(
            expect,
            "sim_ms",
            max_value(Value::from(headroom(max) as i64)),
        );
    }
    if let Some(det) = expect
        .get_mut("detectors")
        .and_then(|d| d.as_table_like_mut())
    {
        let keys: Vec<String> = det.iter().map(|(k, _)| k.to_string()).collect();
        for key in keys {
            let name = key
                .parse::<DetectorSpec>()
                .map(|d| d.to_string())
                .unwrap_or(key.clone());
            let steps: Vec<Option<u32>> = runs
                .iter()
                .map(|r| {
                    r.detectors
                        .iter()
                        .find(|d| d.detector == name)
                        .and_then(|d| d.step)
                })
                .collect();
            if steps.iter().all(|s| *s == steps[0]) {
                let v = match steps[0] {
                    Some(s) => Value::from(i64::from(s)),
                    None => Value::from(false),
                };
                set(det, &key, v);
            } else if steps.iter().all(|s| s.is_some()) {
                set(det, &key, Value::from(true));
            } else {
                det.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_rules() {
        assert_eq!(headroom(0), 0);
        assert_eq!(headroom(90), 99);
        assert_eq!(headroom(91), 101);
        assert_eq!(cost_headroom(0.00024), 0.00027);
        assert_eq!(cost_headroom(0.0), 0.0);
        assert_eq!(cost_headroom(1.0), 1.1);
        assert_eq!(cost_headroom(0.05), 0.055);
    }
}
