//! `[expect]`: what a run must look like, and the check that turns a run record into
//! `expected X, got Y` failure lines.
//!
//! | key | value | checks |
//! |---|---|---|
//! | `finish` | a termination reason | `finish` |
//! | `doom_loop` | `false`, `true`, or `{ step, tool, detector? }` | the run's `doom_loop` |
//! | `retries` | number or `{ min, max }` | number of retried failures |
//! | `steps`, `tool_calls` | number or `{ min, max }` | |
//! | `cost_usd` | number or `{ min, max }` | |
//! | `tokens` | `{ input, output, reasoning, cache_read, cache_write, total }`, each a number or `{ min, max }` | |
//! | `sim_ms` | number or `{ min, max }` | simulated time, retry waits included |
//! | `detectors` | `{ "<detector>" = step | true | false }` | each detector's own first detection |
//! | `retry_after` | `"honoured"` | every retry waited at least the `retry-after` served (`exec`, 1 ms tolerance) |
//!
//! A key the run cannot show (`sim_ms` for an agent under test, `retry_after` for the built-in
//! processor, which has no real waits) is *not observable*: [`Expectations::check_observable`]
//! skips it and names it, so it is neither a pass nor a failure.

use indexmap::IndexMap;

use crate::processor::config::DetectorSpec;
use crate::report::{Finish, RunRecord};

/// An integer bound: exact when `min == max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl Bound {
    pub fn exact(n: u64) -> Bound {
        Bound {
            min: Some(n),
            max: Some(n),
        }
    }

    pub fn contains(&self, v: u64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }

    /// `3`, `at least 3`, `at most 5`, `between 2 and 5`.
    pub fn describe(&self) -> String {
        describe_range(self.min, self.max)
    }
}

/// A float bound (cost): exact when `min == max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatBound {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl FloatBound {
    /// Bounds compare with a relative tolerance of 1e-9, so a cost written from a report
    /// (decimal) still matches the float it came from.
    pub fn contains(&self, v: f64) -> bool {
        let tol = |x: f64| 1e-9 * x.abs().max(1e-12);
        self.min.is_none_or(|m| v >= m - tol(m)) && self.max.is_none_or(|m| v <= m + tol(m))
    }

    /// As [`Bound::describe`].
    pub fn describe(&self) -> String {
        describe_range(self.min, self.max)
    }
}

/// `3`, `at least 3`, `at most 5`, `between 2 and 5`, `anything`: a bound in words.
fn describe_range<T: PartialEq + std::fmt::Display>(min: Option<T>, max: Option<T>) -> String {
    match (min, max) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "anything".to_string(),
    }
}

/// Token bounds per class, plus the total of all five.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBounds {
    pub input: Option<Bound>,
    pub output: Option<Bound>,
    pub reasoning: Option<Bound>,
    pub cache_read: Option<Bound>,
    pub cache_write: Option<Bound>,
    pub total: Option<Bound>,
}

/// `[expect] doom_loop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoomExpect {
    /// `false`: no doom loop.
    None,
    /// `true`: a doom loop at any step.
    Any,
    /// `{ step, tool?, detector? }` (no tool for a text-repeat loop).
    At {
        step: u32,
        tool: Option<String>,
        detector: Option<DetectorSpec>,
    },
}

/// `[expect] detectors` value for one detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorExpect {
    /// `false`: never fires.
    Never,
    /// `true`: fires at some step.
    Fires,
    /// A number: first fires at this step.
    At(u32),
}

/// All expectations of a scenario; `None` = not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations {
    pub finish: Option<Finish>,
    pub doom_loop: Option<DoomExpect>,
    /// Number of retried failures (`retries` entries in the report).
    pub retries: Option<Bound>,
    pub steps: Option<Bound>,
    pub tool_calls: Option<Bound>,
    pub cost_usd: Option<FloatBound>,
    pub tokens: TokenBounds,
    pub sim_ms: Option<Bound>,
    /// Per detector, in file order.
    pub detectors: IndexMap<DetectorSpec, DetectorExpect>,
    pub retry_after: Option<RetryAfterExpect>,
}

crate::string_enum! {
    /// `[expect] retry_after`: how an agent must treat a server-requested wait.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RetryAfterExpect: "retry_after expectation" {
        /// Every retry waited at least what `retry-after` asked (1 ms tolerance).
        Honoured = "honoured",
    }
}

fn describe_hit(step: u32, tool: Option<&str>, detector: Option<&str>) -> String {
    match (tool.filter(|t| !t.is_empty()), detector) {
        (Some(t), Some(d)) => format!("step {step} ({t}, {d})"),
        (Some(t), None) => format!("step {step} ({t})"),
        (None, Some(d)) => format!("step {step} ({d})"),
        (None, None) => format!("step {step}"),
    }
}

fn check_bound(out: &mut Vec<String>, what: &str, bound: Option<Bound>, got: u64) {
    if let Some(b) = bound {
        if !b.contains(got) {
            out.push(format!("{what}: expected {}, got {got}", b.describe()));
        }
    }
}

impl Expectations {
    /// Whether nothing is expected.
    pub fn is_empty(&self) -> bool {
        *self == Expectations::default()
    }

    /// One line per failed expectation, `<what>: expected X, got Y`, in the table order above.
    pub fn check(&self, run: &RunRecord) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = self.finish {
            if f != run.finish {
                out.push(format!("finish: expected {f}, got {}", run.finish));
            }
        }
        if let Some(d) = &self.doom_loop {
            let got = match &run.doom_loop {
                Some(h) => describe_hit(h.step, Some(&h.tool), Some(&h.detector)),
                None => "none".to_string(),
            };
            let failed = match (d, &run.doom_loop) {
                (DoomExpect::None, hit) => hit.is_some(),
                (DoomExpect::Any, hit) => hit.is_none(),
                (DoomExpect::At { .. }, None) => true,
                (
                    DoomExpect::At {
                        step,
                        tool,
                        detector,
                    },
                    Some(h),
                ) => {
                    *step != h.step
                        || tool.as_ref().is_some_and(|t| *t != h.tool)
                        || detector.is_some_and(|d| d.to_string() != h.detector)
                }
            };
            if failed {
                let expected = match d {
                    DoomExpect::None => "none".to_string(),
                    DoomExpect::Any => "a doom loop".to_string(),
                    DoomExpect::At {
                        step,
                        tool,
                        detector,
                    } => format!(
                        "at {}",
                        describe_hit(
                            *step,
                            tool.as_deref(),
                            detector.map(|d| d.to_string()).as_deref()
                        )
                    ),
                };
                out.push(format!("doom_loop: expected {expected}, got {got}"));
            }
        }
        check_bound(&mut out, "retries", self.retries, run.retries.len() as u64);
        check_bound(&mut out, "steps", self.steps, u64::from(run.steps));
        check_bound(
            &mut out,
            "tool_calls",
            self.tool_calls,
            u64::from(run.tool_calls),
        );
        if let Some(c) = self.cost_usd {
            if !c.contains(run.cost_usd) {
                out.push(format!(
                    "cost_usd: expected {}, got {}",
                    c.describe(),
                    run.cost_usd
                ));
            }
        }
        let (t, u) = (&self.tokens, &run.tokens);
        check_bound(&mut out, "tokens.input", t.input, u.input);
        check_bound(&mut out, "tokens.output", t.output, u.output);
        check_bound(&mut out, "tokens.reasoning", t.reasoning, u.reasoning);
        check_bound(&mut out, "tokens.cache_read", t.cache_read, u.cache_read);
        check_bound(&mut out, "tokens.cache_write", t.cache_write, u.cache_write);
        check_bound(&mut out, "tokens.total", t.total, u.total());
        check_bound(&mut out, "sim_ms", self.sim_ms, run.sim_ms);
        for (spec, want) in &self.detectors {
            let name = spec.to_string();
            let got = run.detectors.iter().find(|d| d.detector == name);
            let got_step = got.and_then(|d| d.step);
            let ok = match want {
                DetectorExpect::Never => got.is_some() && got_step.is_none(),
                DetectorExpect::Fires => got_step.is_some(),
                DetectorExpect::At(s) => got_step == Some(*s),
            };
            if !ok {
                let expected = match want {
                    DetectorExpect::Never => "never fires".to_string(),
                    DetectorExpect::Fires => "fires".to_string(),
                    DetectorExpect::At(s) => format!("at step {s}"),
                };
                let got = match got {
                    None => "not run".to_string(),
                    Some(d) => match (d.step, &d.tool) {
                        (Some(s), Some(t)) => format!("step {s} ({t})"),
                        (Some(s), None) => format!("step {s}"),
                        (None, _) => "none".to_string(),
                    },
                };
                out.push(format!("detectors.{name}: expected {expected}, got {got}"));
            }
        }
        if self.retry_after == Some(RetryAfterExpect::Honoured) {
            for r in &run.retries {
                if let (Some(served), Some(waited)) = (r.served_ms, r.waited_ms) {
                    if waited + 1 < served {
                        out.push(format!(
                            "retry_after: expected honoured, got step {} attempt {} retried after {waited} ms of the {served} ms served",
                            r.step, r.attempt
                        ));
                    }
                }
            }
        }
        out
    }

    /// The keys this scenario expects (in the table order above), as they start a failure line.
    pub fn keys(&self) -> Vec<&'static str> {
        let t = &self.tokens;
        [
            ("finish", self.finish.is_some()),
            ("doom_loop", self.doom_loop.is_some()),
            ("retries", self.retries.is_some()),
            ("steps", self.steps.is_some()),
            ("tool_calls", self.tool_calls.is_some()),
            ("cost_usd", self.cost_usd.is_some()),
            ("tokens", *t != TokenBounds::default()),
            ("sim_ms", self.sim_ms.is_some()),
            ("detectors", !self.detectors.is_empty()),
            ("retry_after", self.retry_after.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }

    /// Score `run`: its failures, and the expected keys in `unobservable` named in
    /// `not_observable` and in a warning saying why (`context`: "for an agent under test").
    pub fn score(&self, run: &mut RunRecord, unobservable: &[&str], context: &str) {
        let (failures, not_observable) = self.check_observable(run, unobservable);
        for key in &not_observable {
            run.warnings.push(format!(
                "expectation `{key}` is not observable {context} (neither passed nor failed)"
            ));
        }
        run.not_observable = not_observable;
        run.set_failures(failures);
    }

    /// [`check`](Self::check) without the keys in `unobservable`; also returns which of those
    /// keys this scenario expects (reported as not observable, neither pass nor fail).
    pub fn check_observable(
        &self,
        run: &RunRecord,
        unobservable: &[&str],
    ) -> (Vec<String>, Vec<String>) {
        let skipped: Vec<String> = self
            .keys()
            .into_iter()
            .filter(|k| unobservable.contains(k))
            .map(str::to_string)
            .collect();
        let failures = self
            .check(run)
            .into_iter()
            .filter(|line| {
                let key = line.split([':', '.']).next().unwrap_or_default();
                !skipped.iter().any(|s| s == key)
            })
            .collect();
        (failures, skipped)
    }
}
