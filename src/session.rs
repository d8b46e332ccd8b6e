//! The session driver: the one piece of glue between the pure [`Processor`] and whatever
//! answers it, used by replay (a cassette on virtual time, [`crate::runner`]) and by live
//! recording (a provider on the wall clock, [`crate::record`]).
//!
//! The caller owns the transport and the clock: it carries out `Send` and `Wait` and hands the
//! decoded events of each attempt to [`SessionDriver::feed`]. The driver feeds them to the
//! processor and carries out what the processor asks for in the middle of a stream — tool
//! calls — through one chain of tool sources, so a fix to the loop is made once:
//!
//! 1. the scenario's scripted results (`[[tools.results]]`);
//! 2. recorded results from the [`ToolHost`] (a cassette's `tool` lines);
//! 3. otherwise an error result the model sees, and a warning for the report.
//!
//! Every answer is also handed to [`ToolHost::answered`], so live recording writes it into the
//! cassette as a `tool` line for later replays.

use crate::event::StreamEvent;
use crate::processor::{Action, Outcome, Processor, Termination, ToolInvocation};
use crate::scenario::ToolScripts;

/// What the driver asks of its transport about tools: recorded results, and a place to note
/// each answer given. Both have do-nothing defaults.
pub trait ToolHost {
    /// The recorded result of a call (output, is_error), consulted after the scenario's scripts.
    fn recorded(&mut self, _call_id: &str, _tool: &str) -> Option<(String, bool)> {
        None
    }

    /// Called with every answer the driver gives (live recording writes a `tool` line).
    fn answered(
        &mut self,
        _inv: &ToolInvocation,
        _output: &str,
        _is_error: bool,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// A host with no recorded results that keeps nothing.
pub struct NoRecordedTools;

impl ToolHost for NoRecordedTools {}

/// One agent-loop session: the processor, the actions it asked for mid-stream, and the tool
/// chain that answers them.
pub struct SessionDriver {
    processor: Processor,
    pending: Vec<Action>,
    scripts: ToolScripts,
    warnings: Vec<String>,
    events: u64,
}

/// What a finished session leaves for the report.
pub struct SessionEnd {
    pub outcome: Outcome,
    /// The driver's own warnings (unanswered tools, protocol surprises).
    pub warnings: Vec<String>,
    /// Normalized events fed to the processor.
    pub events: u64,
}

impl SessionDriver {
    pub fn new(processor: Processor, scripts: ToolScripts) -> Self {
        SessionDriver {
            processor,
            pending: Vec::new(),
            scripts,
            warnings: Vec::new(),
            events: 0,
        }
    }

    /// The first action of the loop.
    pub fn start(&mut self, now: u64) -> Action {
        self.processor.start(now)
    }

    /// The attempt's response is over (all its events were fed): the next action.
    pub fn attempt_end(&mut self, now: u64) -> Action {
        self.processor.on_attempt_end(now)
    }

    /// A `Wait` the processor asked for has elapsed: the next action.
    pub fn wait_elapsed(&mut self, now: u64) -> Action {
        self.processor.on_wait_elapsed(now)
    }

    /// Stop the loop from outside (the transport cannot answer).
    pub fn terminate(&mut self, reason: Termination, message: Option<String>, now: u64) {
        self.processor.terminate(reason, message, now);
    }

    /// Add a warning to the report.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// Feed `events` (drained) at time `at`, carrying out the actions each causes. Returns
    /// true when the processor stopped the run.
    pub fn feed(
        &mut self,
        events: &mut Vec<StreamEvent>,
        at: u64,
        host: &mut dyn ToolHost,
    ) -> std::io::Result<bool> {
        for ev in events.drain(..) {
            self.events += 1;
            self.processor.on_event(&ev, at, &mut self.pending);
            if self.drain_actions(at, host)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Carry out the actions pushed while consuming one event; true when the run stopped.
    fn drain_actions(&mut self, now: u64, host: &mut dyn ToolHost) -> std::io::Result<bool> {
        let mut stopped = false;
        // Answering a tool can push more actions; loop until quiet.
        while !self.pending.is_empty() {
            for a in std::mem::take(&mut self.pending) {
                match a {
                    Action::ExecuteTool(inv) => self.answer_tool(&inv, now, host)?,
                    Action::Stop(_) => stopped = true,
                    Action::Send(_) | Action::Wait { .. } => {
                        self.warn("processor asked for a request in the middle of a stream");
                    }
                }
            }
        }
        Ok(stopped)
    }

    /// Answer a tool call through the chain (module docs) and hand the result to the processor.
    pub fn answer_tool(
        &mut self,
        inv: &ToolInvocation,
        now: u64,
        host: &mut dyn ToolHost,
    ) -> std::io::Result<()> {
        let (output, is_error) = match self.scripts.answer(&inv.tool, &inv.input) {
            Some(Ok(a)) => (a.output, a.is_error),
            Some(Err(no_match)) => {
                self.warn(format!("step {}: {}", inv.step, no_match.warning()));
                let a = no_match.to_answer();
                (a.output, a.is_error)
            }
            None => match host.recorded(&inv.call_id, &inv.tool) {
                Some(recorded) => recorded,
                None => {
                    self.warn(format!(
                        "step {}: nothing answers the call to `{}` (no scripted results, no cassette tool line); answered with an error",
                        inv.step, inv.tool
                    ));
                    (
                        format!(
                            "tapeloop: no result recorded or scripted for `{}`",
                            inv.tool
                        ),
                        true,
                    )
                }
            },
        };
        host.answered(inv, &output, is_error)?;
        self.processor
            .on_tool_result(&inv.call_id, output, is_error, now);
        Ok(())
    }

    /// End the session.
    pub fn finish(self) -> SessionEnd {
        SessionEnd {
            outcome: self.processor.into_outcome(),
            warnings: self.warnings,
            events: self.events,
        }
    }
}
