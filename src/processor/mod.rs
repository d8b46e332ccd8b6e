//! The agent-loop processor.

pub mod config;
