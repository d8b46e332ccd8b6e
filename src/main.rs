//! The `tapeloop` binary: parses the command line and hands off to `cli`; the exit code is
//! [`tapeloop::exit::Exit`].

mod cli;

/// mimalloc instead of the system allocator: the replay path and the server allocate many small,
/// short-lived buffers from two or more threads, which glibc's malloc serves several times
/// slower (docs/PERFORMANCE.md, issue 17 fifth sitting).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main().into()
}
