//! The findings of a report: every failure and warning, in the one order every format lists
//! them (all failures in run order, then all warnings in run order).

use super::model::{RunRecord, RunReport};

/// What the terminal table and JUnit say for a failed run without a failure message.
pub(crate) const UNEXPLAINED: &str = "failed (no expectation message recorded)";

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A failed expectation (the run failed).
    Failure,
    /// A non-fatal problem, e.g. a tool call nothing could answer.
    Warning,
}

impl FindingKind {
    /// In listing order.
    pub const ALL: [FindingKind; 2] = [FindingKind::Failure, FindingKind::Warning];

    /// Section title: `Failures`, `Warnings`.
    pub fn title(self) -> &'static str {
        match self {
            FindingKind::Failure => "Failures",
            FindingKind::Warning => "Warnings",
        }
    }
}

/// One failure or warning of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding<'a> {
    pub run: &'a RunRecord,
    pub kind: FindingKind,
    /// The message; `None` for a failed run that recorded no failure message (each format
    /// says "failed" in its own words).
    pub message: Option<&'a str>,
}

impl Finding<'_> {
    /// `label: message` with both escaped for the target format; `unexplained` stands in for
    /// a missing message.
    pub(crate) fn line(&self, escape: fn(&str) -> String, unexplained: &str) -> String {
        format!(
            "{}: {}",
            escape(&self.run.label()),
            escape(self.message.unwrap_or(unexplained))
        )
    }
}

impl RunRecord {
    /// This run's findings of one kind: its failure messages (or one message-less failure when
    /// it failed without any), or its warnings.
    pub fn findings(&self, kind: FindingKind) -> impl Iterator<Item = Finding<'_>> {
        let messages: &[String] = match kind {
            FindingKind::Failure if self.passed => &[],
            FindingKind::Failure => &self.failures,
            FindingKind::Warning => &self.warnings,
        };
        let unexplained = kind == FindingKind::Failure && !self.passed && messages.is_empty();
        let finding = move |message| Finding {
            run: self,
            kind,
            message,
        };
        messages
            .iter()
            .map(move |m| finding(Some(m.as_str())))
            .chain(unexplained.then(|| finding(None)))
    }
}

impl RunReport {
    /// Every finding: all failures in run order, then all warnings in run order.
    pub fn findings(&self) -> impl Iterator<Item = Finding<'_>> {
        FindingKind::ALL
            .into_iter()
            .flat_map(move |kind| self.runs.iter().flat_map(move |r| r.findings(kind)))
    }

    /// [`RunReport::findings`] grouped by kind, skipping kinds without findings.
    pub fn finding_sections(&self) -> Vec<(FindingKind, Vec<Finding<'_>>)> {
        FindingKind::ALL
            .into_iter()
            .map(|kind| {
                let items: Vec<Finding<'_>> =
                    self.runs.iter().flat_map(|r| r.findings(kind)).collect();
                (kind, items)
            })
            .filter(|(_, items)| !items.is_empty())
            .collect()
    }
}
