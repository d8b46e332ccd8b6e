//! Run reports: the model (FORMATS.md "Run report"), every output format, baselines,
//! comparisons, and merging of sharded runs.
//!
//! Everything here works on plain data ([`RunReport`], [`RunRecord`]); nothing runs scenarios.
//! Renderers are pure functions of the report, so identical reports render identically (the
//! only nondeterministic input is the optional `wall_ms`).

pub mod baseline;
mod columns;
pub mod compare;
mod csv;
mod findings;
mod html;
mod html_compare;
mod html_run;
mod json;
mod junit;
mod markdown;
pub mod merge;
pub mod model;
mod table;
mod text;
pub mod trace;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use baseline::{
    compare_to_baseline, load_baseline, save_baseline, Regression, RegressionRules, Threshold,
    DEFAULT_BASELINE_DIR,
};
pub use columns::csv_header;
pub use compare::{compare_providers, compare_reports, Style};
pub use findings::{Finding, FindingKind};
pub use html_compare::compare_providers_html;
pub use merge::{merge, partition_index, Partition};
pub use model::{
    DetectorResult, DoomLoopHit, Finish, RetryRecord, RunRecord, RunReport, StepDetail, Summary,
    FINISH_REASONS, REPORT_FORMAT,
};
pub use trace::{AttemptTrace, RunTrace, ToolCallTrace};

/// Errors reading, writing or combining reports. Each names its file (or origin) and, for
/// JSON, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: not a valid run report: {message}")]
    Json {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: unsupported report format {found}: this tapeloop reads format 1")]
    UnsupportedFormat { origin: String, found: String },
    #[error("baseline name `{0}` is not allowed: use letters, digits, `.`, `_` and `-` (not starting with `.`)")]
    BadBaselineName(String),
    #[error("cannot merge: {0}")]
    Merge(String),
}

/// An output format for [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Aligned terminal table with failures and a summary line.
    Table,
    /// Pretty JSON, FORMATS.md "Run report".
    Json,
    /// One row per run, with a header row.
    Csv,
    /// JUnit XML for CI test result views.
    Junit,
    /// A GitHub-flavoured Markdown table and failure list.
    Markdown,
    /// A single self-contained HTML page.
    Html,
}

/// The names of [`Format`]s.
pub const FORMATS: &[&str] = &["table", "json", "csv", "junit", "markdown", "html"];

impl Format {
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Junit => "junit",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "table" => Format::Table,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "junit" => Format::Junit,
            "markdown" | "md" => Format::Markdown,
            "html" => Format::Html,
            _ => {
                return Err(format!(
                    "unknown report format `{s}`: expected one of {}",
                    FORMATS.join(", ")
                ))
            }
        })
    }
}

/// The terminal width assumed when none is known (output piped, no `COLUMNS`).
pub const DEFAULT_WIDTH: usize = 100;

/// Which columns the terminal table shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Columns {
    /// scenario, provider, verdict, finish, steps, calls, doom, retries, cost.
    #[default]
    Compact,
    /// Every metric the terminal table has (`--wide`).
    Wide,
    /// Chosen by name (`--columns a,b,c`), checked by [`Columns::parse`].
    Named(Vec<&'static str>),
}

impl Columns {
    /// `--columns a,b,c`: stable names (the CSV headers) or headers such as `verdict`, `cost`.
    pub fn parse(list: &str) -> Result<Columns, String> {
        Ok(Columns::Named(
            columns::select(list)?.iter().map(|c| c.name).collect(),
        ))
    }

    fn resolve(&self) -> Vec<&'static columns::Column> {
        match self {
            Columns::Compact => columns::columns(columns::View::Compact).collect(),
            Columns::Wide => columns::columns(columns::View::Table).collect(),
            Columns::Named(names) => columns::select(&names.join(","))
                .unwrap_or_else(|_| columns::columns(columns::View::Compact).collect()),
        }
    }
}

/// How a report is rendered, beyond its format. The default is what [`render`] uses.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// ANSI colour in the terminal table (the CLI decides it from `NO_COLOR` and the TTY).
    pub color: bool,
    /// The width the terminal table fits; [`DEFAULT_WIDTH`] when `None`.
    pub width: Option<usize>,
    /// The terminal table's columns.
    pub columns: Columns,
    /// Regressions against a baseline: the HTML report shows them first.
    pub regressions: Vec<Regression>,
    /// Show wall-clock time in the HTML report. Off by default: the same input then renders
    /// byte for byte the same.
    pub wall_time: bool,
}

impl RenderOptions {
    fn width(&self) -> usize {
        self.width.unwrap_or(DEFAULT_WIDTH)
    }
}

/// Render a report with default options but `color`, which enables ANSI escapes in the table
/// format only; every other format ignores it.
pub fn render(report: &RunReport, format: Format, color: bool) -> String {
    render_with(
        report,
        format,
        &RenderOptions {
            color,
            ..RenderOptions::default()
        },
    )
}

/// Render a report with [`RenderOptions`].
pub fn render_with(report: &RunReport, format: Format, opts: &RenderOptions) -> String {
    match format {
        Format::Table => table::render(report, opts),
        Format::Json => json::render(report),
        Format::Csv => csv::render(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report, opts),
    }
}
