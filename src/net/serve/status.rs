//! What the replay server did: per-cassette and per-session status, divergences, reported at
//! shutdown and by `GET /_tapeloop/status`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::provider::Api;

/// A request no recorded one matched (conversation and strict modes).
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    pub cassette: String,
    pub session: String,
    pub interaction: u64,
    pub path: String,
    pub recorded: String,
    pub sent: String,
}

/// What the server did, reported at shutdown and by `/_tapeloop/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ServeSummary {
    pub pace: String,
    /// `conversation`, `sequence` or `strict`.
    pub matching: String,
    pub strict: bool,
    pub cassettes: Vec<CassetteStatus>,
    /// Per session key, the interactions it was served, in order (the sessions kept: see
    /// `sessions_forgotten`).
    pub sessions: BTreeMap<String, SessionStatus>,
    /// Sessions forgotten to stay within `--max-sessions` (least recently served first).
    pub sessions_forgotten: u64,
    /// Forgotten sessions that came back and started over (each response that restarted one
    /// carries `x-tapeloop-session-restarted`).
    pub sessions_restarted: u64,
    /// Model requests received (routed, with a JSON object body).
    pub requests: u64,
    pub divergences: Vec<Divergence>,
}

/// Per-cassette status.
#[derive(Debug, Clone, Serialize)]
pub struct CassetteStatus {
    pub path: String,
    pub api: Api,
    pub model: Option<String>,
    pub interactions: usize,
    /// Interactions served at least once (by any session).
    pub played: usize,
    /// Ids of interactions no session asked for.
    pub unused: Vec<u64>,
}

/// What one client session was served.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionStatus {
    /// How many interactions it was served.
    pub played: usize,
    /// Those interactions in serving order.
    pub interactions: Vec<PlayedInteraction>,
}

/// One interaction served to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayedInteraction {
    pub cassette: String,
    pub id: u64,
}

impl ServeSummary {
    /// Whether strict mode should fail: divergences, or interactions never played.
    pub fn strict_failed(&self) -> bool {
        !self.divergences.is_empty() || self.cassettes.iter().any(|c| !c.unused.is_empty())
    }
}
