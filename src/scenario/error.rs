//! Scenario errors: every problem names the file, the line and column, and where possible a
//! suggestion ("did you mean `retries`?").

use std::fmt;
use std::path::PathBuf;

/// One problem in a scenario file.
///
/// Displays as `unknown key `retires` in [expect] at scenarios/x.toml:14: did you mean
/// `retries`?`. `line`/`column` are 1-based; both are 0 for problems that are not at a
/// position (an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ScenarioError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to do instead, e.g. "did you mean `retries`?" or the list of valid names.
    pub suggestion: Option<String>,
}

impl ScenarioError {
    /// An error not tied to a position in the file.
    pub fn whole_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ScenarioError {
            path: path.into(),
            line: 0,
            column: 0,
            message: message.into(),
            suggestion: None,
        }
    }

    /// `path:line` (or just `path` without a position).
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.path.display().to_string()
        } else {
            format!("{}:{}", self.path.display(), self.line)
        }
    }

    fn render(&self) -> String {
        let mut s = format!("{} at {}", self.message, self.location());
        if let Some(hint) = &self.suggestion {
            s.push_str(": ");
            s.push_str(hint);
        }
        s
    }
}

/// Every problem found in one or more files; displays one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

impl From<Vec<ScenarioError>> for ScenarioErrors {
    fn from(v: Vec<ScenarioError>) -> Self {
        ScenarioErrors(v)
    }
}
