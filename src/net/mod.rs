//! The network layer: everything that listens on or talks to a socket.
//!
//! - [`listener`]: the one HTTP accept loop (hyper, `TCP_NODELAY`, graceful shutdown), shared
//!   by both servers;
//! - [`serve`]: the replay server, playing cassettes back as provider endpoints;
//! - [`proxy`]: the recording proxy, forwarding to a provider and teeing into cassettes;
//! - [`upstream`]: the one timed exchange with a provider (send, time the head and every body
//!   read, classify network failures), shared by the proxy and live recording
//!   ([`crate::record`]).
//!
//! Which request is which recorded one is decided in [`crate::matching`]; per-API facts
//! (paths, auth, hosts) live in the provider wire table.

pub mod encoding;
pub mod listener;
pub mod proxy;
pub mod serve;
pub mod upstream;
