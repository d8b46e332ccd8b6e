//! The `tapeloop` binary: parses the command line and hands off to `cli`; the exit code is
//! [`tapeloop::exit::Exit`].

mod cli;

fn main() -> std::process::ExitCode {
    cli::main().into()
}
