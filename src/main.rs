//! The `tapeloop` binary: parses the command line and hands off to `cli`; the exit code is
//! [`tapeloop::exit::Exit`].

mod cli;

/// mimalloc instead of the system allocator (feature `mimalloc`, on by default): the replay
/// path and the server allocate many small, short-lived buffers from several threads, and with
/// mimalloc a replay runs 1.19x as fast (docs/PERFORMANCE.md, issue 17 fifth sitting).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main().into()
}
