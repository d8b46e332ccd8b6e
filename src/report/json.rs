//! `--format json`: the report as FORMATS.md specifies it, pretty-printed.

use super::model::RunReport;

pub(crate) fn render(report: &RunReport) -> String {
    report.to_json()
}
