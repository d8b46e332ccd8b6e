//! `tapeloop exec`: put the user's own agent under test. For each scenario × cassette, serve
//! the cassette in-process on an ephemeral loopback port, run the agent command in a fresh
//! working directory, watch what it asks for, and score it with the scenario's expectations
//! like `run` scores the built-in processor.

pub mod agent;
pub mod observe;
pub mod process;
