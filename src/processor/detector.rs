//! Doom-loop detectors (FORMATS.md "Doom-loop detectors", reference §2).
//!
//! Several detectors run side by side over the same session. Each sees every tool call as it
//! arrives (`on_call`), every tool result (`on_result`, for `no-progress`) and every finished
//! step (`on_step_finish`, for `fanout` and `text-repeat`), and reports each detection; the
//! [`DetectorSet`] keeps every detector's first one.
//!
//! `opencode` is the only detector that looks at the current assistant message's parts rather
//! than the session's call history. It reproduces opencode's blind spots on purpose: it fires
//! only when one response holds three identical consecutive calls, misses repeats across
//! steps, is reset by any text/reasoning part in between, and compares `JSON.stringify` output
//! (key-order sensitive).

use serde_json::Value;

use super::config::DetectorSpec;
use super::json::{canonical, js_stringify};
use super::outcome::{Detection, DetectorReport};

/// opencode `DOOM_LOOP_THRESHOLD` (reference §2.1).
pub const DOOM_LOOP_THRESHOLD: usize = 3;

/// One persisted part of the current assistant message, as the opencode check sees it.
#[derive(Debug, Clone, Copy)]
pub enum PartView<'a> {
    /// step-start, text, reasoning, step-finish, ...
    Other,
    Tool {
        tool: &'a str,
        pending: bool,
        input: &'a Value,
    },
}

/// opencode's check (reference §2.1): `parts.slice(-3)` of the current message are exactly
/// three parts and every one is a tool part of `tool`, not pending, whose `JSON.stringify`d
/// input equals the current call's. `last` are the message's parts in id order, the current
/// (running) part included.
pub fn opencode_fires(parts: &[PartView<'_>], tool: &str, input: &Value) -> bool {
    if parts.len() < DOOM_LOOP_THRESHOLD {
        return false;
    }
    let want = js_stringify(input);
    parts[parts.len() - DOOM_LOOP_THRESHOLD..]
        .iter()
        .all(|p| match p {
            PartView::Tool {
                tool: t,
                pending,
                input,
            } => *t == tool && !*pending && js_stringify(input) == want,
            PartView::Other => false,
        })
}

/// A call as the session-wide detectors compare it: tool plus canonical arguments (a missing
/// or null input counts as `{}`, as the seed's `args or {}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallSig {
    pub tool: String,
    pub args: String,
}

impl CallSig {
    pub fn new(tool: &str, input: &Value) -> Self {
        let args = match input {
            Value::Null => "{}".to_string(),
            v => canonical(v),
        };
        CallSig {
            tool: tool.to_string(),
            args,
        }
    }
}

#[derive(Debug, Clone)]
struct CallEntry {
    step: u32,
    sig: CallSig,
    /// (is_error, output) once the result arrived.
    result: Option<(bool, String)>,
}

/// The configured detectors and the session history they share.
#[derive(Debug, Clone)]
pub struct DetectorSet {
    specs: Vec<DetectorSpec>,
    firsts: Vec<Option<Detection>>,
    calls: Vec<CallEntry>,
    step_sets: Vec<Vec<CallSig>>,
    step_texts: Vec<String>,
}

impl DetectorSet {
    pub fn new(specs: Vec<DetectorSpec>) -> Self {
        let firsts = vec![None; specs.len()];
        DetectorSet {
            specs,
            firsts,
            calls: Vec::new(),
            step_sets: Vec::new(),
            step_texts: Vec::new(),
        }
    }

    pub fn specs(&self) -> &[DetectorSpec] {
        &self.specs
    }

    /// Calls seen so far.
    pub fn call_count(&self) -> u64 {
        self.calls.len() as u64
    }

    /// Record a tool call and run the call-time detectors. `opencode` is the result of
    /// [`opencode_fires`] on the current message. Returns the call's 1-based index and the
    /// detections that fired on it, in listed order.
    pub fn on_call(
        &mut self,
        step: u32,
        tool: &str,
        input: &Value,
        opencode: bool,
    ) -> (u64, Vec<Detection>) {
        self.calls.push(CallEntry {
            step,
            sig: CallSig::new(tool, input),
            result: None,
        });
        let index = self.calls.len() as u64;
        let mut fired = Vec::new();
        for i in 0..self.specs.len() {
            let spec = self.specs[i];
            let rule = match spec {
                DetectorSpec::Opencode => opencode.then(|| {
                    format!(
                        "the last {DOOM_LOOP_THRESHOLD} parts of the response are `{tool}` calls with identical JSON.stringify input"
                    )
                }),
                DetectorSpec::Seed => self.last_identical(DOOM_LOOP_THRESHOLD).then(|| {
                    format!("the last {DOOM_LOOP_THRESHOLD} calls of the session are `{tool}` with the same sorted-key arguments")
                }),
                DetectorSpec::Consecutive(n) => self.last_identical(n as usize).then(|| {
                    format!("the last {n} calls of the session are identical `{tool}` calls")
                }),
                DetectorSpec::Cycle {
                    max_period,
                    repeats,
                } => self.cycle_period(max_period as usize, repeats as usize).map(|p| {
                    format!("the last {} calls repeat a block of {p} call(s) {repeats} times", p * repeats as usize)
                }),
                _ => None,
            };
            if let Some(rule) = rule {
                fired.push(self.record(i, step, tool.to_string(), index, rule));
            }
        }
        (index, fired)
    }

    /// Record the result of call `index` (1-based) and run `no-progress`.
    pub fn on_result(&mut self, index: u64, output: &str, is_error: bool) -> Vec<Detection> {
        let Some(pos) = (index as usize).checked_sub(1) else {
            return Vec::new();
        };
        let Some(entry) = self.calls.get_mut(pos) else {
            return Vec::new();
        };
        entry.result = Some((is_error, output.to_string()));
        let (step, tool) = (entry.step, entry.sig.tool.clone());
        let mut fired = Vec::new();
        for i in 0..self.specs.len() {
            if let DetectorSpec::NoProgress(n) = self.specs[i] {
                let n = n as usize;
                if pos + 1 >= n {
                    let window = &self.calls[pos + 1 - n..=pos];
                    let first = &window[0];
                    let same = first.result.is_some()
                        && window
                            .iter()
                            .all(|c| c.sig == first.sig && c.result == first.result);
                    if same {
                        let rule = format!(
                            "the last {n} `{tool}` calls had the same arguments and the same result"
                        );
                        fired.push(self.record(i, step, tool.clone(), index, rule));
                    }
                }
            }
        }
        fired
    }

    /// Record a finished step's calls (this attempt's, in any order) and its trimmed text, and
    /// run `fanout` and `text-repeat`.
    pub fn on_step_finish(&mut self, step: u32, calls: &[CallSig], text: &str) -> Vec<Detection> {
        let mut set = calls.to_vec();
        set.sort();
        self.step_sets.push(set);
        self.step_texts.push(text.trim().to_string());
        let index = self.calls.len() as u64;
        let mut fired = Vec::new();
        for i in 0..self.specs.len() {
            let hit = match self.specs[i] {
                DetectorSpec::Fanout(n) => {
                    let n = n as usize;
                    let last = self.step_sets.last().cloned().unwrap_or_default();
                    (last.len() >= 2
                        && self.step_sets.len() >= n
                        && self.step_sets[self.step_sets.len() - n..]
                            .iter()
                            .all(|s| *s == last))
                    .then(|| {
                        let mut tools: Vec<&str> = last.iter().map(|c| c.tool.as_str()).collect();
                        tools.dedup();
                        (
                            tools.join(","),
                            format!(
                                "the last {n} steps each made the same set of {} calls",
                                last.len()
                            ),
                        )
                    })
                }
                DetectorSpec::TextRepeat(n) => {
                    let n = n as usize;
                    let last = self.step_texts.last().cloned().unwrap_or_default();
                    (!last.is_empty()
                        && self.step_texts.len() >= n
                        && self.step_texts[self.step_texts.len() - n..]
                            .iter()
                            .all(|t| *t == last))
                    .then(|| {
                        (
                            String::new(),
                            format!("the last {n} steps produced the same text"),
                        )
                    })
                }
                _ => None,
            };
            if let Some((tool, rule)) = hit {
                fired.push(self.record(i, step, tool, index, rule));
            }
        }
        fired
    }

    fn record(
        &mut self,
        i: usize,
        step: u32,
        tool: String,
        call_index: u64,
        rule: String,
    ) -> Detection {
        let d = Detection {
            detector: self.specs[i],
            step,
            tool,
            call_index,
            rule,
        };
        if self.firsts[i].is_none() {
            self.firsts[i] = Some(d.clone());
        }
        d
    }

    fn last_identical(&self, n: usize) -> bool {
        n > 0
            && self.calls.len() >= n
            && self.calls[self.calls.len() - n..]
                .windows(2)
                .all(|w| w[0].sig == w[1].sig)
    }

    /// The smallest period p ≤ `max_period` for which the last p·`repeats` calls are
    /// `repeats` copies of one block.
    fn cycle_period(&self, max_period: usize, repeats: usize) -> Option<usize> {
        let n = self.calls.len();
        (1..=max_period).find(|&p| {
            let span = p * repeats;
            span > 0
                && n >= span
                && (0..p * (repeats - 1))
                    .all(|i| self.calls[n - 1 - i].sig == self.calls[n - 1 - i - p].sig)
        })
    }

    /// Every detector's first detection, in configured order.
    pub fn reports(&self) -> Vec<DetectorReport> {
        self.specs
            .iter()
            .zip(&self.firsts)
            .map(|(spec, first)| DetectorReport {
                detector: *spec,
                first: first.clone(),
            })
            .collect()
    }

    /// The run's detection: earliest call index, ties to the detector listed first.
    pub fn first(&self) -> Option<Detection> {
        self.firsts
            .iter()
            .flatten()
            .min_by_key(|d| d.call_index)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn opencode_needs_three_non_pending_identical_tool_parts() {
        let a = json!({"path": "a"});
        let b = json!({"path": "b"});
        let t = |input: &'static Value, pending| PartView::Tool {
            tool: "read",
            pending,
            input,
        };
        let a: &'static Value = Box::leak(Box::new(a));
        let b: &'static Value = Box::leak(Box::new(b));
        assert!(opencode_fires(
            &[PartView::Other, t(a, false), t(a, false), t(a, false)],
            "read",
            a
        ));
        assert!(!opencode_fires(&[t(a, false), t(a, false)], "read", a));
        assert!(!opencode_fires(
            &[t(a, false), t(a, true), t(a, false)],
            "read",
            a
        ));
        assert!(!opencode_fires(
            &[t(a, false), PartView::Other, t(a, false)],
            "read",
            a
        ));
        assert!(!opencode_fires(
            &[t(a, false), t(b, false), t(a, false)],
            "read",
            a
        ));
        assert!(!opencode_fires(
            &[t(a, false), t(a, false), t(a, false)],
            "grep",
            a
        ));
    }

    #[test]
    fn first_detection_prefers_earliest_call_then_listed_order() {
        let mut set = DetectorSet::new(vec![DetectorSpec::Consecutive(3), DetectorSpec::Seed]);
        let input = json!({});
        for step in 1..=3 {
            set.on_call(step, "read", &input, false);
        }
        let first = set.first().unwrap();
        assert_eq!(first.detector, DetectorSpec::Consecutive(3));
        assert_eq!(first.call_index, 3);
        let reports = set.reports();
        assert_eq!(
            reports[1].first.as_ref().unwrap().detector,
            DetectorSpec::Seed
        );
    }
}
