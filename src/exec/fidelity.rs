//! `tapeloop exec --vs-processor`: the agent's verdict beside the built-in processor's on the
//! same scenario and cassette, field by field, so a claim that the processor behaves like the
//! agent is checked rather than assumed.

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::report::{Fidelity, FieldAgreement, RunRecord};

/// How far apart two retry waits may be and still agree: the agent's waits are real time
/// and real backoffs carry jitter, so 250 ms or a fifth of the wait, whichever is larger.
pub const WAIT_TOLERANCE_MS: u64 = 250;

/// Compare an agent's record with the processor's: finish, doom step and tool, steps, tool
/// calls, retries and their waits (within [`WAIT_TOLERANCE_MS`] or 20 %, the processor's
/// wait scaled as the server scaled the agent's), tokens and cost.
pub fn compare(agent: &RunRecord, processor: &RunRecord) -> Fidelity {
    let mut fields: IndexMap<String, FieldAgreement> = IndexMap::new();
    let mut field = |name: &str, a: Value, p: Value, agree: bool| {
        fields.insert(
            name.to_string(),
            FieldAgreement {
                agent: a,
                processor: p,
                agree,
            },
        );
    };
    let eq = |a: &Value, p: &Value| a == p;
    // The processor acts on its own detection; the agent's detection counts as its doom loop
    // only where it stopped there (a detector firing on what an agent went past is not).
    let agent_doom = agent
        .doom_loop
        .as_ref()
        .filter(|d| d.stopped != Some(false));
    let pairs = [
        (
            "finish",
            json!(agent.finish.as_str()),
            json!(processor.finish.as_str()),
        ),
        (
            "doom_step",
            json!(agent_doom.map(|d| d.step)),
            json!(processor.doom_loop.as_ref().map(|d| d.step)),
        ),
        (
            "doom_tool",
            json!(agent_doom.map(|d| d.tool.clone())),
            json!(processor.doom_loop.as_ref().map(|d| d.tool.clone())),
        ),
        ("steps", json!(agent.steps), json!(processor.steps)),
        (
            "tool_calls",
            json!(agent.tool_calls),
            json!(processor.tool_calls),
        ),
        (
            "retries",
            json!(agent.retries.len()),
            json!(processor.retries.len()),
        ),
        (
            "tokens",
            json!(agent.tokens.total()),
            json!(processor.tokens.total()),
        ),
    ];
    for (name, a, p) in pairs {
        let agree = eq(&a, &p);
        field(name, a, p, agree);
    }
    // The agent waited what the server served (a `retry-after` scaled by
    // `--retry-after-scale`); the processor's virtual wait is scaled the same way to compare.
    let aw: Vec<u64> = agent.retries.iter().map(|x| x.delay_ms).collect();
    let pw: Vec<u64> = processor.retries.iter().map(|x| x.delay_ms).collect();
    let expected: Vec<u64> = agent
        .retries
        .iter()
        .zip(&processor.retries)
        .map(|(a, p)| match (a.recorded_ms, a.served_ms) {
            (Some(r), Some(s)) if r > 0 => p.delay_ms * s / r,
            _ => p.delay_ms,
        })
        .collect();
    let waits_agree = aw.len() == pw.len()
        && aw
            .iter()
            .zip(&expected)
            .all(|(a, e)| a.abs_diff(*e) <= WAIT_TOLERANCE_MS.max(e / 5));
    field("retry_waits_ms", json!(aw), json!(pw), waits_agree);
    let cost_agree =
        (agent.cost_usd - processor.cost_usd).abs() <= 1e-9_f64.max(processor.cost_usd * 1e-6);
    field(
        "cost_usd",
        json!(agent.cost_usd),
        json!(processor.cost_usd),
        cost_agree,
    );
    Fidelity {
        agree: fields.values().all(|f| f.agree),
        fields,
    }
}

/// The agreement of every run as text: one line per run, then each disagreeing field with the
/// agent's and the processor's value.
pub fn table(report: &crate::report::RunReport) -> String {
    let mut out = String::from("\nagent vs processor\n");
    let mut agree = 0;
    for run in &report.runs {
        let Some(f) = &run.fidelity else { continue };
        if f.agree {
            agree += 1;
        }
        out.push_str(&format!(
            "  {:<8} {} × {}\n",
            if f.agree { "agree" } else { "DIFFER" },
            run.scenario,
            run.cassette
        ));
        for (name, field) in f.fields.iter().filter(|(_, v)| !v.agree) {
            out.push_str(&format!(
                "           {name}: agent {}, processor {}\n",
                field.agent, field.processor
            ));
        }
    }
    let total = report.runs.iter().filter(|r| r.fidelity.is_some()).count();
    out.push_str(&format!("  {agree} of {total} runs agree\n"));
    out
}
