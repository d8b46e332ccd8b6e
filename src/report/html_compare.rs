//! `compare --format html`: for each scenario replayed against several cassettes, its
//! providers side by side as bars — steps, tokens, cost, time to first token — each metric
//! scaled to its largest provider. The same self-contained page as the run report.

use super::compare::{provider_groups, NOTHING_TO_COMPARE};
use super::html::{head, run_id};
use super::model::{RunRecord, RunReport};
use super::text::{format_ms, format_usd, html_escape, NONE};

/// A compared metric: its label, its value and how it prints.
type Metric = (
    &'static str,
    fn(&RunRecord) -> Option<f64>,
    fn(f64) -> String,
);

const METRICS: [Metric; 4] = [
    ("steps", |r| Some(r.steps as f64), |v| format!("{v}")),
    (
        "tokens",
        |r| Some(r.tokens.total() as f64),
        |v| format!("{v}"),
    ),
    ("cost", |r| Some(r.cost_usd), format_usd),
    (
        "time to first token",
        |r| r.ttft_ms.map(|t| t as f64),
        |v| format_ms(v as u64),
    ),
];

/// The provider comparison page.
pub fn compare_providers_html(report: &RunReport) -> String {
    let groups = provider_groups(report);
    let mut out = head("tapeloop: providers compared");
    out.push_str("<h1>Providers compared<small>steps, tokens, cost and time to first token per scenario</small></h1>\n");
    if groups.is_empty() {
        out.push_str(&format!(
            "<p>{}</p>\n",
            html_escape(NOTHING_TO_COMPARE.trim_end())
        ));
    }
    out.push_str("<div class=\"cmp\">\n");
    for (scenario, runs) in &groups {
        out.push_str(&format!(
            "<section data-scenario=\"{}\"><h2>{}</h2>\n",
            html_escape(scenario),
            html_escape(scenario)
        ));
        for (label, value, print) in METRICS {
            let max = runs
                .iter()
                .filter_map(|(_, r)| value(r))
                .fold(0.0, f64::max);
            out.push_str(&format!("<div class=\"metric\"><h3>{label}</h3>"));
            for (key, r) in runs {
                let (width, text) = match value(r) {
                    Some(v) if max > 0.0 => (v * 100.0 / max, print(v)),
                    Some(v) => (0.0, print(v)),
                    None => (0.0, NONE.to_string()),
                };
                out.push_str(&format!(
                    "<span class=\"k\" data-run=\"{}\" title=\"{}\">{}</span><span><span class=\"b\" style=\"display:block;width:{width:.1}%\"></span></span><span class=\"v\">{}</span>",
                    html_escape(&run_id(r)),
                    html_escape(&r.cassette),
                    html_escape(key),
                    html_escape(&text)
                ));
            }
            out.push_str("</div>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</div>\n</body>\n</html>\n");
    out
}
