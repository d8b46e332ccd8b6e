//! Side-by-side comparisons: providers within one report, and two reports against each other.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use indexmap::IndexMap;

use super::model::{RunRecord, RunReport};
use super::text::{
    doom_cell, format_ms, format_usd, md_escape, md_table, retries_cell, Cell, Grid, BOLD, DIM,
    GREEN, NONE, RED, YELLOW,
};

/// How comparison tables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned terminal text; ANSI highlighting when `color`.
    Table { color: bool },
    /// GitHub-flavoured Markdown; changes in `**bold**`.
    Markdown,
}

const PROVIDER_METRICS: &[&str] = &[
    "steps",
    "calls",
    "doom loop",
    "retries",
    "in",
    "out",
    "reasoning",
    "cache read",
    "cache write",
    "cost",
    "ttft",
    "stream",
];

fn provider_cells(r: &RunRecord) -> Vec<String> {
    vec![
        r.steps.to_string(),
        r.tool_calls.to_string(),
        doom_cell(r),
        retries_cell(r),
        r.tokens.input.to_string(),
        r.tokens.output.to_string(),
        r.tokens.reasoning.to_string(),
        r.tokens.cache_read.to_string(),
        r.tokens.cache_write.to_string(),
        format_usd(r.cost_usd),
        r.ttft_ms.map(format_ms).unwrap_or_else(|| NONE.into()),
        r.stream_ms.map(format_ms).unwrap_or_else(|| NONE.into()),
    ]
}

/// Provider comparison: for every scenario replayed against several cassettes, one row per
/// scenario with a column group per provider (named by `provider`; by `provider/model` when a
/// scenario has two runs of one provider; by cassette file name when even that repeats).
/// Each group shows steps, tool calls, doom loop, retries, the five token classes, cost, time
/// to first token and recorded stream duration.
pub fn compare_providers(report: &RunReport, style: Style) -> String {
    let mut by_scenario: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in &report.runs {
        by_scenario.entry(&r.scenario).or_default().push(r);
    }
    by_scenario.retain(|_, runs| runs.len() > 1);
    if by_scenario.is_empty() {
        return "no scenario was replayed against more than one cassette: nothing to compare\n"
            .to_string();
    }
    let keyers: [fn(&RunRecord) -> String; 3] = [
        |r| r.provider.clone(),
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
    let mut groups: IndexMap<String, ()> = IndexMap::new();
    for runs in by_scenario.values() {
        for r in runs {
            groups.insert(key(r), ());
        }
    }
    let m = PROVIDER_METRICS.len();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (scenario, runs) in &by_scenario {
        let mut row = vec![scenario.to_string()];
        for group in groups.keys() {
            match runs.iter().find(|r| &key(r) == group) {
                Some(r) => row.extend(provider_cells(r)),
                None => row.extend(std::iter::repeat_n(NONE.to_string(), m)),
            }
        }
        rows.push(row);
    }
    let mut right = vec![false];
    for _ in groups.keys() {
        right.extend([
            true, true, false, true, true, true, true, true, true, true, true, true,
        ]);
    }
    match style {
        Style::Table { color } => {
            let mut headers = vec!["scenario".to_string()];
            let mut group_line = vec![(String::new(), 1)];
            for g in groups.keys() {
                headers.extend(PROVIDER_METRICS.iter().map(|s| s.to_string()));
                group_line.push((g.clone(), m));
            }
            Grid {
                headers,
                right,
                rows: rows
                    .into_iter()
                    .map(|r| r.into_iter().map(Cell::plain).collect())
                    .collect(),
                groups: group_line,
            }
            .render(color)
        }
        Style::Markdown => {
            let mut headers = vec!["scenario".to_string()];
            for g in groups.keys() {
                let g = md_escape(g);
                headers.extend(PROVIDER_METRICS.iter().map(|s| format!("{g} {s}")));
            }
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| r.iter().map(|c| md_escape(c)).collect())
                .collect();
            md_table(&headers, &right, &rows)
        }
    }
}

const REPORT_METRICS: &[&str] = &[
    "verdict",
    "finish",
    "steps",
    "tool calls",
    "doom loop",
    "retries",
    "tokens",
    "cost",
    "sim",
];

fn report_cells(r: &RunRecord) -> Vec<String> {
    vec![
        if r.passed { "PASS" } else { "FAIL" }.to_string(),
        r.finish.to_string(),
        r.steps.to_string(),
        r.tool_calls.to_string(),
        doom_cell(r),
        retries_cell(r),
        r.tokens.total().to_string(),
        format_usd(r.cost_usd),
        format_ms(r.sim_ms),
    ]
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
                let (o, n) = (report_cells(old), report_cells(new));
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
                (
                    "new",
                    report_cells(new).into_iter().map(|c| (c, true)).collect(),
                )
            }
            (Some(old), None) => {
                removed += 1;
                (
                    "removed",
                    report_cells(old).into_iter().map(|c| (c, false)).collect(),
                )
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
    headers.extend(REPORT_METRICS.iter().map(|s| s.to_string()));
    let right: Vec<bool> = (0..headers.len())
        .map(|i| matches!(i, 5 | 6 | 8 | 9 | 10 | 11))
        .collect();
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
        let color = matches!(style, Style::Table { color: true });
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
        let mut out = Grid {
            headers,
            right,
            rows,
            groups: Vec::new(),
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
