//! One run's drill-down in the HTML report: the facts, the notes (retries with their reason
//! and whether the server's `retry-after` was honoured, the doom-loop detection with detector
//! and action, why the run stopped), and the step timeline on the virtual time axis.
//!
//! Each step is a lane (`data-step="N"`): its request attempts drawn to scale (the lighter
//! part is the wait for the first token), the retry waits hatched (`data-retry-wait-ms`), the
//! doom-loop mark (`data-doom-step`) and the stop mark, the tool calls with their results, and
//! per-step tokens and cost as small bars scaled to the run's largest step. Detail the JSON
//! report lacks comes from [`RunTrace`](super::RunTrace); without it (a report read back from
//! JSON) the lanes are drawn from `step_details` and `retries` alone.

use super::model::{RunRecord, StepDetail};
use super::text::{format_ms, format_usd, html_escape, NONE};

/// A position on the run's time axis, as a CSS percentage.
struct Axis {
    span: u64,
}

impl Axis {
    fn pct(&self, ms: u64) -> String {
        format!(
            "{:.3}%",
            ms.min(self.span) as f64 * 100.0 / self.span as f64
        )
    }

    /// `left:..;width:..` for `[from, from + len)`.
    fn place(&self, from: u64, len: u64) -> String {
        let end = from.saturating_add(len).min(self.span);
        format!(
            "left:{};width:{}",
            self.pct(from),
            self.pct(end.saturating_sub(from))
        )
    }
}

/// The per-step bars: label, value of one step, and how it prints.
type Metric = (&'static str, fn(&StepDetail) -> f64, fn(f64) -> String);

const METRICS: [Metric; 6] = [
    ("in", |s| s.tokens.input as f64, count),
    ("out", |s| s.tokens.output as f64, count),
    ("reas", |s| s.tokens.reasoning as f64, count),
    ("c.read", |s| s.tokens.cache_read as f64, count),
    ("c.write", |s| s.tokens.cache_write as f64, count),
    ("cost", |s| s.cost_usd, format_usd),
];

fn count(v: f64) -> String {
    format!("{v}")
}

pub(crate) fn drill_down(r: &RunRecord) -> String {
    let mut out = facts(r);
    out.push_str(&notes(r));
    out.push_str(&timeline(r));
    out
}

fn facts(r: &RunRecord) -> String {
    let t = &r.tokens;
    let mut facts = vec![
        ("model", r.model.clone()),
        ("api", r.api.as_str().to_string()),
        ("cassette", r.cassette.clone()),
        ("finish", r.finish.to_string()),
        ("simulated", format_ms(r.sim_ms)),
        (
            "ttft",
            r.ttft_ms.map(format_ms).unwrap_or_else(|| NONE.into()),
        ),
        (
            "tokens",
            format!(
                "{} in · {} out · {} reasoning · {} cache read · {} cache write",
                t.input, t.output, t.reasoning, t.cache_read, t.cache_write
            ),
        ),
        ("cost", format_usd(r.cost_usd)),
    ];
    if !r.detectors.is_empty() {
        let d: Vec<String> = r
            .detectors
            .iter()
            .map(|d| match d.step {
                Some(s) => format!("{} @ step {s}", d.detector),
                None => format!("{} —", d.detector),
            })
            .collect();
        facts.push(("detectors", d.join(", ")));
    }
    let cells: Vec<String> = facts
        .into_iter()
        .map(|(k, v)| format!("<span>{k} <b>{}</b></span>", html_escape(&v)))
        .collect();
    format!("<div class=\"facts\">{}</div>\n", cells.join(""))
}

/// Retries, the doom-loop detection and the stop, in words.
fn notes(r: &RunRecord) -> String {
    let mut items = Vec::new();
    for (i, x) in r.retries.iter().enumerate() {
        let status = x
            .status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| "stream/network error".into());
        let asked = match r.trace.retry_after_ms.get(i).copied().flatten() {
            Some(ms) if x.delay_ms >= ms => {
                format!("server asked {}: honoured", format_ms(ms))
            }
            Some(ms) => format!("server asked {}: not honoured", format_ms(ms)),
            None if r.trace.retry_after_ms.is_empty() => "retry-after unknown".into(),
            None => "no retry-after".into(),
        };
        items.push(format!(
            "<li class=\"retry\">step {} attempt {}: {status}, waited {} ({asked}) — {}</li>",
            x.step,
            x.attempt,
            format_ms(x.delay_ms),
            html_escape(&x.reason)
        ));
    }
    if let Some(d) = &r.doom_loop {
        let action = r.trace.doom_action.as_deref().unwrap_or("unknown action");
        let effect = if r.finish.as_str() == "doom-loop" {
            "the turn stopped"
        } else {
            "the loop went on"
        };
        items.push(format!(
            "<li class=\"doom\">doom loop at step {}: {}{} (action {}: {effect})</li>",
            d.step,
            html_escape(&d.detector),
            if d.tool.is_empty() {
                String::new()
            } else {
                format!(" on {}", html_escape(&d.tool))
            },
            html_escape(action)
        ));
    }
    if r.finish.as_str() != "completed" {
        let detail = r
            .trace
            .finish_detail
            .as_deref()
            .map(|d| format!(": {}", html_escape(d)))
            .unwrap_or_default();
        items.push(format!(
            "<li class=\"stop\">stopped: {}{detail}</li>",
            r.finish
        ));
    }
    if items.is_empty() {
        return String::new();
    }
    format!("<ul class=\"notes\">{}</ul>\n", items.join(""))
}

fn timeline(r: &RunRecord) -> String {
    if r.step_details.is_empty() {
        return "<p class=\"facts\">no steps recorded</p>\n".into();
    }
    let trace = &r.trace;
    let end = r
        .step_details
        .iter()
        .map(|s| s.finished_ms)
        .chain(trace.attempts.iter().map(|a| a.started_ms + a.duration_ms))
        .chain([r.sim_ms])
        .max()
        .unwrap_or(0)
        .max(1);
    let axis = Axis { span: end };
    let mut out = format!(
        "<div class=\"tl\" data-span-ms=\"{end}\"><div></div><div class=\"axis\">{}</div><div class=\"tokh\">{}</div>\n",
        (0..=4)
            .map(|i| format!("<span style=\"left:{}\">{}</span>", axis.pct(end * i / 4), format_ms(end * i / 4)))
            .collect::<String>(),
        METRICS.iter().map(|m| format!("<span>{}</span>", m.0)).collect::<String>()
    );
    let max: Vec<f64> = METRICS
        .iter()
        .map(|m| r.step_details.iter().map(m.1).fold(0.0, f64::max))
        .collect();
    let last = r.step_details.last().map(|s| s.step);
    for s in &r.step_details {
        out.push_str(&lane(r, s, &axis, &max, Some(s.step) == last));
    }
    out.push_str("</div>\n<div class=\"legend\"><span><i style=\"background:var(--acc2)\"></i>waiting for the first token</span><span><i style=\"background:var(--bar)\"></i>streaming</span><span><i style=\"background:var(--fail)\"></i>failed attempt</span><span><i class=\"wait\" style=\"position:static;display:inline-block\"></i>retry wait</span><span><i style=\"background:var(--doom)\"></i>doom loop</span></div>\n");
    out
}

fn lane(r: &RunRecord, s: &StepDetail, axis: &Axis, max: &[f64], last: bool) -> String {
    let trace = &r.trace;
    let mut track = String::new();
    let attempts: Vec<_> = trace.attempts_of(s.step).collect();
    if attempts.is_empty() {
        track.push_str(&format!(
            "<span class=\"att\" style=\"{}\" title=\"step {}: {}\"></span>",
            axis.place(s.started_ms, s.finished_ms.saturating_sub(s.started_ms)),
            s.step,
            format_ms(s.finished_ms.saturating_sub(s.started_ms))
        ));
    }
    for a in &attempts {
        let retried = r
            .retries
            .iter()
            .any(|x| x.step == a.step && x.attempt == a.attempt);
        let failed = retried || a.status.is_none_or(|st| !(200..300).contains(&st));
        let ttft = a.ttft_ms.unwrap_or(a.duration_ms).min(a.duration_ms);
        let inner = if failed || a.duration_ms == 0 {
            String::new()
        } else {
            format!(
                "<i style=\"width:{:.3}%\"></i>",
                ttft as f64 * 100.0 / a.duration_ms as f64
            )
        };
        let status = a
            .status
            .map(|st| format!("HTTP {st}"))
            .unwrap_or_else(|| "no response".into());
        let ttft_text = a.ttft_ms.map(format_ms).unwrap_or_else(|| NONE.into());
        track.push_str(&format!(
            "<span class=\"att{}\" data-attempt=\"{}\" style=\"{}\" title=\"attempt {}: {status}, ttft {ttft_text}, {} at {}\">{inner}</span>",
            if failed { " err" } else { "" },
            a.attempt,
            axis.place(a.started_ms, a.duration_ms),
            a.attempt,
            format_ms(a.duration_ms),
            format_ms(a.started_ms),
        ));
    }
    // Retry waits follow the attempt that failed; without a trace they are laid end to end
    // from the step's start.
    let mut cursor = s.started_ms;
    for x in r.retries.iter().filter(|x| x.step == s.step) {
        let from = attempts
            .iter()
            .find(|a| a.attempt == x.attempt)
            .map(|a| a.started_ms + a.duration_ms)
            .unwrap_or(cursor);
        cursor = from + x.delay_ms;
        let status = x
            .status
            .map(|st| st.to_string())
            .unwrap_or_else(|| "error".into());
        track.push_str(&format!(
            "<span class=\"wait\" data-retry-wait-ms=\"{}\" style=\"{}\" title=\"retry after {status}: waited {} — {}\"></span>",
            x.delay_ms,
            axis.place(from, x.delay_ms),
            format_ms(x.delay_ms),
            html_escape(&x.reason)
        ));
    }
    if let Some(d) = r.doom_loop.as_ref().filter(|d| d.step == s.step) {
        track.push_str(&format!(
            "<span class=\"mark doom\" data-doom-step=\"{}\" style=\"left:{}\" title=\"doom loop: {} ({})\"></span>",
            d.step,
            axis.pct(s.finished_ms),
            html_escape(&d.detector),
            html_escape(&d.tool)
        ));
    }
    let stops = !matches!(r.finish.as_str(), "completed" | "doom-loop");
    if last && stops {
        track.push_str(&format!(
            "<span class=\"mark stop\" data-stop=\"{}\" style=\"left:{}\" title=\"stopped: {}\"></span>",
            r.finish,
            axis.pct(s.finished_ms),
            r.finish
        ));
    }
    let tools: String = trace
        .tools_of(s.step)
        .map(|t| {
            let result = match (&t.output, t.is_error) {
                (Some(o), true) => {
                    format!(" <span class=\"bad\">→ error: {}</span>", html_escape(o))
                }
                (Some(o), false) => format!(" <span class=\"res\">→ {}</span>", html_escape(o)),
                (None, _) => " <span class=\"res\">→ (no result)</span>".into(),
            };
            let text = format!(
                "{}({}){result}",
                html_escape(&t.tool),
                html_escape(&t.input)
            );
            format!(
                "<li title=\"{}\">{text}</li>",
                html_escape(&format!(
                    "{}({}) → {}",
                    t.tool,
                    t.input,
                    t.output.as_deref().unwrap_or("")
                ))
            )
        })
        .collect();
    let tools = if tools.is_empty() && s.tool_calls > 0 {
        format!(
            "<ul class=\"tools\"><li>{} tool call(s)</li></ul>",
            s.tool_calls
        )
    } else if tools.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"tools\">{tools}</ul>")
    };
    let bars: String = METRICS
        .iter()
        .zip(max)
        .map(|(m, &max)| {
            let v = (m.1)(s);
            let w = if max > 0.0 { v * 100.0 / max } else { 0.0 };
            let text = (m.2)(v);
            format!(
                "<span class=\"mb\" title=\"{} {text}\"><i style=\"width:{w:.1}%\"></i><b>{text}</b></span>",
                m.0
            )
        })
        .collect();
    let kind = trace.step_kind(s.step);
    let kind = if kind == "step" {
        String::new()
    } else {
        format!("<br>{kind}")
    };
    let finish = s.finish.as_deref().unwrap_or(s.status.as_str());
    format!(
        "<div class=\"lane\" data-step=\"{}\"><div class=\"lbl\"><b>{}</b> {}{kind}</div><div class=\"body\"><div class=\"track\">{track}</div>{tools}</div><div class=\"tok\">{bars}</div></div>\n",
        s.step,
        s.step,
        html_escape(finish)
    )
}
