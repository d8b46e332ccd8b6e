//! `--format csv`: one row per run with a header row; token fields flattened, failures joined
//! with `; `, optional values empty. The columns are the CSV view of the column spec.

use super::columns::{columns, csv_header, View};
use super::model::RunReport;

pub(crate) fn render(report: &RunReport) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    // Writing into a Vec cannot fail except on invariant violations (wrong field count), which
    // one column list for header and rows rules out; errors are ignored rather than panicking.
    let _ = w.write_record(csv_header());
    for r in &report.runs {
        let _ = w.write_record(columns(View::Csv).map(|c| c.cell_in(View::Csv, r)));
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}
