//! Placeholder for subcommands that later work fills in: they say so and exit 2.

use super::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(name: &str) -> anyhow::Result<Status> {
    eprintln!("error: `tapeloop {name}` is not yet available in this version");
    Ok(Status::Error)
}
