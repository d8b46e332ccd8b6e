//! `tapeloop check`: validate cassettes and report every problem.

use std::path::{Path, PathBuf};

use tapeloop::cassette::{CassetteReader, Record};

use super::Status;

/// Problems shown per file; the rest are counted.
const MAX_SHOWN: usize = 50;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each problem is printed as `path:line: message`, then one summary line.
A cassette without a footer (cut short while recording) is a warning, not an error.

Examples:
  tapeloop check recordings/read-loop.openai.jsonl
  tapeloop check recordings/*.jsonl
  tapeloop check recordings/          every *.jsonl below the directory

Exit status: 0 every cassette is valid (warnings allowed), 2 a problem was found."
)]
pub struct Args {
    /// Cassette files (.jsonl), or directories searched for *.jsonl.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// The outcome for one file.
#[derive(Debug, Default)]
struct FileReport {
    problems: usize,
    truncated: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            collect_jsonl(p, &mut files);
        } else {
            files.push(p.clone());
        }
    }
    let (mut valid, mut invalid, mut truncated, mut problems) = (0, 0, 0, 0);
    for f in &files {
        let r = check_file(f);
        problems += r.problems;
        if r.problems > 0 {
            invalid += 1;
        } else {
            valid += 1;
        }
        if r.truncated {
            truncated += 1;
        }
    }
    let noun = |n: usize, s: &str| format!("{n} {s}{}", if n == 1 { "" } else { "s" });
    println!(
        "checked {}: {valid} valid, {invalid} invalid ({}), {truncated} truncated",
        noun(files.len(), "cassette"),
        noun(problems, "problem"),
    );
    Ok(if invalid == 0 && !files.is_empty() {
        Status::Pass
    } else {
        Status::Error
    })
}

fn check_file(path: &Path) -> FileReport {
    let mut report = FileReport::default();
    let mut reader = match CassetteReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            println!("{e}");
            report.problems = 1;
            return report;
        }
    };
    let mut interactions = 0u64;
    for item in reader.by_ref() {
        match item {
            Ok(Record::Interaction(_)) => interactions += 1,
            Ok(Record::Tool(_)) => {}
            Err(e) => {
                report.problems += 1;
                if report.problems <= MAX_SHOWN {
                    println!("{e}");
                }
                if e.is_fatal() {
                    break;
                }
            }
        }
    }
    if report.problems > MAX_SHOWN {
        println!(
            "{}: ... and {} more problems",
            path.display(),
            report.problems - MAX_SHOWN
        );
    }
    if let Some(t) = reader.truncation() {
        report.truncated = true;
        println!(
            "{}: warning: {t}; {interactions} complete interaction{} usable",
            path.display(),
            if interactions == 1 { "" } else { "s" }
        );
    }
    report
}

fn collect_jsonl(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.push(dir.to_path_buf()); // reported as unreadable by check_file
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_jsonl(&p, out);
        } else if p.extension().is_some_and(|e| e == "jsonl") {
            out.push(p);
        }
    }
}
