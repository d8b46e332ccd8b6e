//! tapeloop: record/replay evaluation harness for LLM agent loops.
//!
//! Provider streams are recorded byte for byte into JSONL cassettes ([`cassette`]), decoded by
//! the same adapters live and in replay ([`provider`]) into normalized events ([`event`]), and
//! driven through a pure, opencode-faithful agent-loop state machine ([`processor`]) on virtual
//! time. The runner scores doom loops, retries, steps and token costs against scenario
//! expectations and reports for CI.

pub mod bench;
pub mod cassette;
pub mod conversation;
pub mod event;
pub mod exec;
pub mod exit;
pub mod http;
pub(crate) mod json_scan;
pub mod limits;
pub mod matching;
pub mod names;
pub mod net;
pub mod processor;
pub mod provider;
pub mod record;
pub mod replay;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod sse;

/// The version written into cassettes and reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
