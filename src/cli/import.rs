//! `tapeloop import`: convert vcrpy YAML cassettes into tapeloop cassettes.

use std::path::PathBuf;

use anyhow::{bail, Context};

use tapeloop::cassette::import::import_file;
use tapeloop::exit::Exit;

use super::common::files_below;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "vcrpy keeps neither the real chunking nor the timing of a stream: bodies are
split at SSE event boundaries and `ms` offsets are synthetic (the header says
`timing: \"synthetic\"`). Tool results are recovered from each next request's
history. Requests that are no model call (a model-metadata GET) are skipped with a
note. Secrets are redacted as in any recording. An existing output is never
overwritten without --force.

Examples:
  tapeloop import tests/fixtures/provider-streams/cassettes/mirascope \\
      -o /tmp/tapeloop-import --force
      every *.yaml below the directory, written under /tmp/tapeloop-import/mirascope/
  tapeloop import tests/fixtures/provider-streams/cassettes/ -o /tmp/tapeloop-import --force
      all 56 bundled vcrpy cassettes (one model-metadata GET is skipped with a note)
Without -o, each cassette is written next to its input with the extension .jsonl."
)]
pub struct Args {
    /// vcrpy YAML cassettes, or directories (every *.yaml / *.yml below them).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output: a .jsonl file for one input file, else a directory (created) that mirrors the
    /// inputs' names [default: next to each input, with `.jsonl`].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

/// (input, output) pairs for the arguments.
fn plan(args: &Args) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    // (file, its name relative to what was given)
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let found = files_below(input, &["yaml", "yml"])?;
            if found.is_empty() {
                bail!(
                    "{}: no *.yaml cassettes below this directory",
                    input.display()
                );
            }
            let base = input.file_name().map(PathBuf::from).unwrap_or_default();
            for f in found {
                let rel = base.join(f.strip_prefix(input).unwrap_or(&f));
                files.push((f, rel));
            }
        } else if input.exists() {
            let name = PathBuf::from(input.file_name().unwrap_or_default());
            files.push((input.clone(), name));
        } else {
            bail!("{}: no such file or directory", input.display());
        }
    }
    let single_file = files.len() == 1 && !args.inputs[0].is_dir();
    let mut pairs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (file, rel) in files {
        let out = match &args.output {
            Some(o) if single_file && o.extension().is_some_and(|e| e == "jsonl") => o.clone(),
            Some(o) => o.join(rel).with_extension("jsonl"),
            None => file.with_extension("jsonl"),
        };
        if out == file {
            bail!(
                "{}: the output would overwrite the input; pass -o OUT.jsonl",
                file.display()
            );
        }
        if let Some((other, _)) = pairs.iter().find(|(_, o)| *o == out) {
            bail!(
                "{} and {} would both be written to {}; pass -o DIR",
                other.display(),
                file.display(),
                out.display()
            );
        }
        pairs.push((file, out));
    }
    Ok(pairs)
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let pairs = plan(&args)?;
    if !args.force {
        let existing: Vec<String> = pairs
            .iter()
            .filter(|(_, o)| o.exists())
            .map(|(_, o)| o.display().to_string())
            .collect();
        if let Some(first) = existing.first() {
            let more = match existing.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            bail!("{first}{more} already exists; nothing was written (pass --force to overwrite)");
        }
    }
    let mut failed = 0;
    for (input, output) in &pairs {
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let imported = match import_file(input, output) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let h = &imported.header;
        eprintln!(
            "imported {} interactions and {} tool results from {} -> {} ({}, {}, {})",
            imported.interactions().count(),
            imported.tools().count(),
            input.display(),
            output.display(),
            h.api,
            h.provider.as_deref().unwrap_or("?"),
            h.model.as_deref().unwrap_or("?"),
        );
        for s in &imported.skipped {
            eprintln!("  note: skipped {s}: not a model call");
        }
    }
    if pairs.len() > 1 {
        eprintln!(
            "{} of {} cassettes imported",
            pairs.len() - failed,
            pairs.len()
        );
    }
    Ok(if failed > 0 { Exit::Error } else { Exit::Pass })
}
