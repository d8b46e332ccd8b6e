//! `tapeloop check`: validate cassettes and scenarios and report every problem.

use std::path::{Path, PathBuf};

use tapeloop::cassette::{
    rewrite_footer, CassetteError, CassetteReader, ErrorKind, FooterHash, Record, Rewrite,
};
use tapeloop::exit::Exit;
use tapeloop::scenario::{self, ScenarioError};

/// Problems shown per file; the rest are counted.
const MAX_SHOWN: usize = 50;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Cassette problems are printed as `path:line: message`, scenario problems as
`path:line:col: message` followed by a `help:` line when there is a suggestion; then one
summary line per kind of file. A cassette without a footer (cut short while recording) is a
warning, not an error. A cassette whose footer carries the older `sha256` instead of `blake3`
is valid and gets a note; --rewrite-footer replaces such a footer with a `blake3` one in place,
after checking the whole cassette (its old hash included), and leaves every other byte as it
was. A scenario is checked exactly as `tapeloop run` loads it: unknown keys,
types, names, and that its cassettes exist.

Examples:
  tapeloop check scenarios/ recordings/   every scenario and cassette
  tapeloop check scenarios/doom-cycle.toml
  tapeloop check recordings/*.jsonl
  tapeloop check recordings/              every *.jsonl (and *.toml) below the directory
  cp tests/fixtures/cassettes/read-loop.openai.jsonl /tmp/old.jsonl
  tapeloop check --rewrite-footer /tmp/old.jsonl   its sha256 footer becomes blake3

Exit status: 0 every file is valid (warnings allowed), 2 a problem was found."
)]
pub struct Args {
    /// Cassettes (.jsonl), scenarios (.toml), or directories searched for both.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Replace the older `sha256` footer of every valid cassette with a `blake3` one, in place.
    #[arg(long)]
    pub rewrite_footer: bool,
}

fn is_scenario(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "toml")
}

/// The outcome for one file.
#[derive(Debug, Default)]
struct FileReport {
    problems: usize,
    truncated: bool,
    /// The footer's hash, when the cassette has a footer with one.
    hash: Option<FooterHash>,
    rewritten: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut files = Vec::new();
    let mut scenarios = Vec::new();
    let mut scenario_problems = 0;
    for p in &args.paths {
        if p.is_dir() {
            collect_jsonl(p, &mut files);
            match scenario::discover(p) {
                Ok(found) => scenarios.extend(found),
                Err(e) => {
                    print_scenario_error(&e);
                    scenario_problems += 1;
                }
            }
        } else if is_scenario(p) {
            scenarios.push(p.clone());
        } else {
            files.push(p.clone());
        }
    }
    let (mut sc_valid, mut sc_invalid) = (0, 0);
    for s in &scenarios {
        match scenario::load_checked(s) {
            Ok(_) => sc_valid += 1,
            Err(errors) => {
                sc_invalid += 1;
                scenario_problems += errors.len();
                for e in errors.iter().take(MAX_SHOWN) {
                    print_scenario_error(e);
                }
                if errors.len() > MAX_SHOWN {
                    println!(
                        "{}: ... and {} more problems",
                        s.display(),
                        errors.len() - MAX_SHOWN
                    );
                }
            }
        }
    }
    let (mut valid, mut invalid, mut truncated, mut problems) = (0, 0, 0, 0);
    let (mut blake3, mut sha256, mut rewritten) = (0, 0, 0);
    for f in &files {
        let mut r = check_file(f);
        if r.hash == Some(FooterHash::Sha256) {
            if args.rewrite_footer {
                rewrite(f, &mut r);
            } else {
                println!(
                    "{}: note: sha256 footer (the older form); \
                     `tapeloop check --rewrite-footer` rewrites it as blake3",
                    f.display()
                );
            }
        }
        match r.hash {
            Some(FooterHash::Blake3) => blake3 += 1,
            Some(FooterHash::Sha256) => sha256 += 1,
            None => {}
        }
        rewritten += usize::from(r.rewritten);
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
    let checked_scenarios = !scenarios.is_empty() || scenario_problems > 0;
    if !files.is_empty() || !checked_scenarios {
        println!(
            "checked {}: {valid} valid, {invalid} invalid ({}), {truncated} truncated",
            noun(files.len(), "cassette"),
            noun(problems, "problem"),
        );
        if blake3 + sha256 > 0 {
            let done = match rewritten {
                0 => String::new(),
                n => format!(" ({n} rewritten from sha256)"),
            };
            println!("footer hash: {blake3} blake3{done}, {sha256} sha256");
        }
    }
    if checked_scenarios {
        println!(
            "checked {}: {sc_valid} valid, {sc_invalid} invalid ({})",
            noun(scenarios.len(), "scenario"),
            noun(scenario_problems, "problem"),
        );
    }
    let nothing = files.is_empty() && scenarios.is_empty();
    Ok(if invalid == 0 && scenario_problems == 0 && !nothing {
        Exit::Pass
    } else {
        Exit::Error
    })
}

/// `path:line:col: message`, then `  help: suggestion` when there is one.
fn print_scenario_error(e: &ScenarioError) {
    if e.line == 0 {
        println!("{}: {}", e.path.display(), e.message);
    } else {
        println!(
            "{}:{}:{}: {}",
            e.path.display(),
            e.line,
            e.column,
            e.message
        );
    }
    if let Some(hint) = &e.suggestion {
        println!("  help: {hint}");
    }
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
    let api = reader.header().api;
    let problem = |report: &mut FileReport, e: CassetteError| {
        report.problems += 1;
        if report.problems <= MAX_SHOWN {
            println!("{e}");
        }
    };
    for item in reader.by_ref() {
        match item {
            Ok(Record::Interaction(i)) => {
                interactions += 1;
                // What `run` refuses: a response that cannot be decoded within the limits.
                if let Err(error) = i.check_decodable(api) {
                    let kind = ErrorKind::Undecodable { id: i.id, error };
                    problem(&mut report, CassetteError::at(path, None, kind));
                }
            }
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
    if interactions == 0 && report.problems == 0 {
        // `run` refuses a cassette with nothing to replay.
        problem(
            &mut report,
            CassetteError::at(path, None, ErrorKind::NoInteractions),
        );
    }
    if report.problems == 0 {
        report.hash = reader.footer().and_then(|f| f.hash()).map(|(kind, _)| kind);
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

/// Rewrite `path`'s sha256 footer as blake3 and record the outcome in `report`.
fn rewrite(path: &Path, report: &mut FileReport) {
    match rewrite_footer(path) {
        Ok(Rewrite::Rewritten) => {
            println!("{}: footer rewritten: sha256 -> blake3", path.display());
            report.hash = Some(FooterHash::Blake3);
            report.rewritten = true;
        }
        Ok(Rewrite::AlreadyBlake3) => report.hash = Some(FooterHash::Blake3),
        Ok(Rewrite::Truncated) => {}
        Err(e) => {
            println!("{e}");
            report.problems += 1;
        }
    }
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
