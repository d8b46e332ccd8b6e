//! A cassette as the model's side of a replay: [`CassetteReplay`] serves a cassette's
//! interactions in order and answers tool calls from its `tool` lines (it is the
//! [`ToolHost`] of the [`crate::session`] driver in replay); in `strict` mode it checks each
//! request against the recorded one with [`crate::matching::strict_difference`].

use serde_json::Value;

use std::borrow::Cow;

use crate::cassette::{Cassette, CassetteError, CassetteStream, Interaction, ToolRecord};
use crate::matching::strict_difference;
use crate::session::ToolHost;

pub use crate::scenario::MatchMode;

/// Why a request could not be answered from the cassette.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayMiss {
    /// Every interaction has been used.
    Exhausted { available: usize },
    /// Strict mode: the request differs from the recorded one at `path`.
    Divergence {
        interaction: u64,
        path: String,
        recorded: String,
        sent: String,
    },
}

impl std::fmt::Display for ReplayMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayMiss::Exhausted { available } => write!(
                f,
                "the loop asked for request {} but the cassette has only {available}",
                available + 1
            ),
            ReplayMiss::Divergence {
                interaction,
                path,
                recorded,
                sent,
            } => write!(
                f,
                "request differs from recorded interaction {interaction} at {path}: recorded {recorded}, sent {sent}"
            ),
        }
    }
}

/// Serves one cassette's interactions and tool results to one replay, from a cassette loaded
/// whole or from a [`CassetteStream`] that reads the file as the replay goes.
pub struct CassetteReplay<'a> {
    source: Source<'a>,
    next: usize,
    tool_used: Vec<bool>,
    mode: MatchMode,
}

enum Source<'a> {
    Loaded(&'a Cassette),
    Streamed(Box<CassetteStream>),
}

/// How a replay's cassette ended, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEnd {
    /// Complete interactions the cassette holds.
    pub interactions: usize,
    /// Interactions the run never asked for.
    pub unused: usize,
    /// The cassette had no footer.
    pub truncated: bool,
}

impl<'a> CassetteReplay<'a> {
    pub fn new(cassette: &'a Cassette, mode: MatchMode) -> Self {
        CassetteReplay {
            source: Source::Loaded(cassette),
            next: 0,
            tool_used: vec![false; cassette.tools.len()],
            mode,
        }
    }

    /// Replay from a stream: memory stays bounded by the interactions in flight.
    pub fn streamed(stream: CassetteStream, mode: MatchMode) -> CassetteReplay<'static> {
        CassetteReplay {
            source: Source::Streamed(Box::new(stream)),
            next: 0,
            tool_used: Vec::new(),
            mode,
        }
    }

    /// The next interaction for a request. `body` builds the request body; it is only called
    /// in strict mode, so sequence-mode replay never pays for building it.
    pub fn next_response(
        &mut self,
        body: impl FnOnce() -> Value,
    ) -> Result<Cow<'a, Interaction>, ReplayMiss> {
        let inter: Cow<'a, Interaction> = match &mut self.source {
            Source::Loaded(c) => {
                let c: &'a Cassette = c;
                match c.interactions.get(self.next) {
                    Some(i) => Cow::Borrowed(i),
                    None => {
                        return Err(ReplayMiss::Exhausted {
                            available: c.interactions.len(),
                        })
                    }
                }
            }
            Source::Streamed(s) => match s.next_interaction() {
                Some(i) => Cow::Owned(i),
                None => {
                    return Err(ReplayMiss::Exhausted {
                        available: s.served(),
                    })
                }
            },
        };
        if self.mode == MatchMode::Strict {
            if let Some(diff) = strict_difference(&inter.request.body, &body()) {
                return Err(ReplayMiss::Divergence {
                    interaction: inter.id,
                    path: diff.path,
                    recorded: diff.left,
                    sent: diff.right,
                });
            }
        }
        self.next += 1;
        Ok(inter)
    }

    /// How many interactions were consumed.
    pub fn used(&self) -> usize {
        self.next
    }

    /// The recorded result of a tool call: the `tool` line with this `call_id`, else the first
    /// unused line for the same tool, in file order. Each line answers once.
    pub fn tool_result(&mut self, call_id: &str, tool: &str) -> Option<&ToolRecord> {
        let used = &mut self.tool_used;
        let by_id = |tools: &[ToolRecord], used: &[bool]| {
            tools.iter().enumerate().position(|(i, t)| {
                !used.get(i).copied().unwrap_or(false) && t.call_id == call_id && t.tool == tool
            })
        };
        let by_tool = |tools: &[ToolRecord], used: &[bool]| {
            tools
                .iter()
                .enumerate()
                .position(|(i, t)| !used.get(i).copied().unwrap_or(false) && t.tool == tool)
        };
        let tools: &[ToolRecord] = match &mut self.source {
            Source::Loaded(c) => &c.tools,
            Source::Streamed(s) => {
                // The lines read so far are a prefix of the file's: a `call_id` match there is
                // the first in the file. Otherwise the answer depends on lines not read yet.
                // The line usually follows the interaction that called the tool: read on to
                // it before scanning the whole file.
                if by_id(s.tool_lines(), used).is_some()
                    || s.read_tools_ahead(|t| t.call_id == call_id && t.tool == tool)
                {
                    s.tool_lines()
                } else {
                    s.all_tool_lines()
                }
            }
        };
        let idx = by_id(tools, used).or_else(|| by_tool(tools, used))?;
        if used.len() < tools.len() {
            used.resize(tools.len(), false);
        }
        used[idx] = true;
        Some(&tools[idx])
    }

    /// Finish the replay: for a stream, read and check the rest of the file (the first error
    /// in it is returned); then say how many interactions went unused.
    pub fn finish(self) -> Result<ReplayEnd, CassetteError> {
        match self.source {
            Source::Loaded(c) => Ok(ReplayEnd {
                interactions: c.interactions.len(),
                unused: c.interactions.len() - self.next,
                truncated: c.is_truncated(),
            }),
            Source::Streamed(s) => {
                let end = s.finish()?;
                Ok(ReplayEnd {
                    interactions: end.interactions,
                    unused: end.interactions - self.next,
                    truncated: end.truncation.is_some(),
                })
            }
        }
    }
}

impl ToolHost for CassetteReplay<'_> {
    fn recorded(&mut self, call_id: &str, tool: &str) -> Option<(String, bool)> {
        self.tool_result(call_id, tool).map(|t| {
            let output = match &t.output {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (output, t.error)
        })
    }
}
