//! Side-by-side comparisons: providers within one report, and two reports against each other.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::columns::{columns, provider_api, View};
use super::model::{RunRecord, RunReport};
use super::text::{md_escape, md_table, Cell, Grid, BOLD, DIM, GREEN, RED, YELLOW};

/// How comparison tables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned terminal text fitted to `width` columns; ANSI highlighting when `color`.
    Table { color: bool, width: usize },
    /// GitHub-flavoured Markdown; changes in `**bold**`.
    Markdown,
}

/// The cells of one run in `view`.
fn cells(view: View, r: &RunRecord) -> Vec<String> {
    columns(view).map(|c| c.cell_in(view, r)).collect()
}

/// The scenarios replayed against more than one cassette, each with its runs and the name
/// that tells its providers apart: `provider`; `provider/api` (`openai/responses`) when a
/// scenario has two APIs of one provider; `provider/model` when a scenario has two runs of
/// one provider; the cassette file name when even that repeats.
pub(crate) fn provider_groups(report: &RunReport) -> Vec<(&str, Vec<(String, &RunRecord)>)> {
    let mut by_scenario: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in &report.runs {
        by_scenario.entry(&r.scenario).or_default().push(r);
    }
    by_scenario.retain(|_, runs| runs.len() > 1);
    let keyers: [fn(&RunRecord) -> String; 4] = [
        |r| r.provider.clone(),
        provider_api,
        |r| format!("{}/{}", r.provider, r.model),
        |r| r.cassette_file().to_string(),
    ];
    let unique = |key: &fn(&RunRecord) -> String| {
        by_scenario.values().all(|runs| {
            let keys: HashSet<String> = runs.iter().map(|r| key(r)).collect();
            keys.len() == runs.len()
        })
    };
    let key = keyers
        .iter()
        .find(|k| unique(k))
        .copied()
        .unwrap_or(|r: &RunRecord| r.cassette.clone());
    by_scenario
        .into_iter()
        .map(|(scenario, runs)| (scenario, runs.into_iter().map(|r| (key(r), r)).collect()))
        .collect()
}

/// What the comparisons say when no scenario has two cassettes.
pub(crate) const NOTHING_TO_COMPARE: &str =
    "no scenario was replayed against more than one cassette: nothing to compare\n";

/// Provider comparison in long format: for every scenario replayed against several cassettes,
/// one row per provider (named as [`provider_groups`] says), grouped by scenario — the scenario
/// is named on its first row. Each row shows steps, tool calls, doom loop, retries, tokens,
/// cache read/write, cost and time to first token. Fits any width: the rows do not grow with
/// the number of providers.
pub fn compare_providers(report: &RunReport, style: Style) -> String {
    let groups = provider_groups(report);
    if groups.is_empty() {
        return NOTHING_TO_COMPARE.to_string();
    }
    let view = View::Providers;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (scenario, runs) in &groups {
        for (i, (key, r)) in runs.iter().enumerate() {
            let name = if i == 0 {
                scenario.to_string()
            } else {
                String::new()
            };
            let mut row = vec![name, key.clone()];
            row.extend(cells(view, r));
            rows.push(row);
        }
    }
    let mut headers = vec!["scenario".to_string(), "provider".to_string()];
    headers.extend(columns(view).map(|c| c.header_in(view).to_string()));
    let mut right = vec![false, false];
    right.extend(columns(view).map(|c| c.right()));
    match style {
        Style::Table { color, width } => {
            let mut shrink = vec![2, 4];
            shrink.extend(columns(view).map(|c| c.shrink_rank()));
            Grid {
                headers,
                right,
                shrink,
                width: Some(width),
                rows: rows
                    .into_iter()
                    .map(|r| r.into_iter().map(Cell::plain).collect())
                    .collect(),
                ..Grid::default()
            }
            .render(color)
        }
        Style::Markdown => {
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| r.iter().map(|c| md_escape(c)).collect())
                .collect();
            md_table(&headers, &right, &rows)
        }
    }
}

/// (change, scenario, cassette file, [(cell text, highlighted)]).
type DiffRow = (String, String, String, Vec<(String, bool)>);

/// Two reports side by side per scenario × cassette (sorted): unchanged values plain, changed
/// ones as `before → after`, highlighted (ANSI bold yellow, or `**bold**` in Markdown). Runs
/// only in one report are marked `new` or `removed`. Ends with a count line.
pub fn compare_reports(before: &RunReport, after: &RunReport, style: Style) -> String {
    let index = |rep: &RunReport| -> BTreeMap<(String, String), RunRecord> {
        rep.runs
            .iter()
            .map(|r| ((r.scenario.clone(), r.cassette.clone()), r.clone()))
            .collect()
    };
    let (b, a) = (index(before), index(after));
    let keys: BTreeSet<&(String, String)> = b.keys().chain(a.keys()).collect();
    let markdown = style == Style::Markdown;
    // A run in one report only: its cells, all highlighted (new) or none (removed).
    let one_sided = |r: &RunRecord, hi: bool| -> Vec<(String, bool)> {
        cells(View::Reports, r)
            .into_iter()
            .map(|c| (c, hi))
            .collect()
    };
    let (mut changed, mut same, mut added, mut removed) = (0, 0, 0, 0);
    let mut rows: Vec<DiffRow> = Vec::new();
    for key in keys {
        let file = key
            .1
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&key.1)
            .to_string();
        let (change, cells) = match (b.get(key), a.get(key)) {
            (Some(old), Some(new)) => {
                let (o, n) = (cells(View::Reports, old), cells(View::Reports, new));
                let cells: Vec<(String, bool)> = o
                    .into_iter()
                    .zip(n)
                    .map(|(o, n)| {
                        if o == n {
                            (o, false)
                        } else {
                            (format!("{o} → {n}"), true)
                        }
                    })
                    .collect();
                if cells.iter().any(|c| c.1) {
                    changed += 1;
                    ("changed", cells)
                } else {
                    same += 1;
                    ("", cells)
                }
            }
            (None, Some(new)) => {
                added += 1;
                ("new", one_sided(new, true))
            }
            (Some(old), None) => {
                removed += 1;
                ("removed", one_sided(old, false))
            }
            (None, None) => continue,
        };
        rows.push((change.to_string(), key.0.clone(), file, cells));
    }
    let summary = format!("{changed} changed, {same} unchanged, {added} new, {removed} removed\n");
    let mut headers = vec![
        "scenario".to_string(),
        "cassette".to_string(),
        "change".to_string(),
    ];
    let mut right = vec![false; headers.len()];
    headers.extend(columns(View::Reports).map(|c| c.header.to_string()));
    right.extend(columns(View::Reports).map(|c| c.right()));
    if markdown {
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|(change, scenario, file, cells)| {
                let mut row = vec![md_escape(&scenario), md_escape(&file), change];
                row.extend(cells.into_iter().map(|(text, hi)| {
                    let text = md_escape(&text);
                    if hi {
                        format!("**{text}**")
                    } else {
                        text
                    }
                }));
                row
            })
            .collect();
        let mut out = md_table(&headers, &right, &rows);
        out.push('\n');
        out.push_str(&summary);
        out
    } else {
        let (color, width) = match style {
            Style::Table { color, width } => (color, width),
            Style::Markdown => (false, usize::MAX),
        };
        let rows: Vec<Vec<Cell>> = rows
            .into_iter()
            .map(|(change, scenario, file, cells)| {
                let change_style = match change.as_str() {
                    "new" => GREEN,
                    "removed" => RED,
                    "changed" => YELLOW,
                    _ => DIM,
                };
                let mut row = vec![
                    Cell::plain(scenario),
                    Cell::plain(file),
                    Cell::styled(change, change_style),
                ];
                row.extend(cells.into_iter().map(|(text, hi)| {
                    if hi {
                        Cell::styled(text, YELLOW)
                    } else {
                        Cell::plain(text)
                    }
                }));
                row
            })
            .collect();
        // Only the names shrink: a changed value `a → b` must stay whole.
        let mut shrink = vec![2, 4, 0];
        shrink.extend(columns(View::Reports).map(|_| 0));
        let mut out = Grid {
            headers,
            right,
            rows,
            shrink,
            width: Some(width),
            ..Grid::default()
        }
        .render(color);
        out.push('\n');
        if color {
            out.push_str(&format!("{BOLD}{}\x1b[0m\n", summary.trim_end()));
        } else {
            out.push_str(&summary);
        }
        out
    }
}
