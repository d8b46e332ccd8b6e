//! The one column spec every tabular report draws from: the run table, Markdown, CSV, HTML and
//! both comparisons.
//!
//! A [`Column`] names a metric once — its stable name, headers, alignment, how to print it for
//! people and for machines, and the [`View`]s that show it. Deliberate differences between
//! formats are data here, not parallel lists: the terminal table joins cassette and provider
//! into one column to save width, HTML and the provider comparison split the cache classes,
//! and the report comparison shows the token total. Adding a metric is one entry.
//!
//! Names are stable (they are the CSV headers); `--columns a,b,c` selects by name (or header)
//! through [`select`], and the compact terminal default and `--wide` are views here.

use super::model::RunRecord;
use super::text::{doom_cell, format_ms, format_usd, retries_cell, NONE};

/// Where a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The compact terminal run table (`--format table`, the default).
    Compact,
    /// The wide terminal run table (`--wide`).
    Table,
    /// The Markdown run table.
    Markdown,
    /// The HTML run table.
    Html,
    /// CSV: every machine-readable field, under the column's `name`.
    Csv,
    /// One provider's column group in the provider comparison (the scenario is the row key).
    Providers,
    /// The metrics of the before/after report comparison (scenario and cassette are the key).
    Reports,
}

/// Cell alignment in aligned and Markdown tables (HTML marks right-aligned cells as numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A cell's meaning where formats can show it (terminal colour, Markdown emoji, HTML class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Bad,
}

/// One column of the run tables.
#[derive(Debug)]
pub struct Column {
    /// Stable machine name: the CSV header, and what a column selection would name.
    pub name: &'static str,
    /// Header for people.
    pub header: &'static str,
    /// Header where one group of columns repeats per provider, if shorter than `header`.
    pub short: Option<&'static str>,
    pub align: Align,
    /// The cell for people (unescaped; each format escapes).
    pub text: fn(&RunRecord) -> String,
    /// The machine value (CSV) when it differs from `text`.
    pub value: Option<fn(&RunRecord) -> String>,
    /// Meaning of the cell, for formats that mark it.
    pub tone: fn(&RunRecord) -> Tone,
    /// The views that show the column, in the order of [`COLUMNS`].
    pub views: &'static [View],
}

impl Column {
    /// The header in `view`.
    pub fn header_in(&self, view: View) -> &'static str {
        match (view, self.short) {
            (View::Csv, _) => self.name,
            // Terminal tables prefer the short header: width is what they lack.
            (View::Providers | View::Compact | View::Table, Some(short)) => short,
            _ => self.header,
        }
    }

    /// The cell in `view`: the machine value in CSV, the text for people elsewhere.
    pub fn cell_in(&self, view: View, r: &RunRecord) -> String {
        match (view, self.value) {
            (View::Csv, Some(value)) => value(r),
            _ => (self.text)(r),
        }
    }

    pub fn right(&self) -> bool {
        self.align == Align::Right
    }

    /// How readily a narrow terminal shortens the column's cells in the middle: 0 never
    /// (numbers, verdicts), then the highest rank first — the doom-loop cell, then provider,
    /// cassette and finish names, the scenario name last.
    pub fn shrink_rank(&self) -> u8 {
        match self.name {
            "doom_loop" => 3,
            "cassette" | "cassette_provider" | "provider" | "provider_api" | "model" | "finish" => {
                2
            }
            "scenario" => 1,
            _ => 0,
        }
    }
}

/// The columns named in `list` (comma-separated stable names, or headers such as `verdict`,
/// `calls`, `cost`), in the order given; an unknown name is an error that lists the names.
pub fn select(list: &str) -> Result<Vec<&'static Column>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let found = COLUMNS.iter().find(|c| c.name == name).or_else(|| {
            COLUMNS
                .iter()
                .find(|c| c.header == name || c.short == Some(name))
        });
        match found {
            Some(c) => out.push(c),
            None => {
                let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
                return Err(format!(
                    "unknown column `{name}`: expected some of {}",
                    names.join(", ")
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("--columns needs at least one column name".into());
    }
    Ok(out)
}

/// The columns `view` shows, in order.
pub fn columns(view: View) -> impl Iterator<Item = &'static Column> {
    COLUMNS.iter().filter(move |c| c.views.contains(&view))
}

/// The column names in CSV order (the CSV header row).
pub fn csv_header() -> Vec<&'static str> {
    columns(View::Csv).map(|c| c.name).collect()
}

use Align::{Left, Right};
use View::{Compact, Csv, Html, Markdown, Providers, Reports, Table};

/// Every view a tabular report of one run per row has.
const RUN_TABLES: &[View] = &[Compact, Table, Markdown, Html, Csv];
const EVERYWHERE: &[View] = &[Compact, Table, Markdown, Html, Csv, Providers, Reports];
const HUMAN: &[View] = &[Compact, Table, Markdown, Html, Providers, Reports];
/// Run tables and the report comparison (outcome metrics).
const OUTCOME: &[View] = &[Compact, Table, Markdown, Html, Csv, Reports];
/// The wide table and CSV (per-class token counts).
const TOKENS: &[View] = &[Table, Csv];
/// Where the two cache classes get a column each.
const CACHE: &[View] = &[Csv];

fn plain(_: &RunRecord) -> Tone {
    Tone::Plain
}

/// `openai/responses`, `google/gemini`, or just `anthropic` when provider and API share the
/// name: the provider, and which of its wire APIs (the `openai-` prefix dropped).
pub(crate) fn provider_api(r: &RunRecord) -> String {
    let api = r.api.as_str();
    if r.provider == api {
        r.provider.clone()
    } else {
        format!(
            "{}/{}",
            r.provider,
            api.strip_prefix("openai-").unwrap_or(api)
        )
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn opt_ms(v: Option<u64>) -> String {
    v.map(format_ms).unwrap_or_else(|| NONE.into())
}

/// A column with the defaults: no short header, no machine value, no tone.
const fn col(
    name: &'static str,
    header: &'static str,
    align: Align,
    text: fn(&RunRecord) -> String,
    views: &'static [View],
) -> Column {
    Column {
        name,
        header,
        short: None,
        align,
        text,
        value: None,
        tone: plain,
        views,
    }
}

/// A CSV-only column.
const fn csv(name: &'static str, value: fn(&RunRecord) -> String) -> Column {
    col(name, name, Left, value, &[Csv])
}

/// The spec, in display order for every view. Kept one column per line, like a table.
#[rustfmt::skip]
pub(crate) static COLUMNS: &[Column] = &[
    col("scenario", "scenario", Left, |r| r.scenario.clone(), RUN_TABLES),
    Column { value: Some(|r| r.cassette.clone()),
        ..col("cassette", "cassette", Left, |r| r.cassette_file().into(), &[Markdown, Csv]) },
    // The terminal table joins cassette and provider to save width.
    col("cassette_provider", "cassette (provider)", Left,
        |r| format!("{} ({})", r.cassette_file(), r.provider), &[Table]),
    csv("api", |r| r.api.as_str().to_string()),
    col("provider", "provider", Left, |r| r.provider.clone(), &[Csv]),
    // The compact views name provider and wire API, so two APIs of one provider stay apart.
    col("provider_api", "provider", Left, provider_api, &[Compact, Html]),
    col("model", "model", Left, |r| r.model.clone(), &[Csv]),
    Column { value: Some(|r| r.passed.to_string()),
        tone: |r| if r.passed { Tone::Good } else { Tone::Bad },
        ..col("passed", "verdict", Left, |r| (if r.passed { "PASS" } else { "FAIL" }).into(),
            OUTCOME) },
    col("finish", "finish", Left, |r| r.finish.as_str().to_string(), OUTCOME),
    col("steps", "steps", Right, |r| r.steps.to_string(), EVERYWHERE),
    Column { short: Some("calls"),
        ..col("tool_calls", "tool calls", Right, |r| r.tool_calls.to_string(), EVERYWHERE) },
    Column { short: Some("doom"), ..col("doom_loop", "doom loop", Left, doom_cell, HUMAN) },
    csv("doom_loop_step", |r| opt(r.doom_loop.as_ref().map(|d| d.step))),
    csv("doom_loop_tool", |r| opt(r.doom_loop.as_ref().map(|d| &d.tool))),
    csv("doom_loop_detector", |r| opt(r.doom_loop.as_ref().map(|d| &d.detector))),
    Column { value: Some(|r| r.retries.len().to_string()),
        ..col("retries", "retries", Right, retries_cell, EVERYWHERE) },
    csv("retry_wait_ms", |r| r.retry_wait_ms().to_string()),
    col("tokens_input", "in", Right, |r| r.tokens.input.to_string(), TOKENS),
    col("tokens_output", "out", Right, |r| r.tokens.output.to_string(), TOKENS),
    col("tokens_reasoning", "reasoning", Right, |r| r.tokens.reasoning.to_string(), TOKENS),
    // Narrow text tables show both cache classes in one column; HTML, CSV and the provider
    // comparison split them.
    col("cache", "cache r/w", Right,
        |r| format!("{}/{}", r.tokens.cache_read, r.tokens.cache_write), &[Table, Providers]),
    col("tokens_cache_read", "cache read", Right, |r| r.tokens.cache_read.to_string(), CACHE),
    col("tokens_cache_write", "cache write", Right, |r| r.tokens.cache_write.to_string(), CACHE),
    col("tokens_total", "tokens", Right, |r| r.tokens.total().to_string(),
        &[Markdown, Html, Csv, Providers, Reports]),
    Column { value: Some(|r| r.cost_usd.to_string()),
        ..col("cost_usd", "cost", Right, |r| format_usd(r.cost_usd), EVERYWHERE) },
    Column { value: Some(|r| r.sim_ms.to_string()),
        ..col("sim_ms", "sim", Right, |r| format_ms(r.sim_ms), &[Table, Html, Csv, Reports]) },
    Column { value: Some(|r| opt(r.ttft_ms)),
        ..col("ttft_ms", "ttft", Right, |r| opt_ms(r.ttft_ms), &[Csv, Providers]) },
    Column { value: Some(|r| opt(r.stream_ms)),
        ..col("stream_ms", "stream", Right, |r| opt_ms(r.stream_ms), &[Csv]) },
    csv("unused_interactions", |r| r.unused_interactions.to_string()),
    csv("truncated", |r| r.truncated.to_string()),
    csv("failures", |r| r.failures.join("; ")),
    csv("warnings", |r| r.warnings.join("; ")),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "two columns share a name");
    }

    #[test]
    fn compact_is_the_issue_15_set() {
        let names: Vec<&str> = columns(View::Compact).map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "scenario",
                "provider_api",
                "passed",
                "finish",
                "steps",
                "tool_calls",
                "doom_loop",
                "retries",
                "cost_usd"
            ]
        );
    }

    #[test]
    fn select_takes_names_and_headers_in_order() {
        let names: Vec<&str> = select("cost,scenario, verdict,calls")
            .unwrap()
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["cost_usd", "scenario", "passed", "tool_calls"]);
        assert!(select("bogus")
            .unwrap_err()
            .contains("unknown column `bogus`"));
        assert!(select(" , ").is_err());
    }

    #[test]
    fn every_column_shows_somewhere() {
        for c in COLUMNS {
            assert!(!c.views.is_empty(), "{} shows nowhere", c.name);
        }
    }
}
