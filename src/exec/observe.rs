//! What an agent under test did, as the replay server saw it, turned into a run record.
//!
//! The agent is a black box: tapeloop sees its requests (arrival time, body), what it was
//! served for each (an interaction of the cassette, or an error of the server), whether it read
//! the response to the end, and how the process ended. From these alone:
//!
//! - **steps**: answered requests that are not a retry; a request after an error response is a
//!   retry of the same step (so a run that never got a 2xx has one step, like opencode's one
//!   assistant message), and one the cassette could not answer is no step (as in replay);
//! - **tool calls, tokens, cost**: from the responses the agent consumed (2xx, read to the
//!   end), decoded by the same adapters as replay, priced with the pinned price table;
//! - **retries**: each error response followed by another request, with the recorded wait,
//!   the wait served (after `--retry-after-scale`) and the agent's real gap;
//! - **doom loop**: the scenario's detectors run over the tool calls the agent was served; a
//!   detection at step N is `stopped` when the agent made no further request after that
//!   response, or sent a rejection as the call's result;
//! - **finish**: see [`finish`].

use std::path::Path;

use serde_json::Value;

use crate::cassette::Header;
use crate::event::{StreamEvent, ToolCall};
use crate::processor::detector::{opencode_fires, CallSig, DetectorSet, PartView};
use crate::processor::{PriceTable, Termination};
use crate::provider::Api;
use crate::report::{DetectorResult, DoomLoopHit, Finish, RetryRecord, RunRecord};
use crate::scenario::Scenario;

use crate::provider::tool_results::tool_results;

/// What opencode (and agents like it) send as the result of a call the user refused: a
/// doom-loop stop that still makes a request.
pub const REJECTION_MARK: &str = "rejected permission";

/// One request the agent made.
#[derive(Debug, Clone)]
pub struct Served {
    /// Arrival, in ms since the agent started.
    pub at_ms: u64,
    /// When the response ended or the client went away, in ms since the agent started.
    pub end_ms: u64,
    /// The agent's request body.
    pub body: Value,
    /// The cassette interaction (index) that answered it; `None` when the server could not.
    pub interaction: Option<usize>,
    /// That interaction's response decoded as a replay decodes it (empty without one).
    pub events: Vec<StreamEvent>,
    /// The status served (0: the connection was cut before a head, as recorded).
    pub status: u16,
    /// Whether the client read the response to its end.
    pub read_to_end: bool,
    /// For an error response with a server-requested wait: the recorded and served waits.
    pub retry_after: Option<RetryAfter>,
    /// Why the server could not answer (exhausted, divergence), when it could not.
    pub miss: Option<String>,
}

/// A server-requested retry wait, as recorded and as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    pub recorded_ms: u64,
    pub served_ms: u64,
}

/// How the agent's process ended.
#[derive(Debug, Clone, Default)]
pub struct AgentRun {
    /// The exit code; `None` when it was killed (timeout) or ended by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub wall_ms: u64,
    pub stdout_tail: String,
    pub stderr_tail: String,
}

/// Everything [`score`] needs.
pub struct Observation<'a> {
    pub scenario: &'a Scenario,
    /// The served cassette's header and interaction count (bodies come with [`Served`]).
    pub header: &'a Header,
    pub interactions: usize,
    pub cassette_path: &'a Path,
    pub served: &'a [Served],
    pub agent: &'a AgentRun,
    pub prices: &'a PriceTable,
    /// Exit codes that mean "the agent stopped the run on purpose" (a doom-loop stop).
    pub stop_exit_codes: &'a [i32],
}

/// The run record of an agent run (expectations are scored by the caller).
pub fn score(obs: &Observation<'_>) -> RunRecord {
    let api = obs.header.api;
    let model = obs.header.model_or(obs.scenario.model.as_deref());
    let provider = obs.header.provider_or(obs.scenario.provider.as_deref());
    let cost = obs.prices.lookup(Some(&provider), &model).map(|m| m.cost);
    let mut detectors = DetectorSet::new(obs.scenario.policy.doom_loop.clone());
    let mut rec = RunRecord::new(
        obs.scenario.name.clone(),
        crate::runner::display_path(obs.cassette_path),
        api,
        provider,
        model,
        Finish::Completed,
    );
    let mut step = 0u32;
    let mut attempt = 0u32;
    let mut after_error = false;
    // The detection that fired, and the index of the served request whose response held it.
    let mut doom_at: Option<(crate::processor::Detection, usize)> = None;
    // Call index (detector numbering) by tool call id, for results sent back later.
    let mut call_index: Vec<(String, u64)> = Vec::new();
    // Requests repeat the whole history: each result is fed to the detectors once.
    let mut results_seen = std::collections::HashSet::new();
    for (i, s) in obs.served.iter().enumerate() {
        // Results the agent sent back for earlier calls feed `no-progress`.
        for r in tool_results(api, &s.body) {
            if !results_seen.insert(r.call_id.clone()) {
                continue;
            }
            if let Some((_, index)) = call_index.iter().find(|(c, _)| *c == r.call_id) {
                for d in detectors.on_result(*index, &r.output_text(), r.error) {
                    doom_at.get_or_insert((d, i.saturating_sub(1)));
                }
            }
        }
        // A request the cassette could not answer is no step (as in replay).
        if s.interaction.is_none() {
            continue;
        }
        if after_error {
            attempt += 1;
        } else {
            step += 1;
            attempt = 1;
        }
        let events = s.events.as_slice();
        let error = events.iter().find_map(|e| match e {
            StreamEvent::Error(err) => Some(err.clone()),
            _ => None,
        });
        if let Some(err) = error {
            after_error = true;
            if let Some(next) = obs.served.get(i + 1) {
                let waited = next.at_ms.saturating_sub(s.end_ms);
                rec.retries.push(RetryRecord {
                    step,
                    attempt,
                    status: err.status,
                    delay_ms: waited,
                    reason: err.message.clone(),
                    recorded_ms: s.retry_after.map(|r| r.recorded_ms),
                    served_ms: s.retry_after.map(|r| r.served_ms),
                    waited_ms: Some(waited),
                });
            }
            continue;
        }
        after_error = false;
        if !s.read_to_end {
            continue;
        }
        // A consumed response: its calls, usage and cost count.
        let mut parts: Vec<(String, Value)> = Vec::new();
        let mut sigs = Vec::new();
        let mut text = String::new();
        for ev in events {
            match ev {
                StreamEvent::TextDelta { text: t, .. } => text.push_str(t),
                // Server tools the provider ran itself (web search) are not the agent's calls.
                StreamEvent::ToolCall(ToolCall {
                    id,
                    tool,
                    input,
                    provider_executed: false,
                    ..
                }) => {
                    rec.tool_calls += 1;
                    let views: Vec<PartView<'_>> = parts
                        .iter()
                        .map(|(t, v)| PartView::Tool {
                            tool: t,
                            pending: false,
                            input: v,
                        })
                        .collect();
                    let fires = opencode_fires(&views, tool, input);
                    let (index, fired) = detectors.on_call(step, tool, input, fires);
                    call_index.push((id.clone(), index));
                    for d in fired {
                        doom_at.get_or_insert((d, i));
                    }
                    parts.push((tool.clone(), input.clone()));
                    sigs.push(CallSig::new(tool, input));
                }
                StreamEvent::FinishStep { usage, .. } => {
                    rec.tokens.add(usage);
                    rec.cost_usd += cost.as_ref().map_or(0.0, |c| c.cost_usd(usage));
                }
                _ => {}
            }
        }
        for d in detectors.on_step_finish(step, &sigs, text.trim()) {
            doom_at.get_or_insert((d, i));
        }
    }
    rec.steps = step;
    rec.cost_usd = (rec.cost_usd * 1e7).round() / 1e7;
    rec.detectors = detectors
        .reports()
        .iter()
        .map(DetectorResult::from)
        .collect();
    if let Some((d, at)) = &doom_at {
        let stopped = doom_stopped(api, obs.served, *at);
        rec.doom_loop = Some(DoomLoopHit {
            step: d.step,
            tool: d.tool.clone(),
            detector: d.detector.to_string(),
            stopped: Some(stopped),
        });
    }
    // An agent that exits with one of its stop codes says it stopped a loop itself, even
    // where none of the scenario's detectors fired: the doom loop is its own, at its last step.
    // Not when its last request got an error or went unanswered: that exit is the error's
    // (opencode exits 1 for both).
    let stop_code = obs
        .agent
        .exit_code
        .is_some_and(|c| c != 0 && obs.stop_exit_codes.contains(&c));
    let explained = last_error(obs).is_some() || obs.served.iter().any(|s| s.interaction.is_none());
    if stop_code && !explained && rec.doom_loop.is_none() && !obs.served.is_empty() {
        let tool = last_tool_call(obs).unwrap_or_default();
        rec.doom_loop = Some(DoomLoopHit {
            step,
            tool,
            detector: "agent".into(),
            stopped: Some(true),
        });
    }
    rec.finish = finish(obs, &rec);
    rec.unused_interactions = obs.interactions.saturating_sub(
        obs.served
            .iter()
            .filter(|s| s.interaction.is_some())
            .count(),
    ) as u32;
    rec.wall_ms = Some(obs.agent.wall_ms);
    if let Some(miss) = obs.served.iter().find_map(|s| s.miss.clone()) {
        rec.warnings.push(miss);
    }
    rec
}

/// The error the agent's last request was answered with, if it was.
fn last_error(obs: &Observation<'_>) -> Option<crate::event::ProviderError> {
    let last = obs.served.last()?;
    last.interaction?;
    last.events.iter().find_map(|e| match e {
        StreamEvent::Error(err) => Some(err.clone()),
        _ => None,
    })
}

/// The tool of the last call the agent was served.
fn last_tool_call(obs: &Observation<'_>) -> Option<String> {
    obs.served.iter().rev().find_map(|s| {
        s.interaction?;
        s.events.iter().rev().find_map(|e| match e {
            StreamEvent::ToolCall(ToolCall { tool, .. }) => Some(tool.clone()),
            _ => None,
        })
    })
}

/// Whether the agent stopped at the response `at`: no further request, or the next request
/// answers a call of that response with a rejection.
fn doom_stopped(api: Api, served: &[Served], at: usize) -> bool {
    match served.get(at + 1) {
        None => true,
        Some(next) => tool_results(api, &next.body)
            .iter()
            .any(|r| r.output_text().contains(REJECTION_MARK)),
    }
}

/// The run's finish, first match wins: `timeout` (the agent was killed), `cassette-exhausted`
/// (it asked for more than the cassette holds), `doom-loop` (a detection it stopped at),
/// `retries-exhausted` / `provider-error` (its last request got an error and it asked no
/// more), `agent-error` (a non-zero exit nothing above explains, unless listed in
/// `stop_exit_codes`), else `completed`.
fn finish(obs: &Observation<'_>, rec: &RunRecord) -> Finish {
    if obs.agent.timed_out {
        return Termination::Timeout;
    }
    if obs.served.iter().any(|s| s.interaction.is_none()) {
        return Termination::CassetteExhausted;
    }
    if rec
        .doom_loop
        .as_ref()
        .is_some_and(|d| d.stopped == Some(true))
    {
        return Termination::DoomLoop;
    }
    if let Some(err) = last_error(obs) {
        return if err.retryable {
            Termination::RetriesExhausted
        } else {
            Termination::ProviderError
        };
    }
    match obs.agent.exit_code {
        Some(0) => Termination::Completed,
        Some(code) if obs.stop_exit_codes.contains(&code) => Termination::Completed,
        _ => Termination::AgentError,
    }
}
