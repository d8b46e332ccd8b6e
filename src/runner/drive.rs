//! One replay: a scenario against one cassette, through the [`SessionDriver`] on virtual time.
//!
//! The clock is the cassette's recorded `ms` offsets plus the processor's virtual retry waits:
//! each chunk's events reach the processor at the chunk's recorded time, and nothing sleeps.

use std::path::Path;

use crate::cassette::{Cassette, CassetteError, CassetteStream, ErrorKind, Header};
use crate::event::{EndOutcome, StreamEvent, ToolCall};
use crate::processor::{Action, Processor, Termination};
use crate::provider::ResponseDecoder;
use crate::replay::{CassetteReplay, ReplayMiss};
use crate::report::{AttemptTrace, RunRecord};
use crate::scenario::{Scenario, ToolScripts};
use crate::session::SessionDriver;

use super::verdict::{build_record, DriverStats};
use super::{initial_conversation, processor_config, RunOptions};

/// Replay a scenario against a loaded cassette. Pure: the same inputs give the same record
/// (`wall_ms` is left for the caller). `Err` when the cassette has no usable interaction or
/// one that cannot be decoded within the limits ([`crate::limits`]).
pub fn replay(
    sc: &Scenario,
    cassette: &Cassette,
    cassette_path: &Path,
    opts: &RunOptions,
) -> Result<RunRecord, CassetteError> {
    let mode = opts.match_mode.unwrap_or(sc.policy.match_mode);
    let replay = CassetteReplay::new(cassette, mode);
    drive(sc, replay, &cassette.header, cassette_path, opts).map(|(record, _)| record)
}

/// Replay a scenario while reading its cassette (what `tapeloop run` does): memory holds the
/// interactions in flight, not the file. The rest of the file is read and checked after the
/// run stops, so a damaged cassette is an error however early the loop ended. Also returns
/// how many normalized events the replay consumed.
pub fn replay_stream(
    sc: &Scenario,
    stream: CassetteStream,
    cassette_path: &Path,
    opts: &RunOptions,
) -> Result<(RunRecord, u64), CassetteError> {
    let mode = opts.match_mode.unwrap_or(sc.policy.match_mode);
    let header = stream.header().clone();
    drive(
        sc,
        CassetteReplay::streamed(stream, mode),
        &header,
        cassette_path,
        opts,
    )
}

/// The replay loop shared by loaded and streamed cassettes.
fn drive(
    sc: &Scenario,
    mut replay: CassetteReplay<'_>,
    header: &Header,
    cassette_path: &Path,
    opts: &RunOptions,
) -> Result<(RunRecord, u64), CassetteError> {
    let mut cfg = processor_config(sc, opts, header.provider.as_deref());
    if let Some(m) = header.model.as_ref().filter(|m| !m.is_empty()) {
        cfg.model = m.clone();
    }
    let doom_action = cfg.doom_action.to_string();
    let mut session = SessionDriver::new(
        Processor::new(cfg, initial_conversation(sc)),
        ToolScripts::from_scenario(sc),
    );
    let mut stats = DriverStats {
        doom_action: Some(doom_action),
        ..DriverStats::default()
    };
    // Each cassette replays through its own wire API: one scenario may be recorded against
    // several providers for comparison.
    let api = header.api;
    // Answering tools from a cassette does no I/O: a failure here is impossible.
    let feed = |session: &mut SessionDriver,
                replay: &mut CassetteReplay<'_>,
                events: &mut Vec<StreamEvent>,
                at: u64| {
        session
            .feed(events, at, replay)
            .expect("cassette tool answers do no I/O")
    };

    let mut now: u64 = 0;
    let mut action = session.start(now);
    let mut events: Vec<StreamEvent> = Vec::new();
    'run: loop {
        match action {
            Action::Stop(_) => break,
            Action::Wait { ms } => {
                now = now.saturating_add(ms);
                action = session.wait_elapsed(now);
            }
            Action::ExecuteTool(inv) => {
                // Not expected outside a stream, but answer it the same way.
                session
                    .answer_tool(&inv, now, &mut replay)
                    .expect("cassette tool answers do no I/O");
                action = session.attempt_end(now);
            }
            Action::Send(req) => {
                let inter = match replay
                    .next_response(|| api.request_body(&req.conversation, &req.options))
                {
                    Ok(i) => i,
                    Err(miss) => {
                        let reason = match &miss {
                            ReplayMiss::Exhausted { .. } => Termination::CassetteExhausted,
                            ReplayMiss::Divergence { path, .. } => {
                                stats.divergence = Some(path.clone());
                                Termination::Divergence
                            }
                        };
                        // The report must say why: the recorded and sent values at the
                        // differing path, or how many interactions the cassette had.
                        session.warn(format!("{reason}: {miss}"));
                        session.terminate(reason, Some(miss.to_string()), now);
                        break;
                    }
                };
                // Let go of the request's conversation before the events change the history,
                // so the history grows in place instead of being copied.
                let (step, attempt_no) = (req.step, req.attempt);
                drop(req);
                let start = now;
                let first_attempt_content = stats.ttft_ms.is_none();
                let mut attempt_ttft = None;
                let status = inter.response.as_ref().map(|h| h.status);
                let attempt = |started_ms, ttft_ms, duration_ms| AttemptTrace {
                    step,
                    attempt: attempt_no,
                    started_ms,
                    ttft_ms,
                    duration_ms,
                    status,
                };
                let outcome = inter
                    .end
                    .as_ref()
                    .map(|e| e.outcome)
                    .unwrap_or(EndOutcome::Reset);
                let end_ms = inter
                    .end
                    .as_ref()
                    .map(|e| e.ms)
                    .or_else(|| inter.chunks.last().map(|c| c.ms))
                    .or_else(|| inter.response.as_ref().map(|r| r.ms))
                    .unwrap_or(0);
                stats.stream_ms += end_ms;
                match &inter.response {
                    Some(head) if (200..300).contains(&head.status) => {
                        // A stream: events reach the processor at their chunk's recorded time.
                        let mut decoder = ResponseDecoder::for_response(api, &head.headers);
                        let undecodable = |d: &ResponseDecoder| {
                            d.limit_exceeded().map(|e| {
                                CassetteError::new(
                                    cassette_path,
                                    None,
                                    ErrorKind::Undecodable {
                                        id: inter.id,
                                        error: e.clone(),
                                    },
                                )
                            })
                        };
                        for chunk in &inter.chunks {
                            decoder.feed(&chunk.bytes, &mut events);
                            if let Some(e) = undecodable(&decoder) {
                                return Err(e);
                            }
                            if attempt_ttft.is_none() && events.iter().any(is_content) {
                                attempt_ttft = Some(chunk.ms);
                            }
                            if first_attempt_content
                                && stats.ttft_ms.is_none()
                                && events.iter().any(is_content)
                            {
                                stats.ttft_ms = Some(chunk.ms);
                            }
                            if feed(&mut session, &mut replay, &mut events, start + chunk.ms) {
                                // The run stopped mid-stream (a doom loop): the attempt ends here.
                                stats.attempts.push(attempt(start, attempt_ttft, chunk.ms));
                                break 'run;
                            }
                        }
                        decoder.finish(outcome, &mut events);
                        if let Some(e) = undecodable(&decoder) {
                            return Err(e);
                        }
                    }
                    // An error response, or none at all: one classified error at the end.
                    _ => events.extend(inter.decode(api)),
                }
                stats.attempts.push(attempt(start, attempt_ttft, end_ms));
                drop(inter);
                if feed(&mut session, &mut replay, &mut events, start + end_ms) {
                    break 'run;
                }
                now = start + end_ms;
                action = session.attempt_end(now);
            }
        }
    }

    let end = replay.finish()?;
    if end.interactions == 0 {
        // Nothing was replayed, so nothing could fail: a PASS here would be a lie.
        return Err(CassetteError::new(
            cassette_path,
            None,
            ErrorKind::NoInteractions,
        ));
    }
    let session = session.finish();
    if end.truncated {
        stats.warnings.push(format!(
            "cassette was cut short (no footer): replayed its {} complete interactions",
            end.interactions
        ));
    }
    let events = session.events;
    Ok((
        build_record(sc, header, cassette_path, session, stats, &end),
        events,
    ))
}

/// Whether an event is the first sign of model output (time to first token).
fn is_content(ev: &StreamEvent) -> bool {
    matches!(
        ev,
        StreamEvent::TextDelta { .. }
            | StreamEvent::ReasoningDelta { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::ToolInputStart { .. }
            | StreamEvent::ToolCall(ToolCall { .. })
    )
}
