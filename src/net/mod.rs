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

use std::time::Duration;

/// Wait `wait`, if there is anything to wait for: every wait of the network layer and of live
/// recording goes through here. A zero `sleep` is not free in tokio: its deadline rounds up to
/// the timer's next 1 ms tick, so under `--pace instant` every served response, and every
/// zero retry wait while recording, would wait about a millisecond for nothing.
pub(crate) async fn pause(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero pause must not touch the timer. A runtime without a timer panics on any sleep,
    /// so this passes only if none is made.
    #[test]
    fn a_zero_pause_makes_no_timer_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(pause(Duration::ZERO));
    }
}
