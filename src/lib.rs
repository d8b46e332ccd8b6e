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
pub mod http;
pub mod names;
pub mod processor;
pub mod provider;
pub mod proxy;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod server;
pub mod sse;
pub mod transport;

/// The version written into cassettes and reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
