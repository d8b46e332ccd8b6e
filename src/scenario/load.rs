//! Reading scenario files: the entry points ([`load`], [`load_checked`], [`parse_str`],
//! [`discover`]) and what they check beyond the file itself ([`LoadOptions`]).
//!
//! The file is parsed with `toml_edit` (which keeps the byte span of every key and value) and
//! walked by hand (`reader` holds the walker, `sections` the scenario's tables), so that
//! every problem — syntax, unknown key, wrong type, bad name, missing cassette — is reported
//! with its file, line and column, and so that all problems in a file are reported together
//! rather than one per edit-run cycle.

use std::path::{Path, PathBuf};

use toml_edit::ImDocument;

use super::error::ScenarioError;
use super::reader::{Ctx, Tbl};
use super::schema::Scenario;

/// What to check beyond the file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Check that every cassette file exists (off for `record`, which creates them).
    pub check_cassettes: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            check_cassettes: true,
        }
    }
}

/// Load a scenario with the default [`LoadOptions`]: the file and its cassettes are checked.
/// Every problem in the file is returned, not just the first.
pub fn load_checked(path: &Path) -> Result<Scenario, Vec<ScenarioError>> {
    load(path, &LoadOptions::default())
}

/// Load and validate a scenario file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Scenario, Vec<ScenarioError>> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        vec![ScenarioError::whole_file(
            path,
            format!("cannot read scenario: {e}"),
        )]
    })?;
    parse_str(&src, path, opts)
}

/// Validate scenario text as if read from `path` (used for messages, the default name and
/// resolving cassettes).
pub fn parse_str(
    src: &str,
    path: &Path,
    opts: &LoadOptions,
) -> Result<Scenario, Vec<ScenarioError>> {
    let mut cx = Ctx::new(path, src);
    let doc = match ImDocument::parse(src) {
        Ok(doc) => doc,
        Err(e) => {
            let msg = e.message().trim().to_string();
            cx.error(e.span(), format!("TOML syntax error: {msg}"), None);
            return Err(cx.errors);
        }
    };
    let root = Tbl {
        t: doc.as_table(),
        name: "the top level".to_string(),
        span: None,
    };
    let scenario = cx.scenario(&root, opts);
    if cx.errors.is_empty() {
        Ok(scenario)
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.column));
        Err(cx.errors)
    }
}

/// Every `*.toml` file under `dir`, recursively, sorted. Hidden entries (names starting with
/// `.`) are skipped, and symbolic links to directories are not followed (no cycles). A
/// missing or unreadable directory is an error: a typo'd directory must not pass CI with zero
/// scenarios.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            ScenarioError::whole_file(&d, format!("cannot read scenario directory: {e}"))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                ScenarioError::whole_file(&d, format!("cannot read scenario directory: {e}"))
            })?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml")
                && (ft.is_file() || std::fs::metadata(&path).is_ok_and(|m| m.is_file()))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
