//! Merging sharded reports and assigning scenarios to shards.
//!
//! CI splits a suite with `--partition k/n`: a scenario belongs to shard
//! [`partition_index`]`(name, n)`. Each shard writes its JSON report; [`merge`] combines them
//! into the report an unsharded run would have produced (runs sorted by scenario, then
//! cassette; summary recomputed).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use super::model::{RunReport, REPORT_FORMAT};
use super::ReportError;

/// Combine reports. Runs are sorted by scenario then cassette and the summary is recomputed.
/// Errors when the same scenario × cassette appears twice (overlapping shards) or when the
/// reports come from different tapeloop versions (shards must run the same binary for the
/// merged report to mean anything). Merging nothing gives an empty report.
pub fn merge(reports: Vec<RunReport>) -> Result<RunReport, ReportError> {
    let version = match reports.first() {
        Some(first) => first.tapeloop.clone(),
        None => return Ok(RunReport::new(Vec::new())),
    };
    let mut seen = HashSet::new();
    let mut runs = Vec::new();
    for (i, report) in reports.into_iter().enumerate() {
        if report.format != REPORT_FORMAT {
            return Err(ReportError::Merge(format!(
                "report {} has format {}, expected {REPORT_FORMAT}",
                i + 1,
                report.format
            )));
        }
        if report.tapeloop != version {
            return Err(ReportError::Merge(format!(
                "report {} was written by tapeloop {}, report 1 by {version}: shards must use the same version",
                i + 1,
                report.tapeloop
            )));
        }
        for run in report.runs {
            if !seen.insert((run.scenario.clone(), run.cassette.clone())) {
                return Err(ReportError::Merge(format!(
                    "run {} appears in more than one report (overlapping shards?)",
                    run.label()
                )));
            }
            runs.push(run);
        }
    }
    let mut merged = RunReport::new(runs);
    merged.tapeloop = version;
    merged.sort_runs();
    Ok(merged)
}

/// The shard (0-based, `< n`) a scenario belongs to: FNV-1a 64-bit hash of the scenario
/// name's UTF-8 bytes (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`), modulo `n`.
///
/// This is a fixed, documented function of the name alone — not `std`'s `Hasher`, whose
/// output may change between Rust versions — so shard assignment is identical across
/// tapeloop versions, platforms and machines. `n = 0` is treated as 1.
pub fn partition_index(scenario: &str, n: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in scenario.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % n.max(1) as u64) as usize
}

/// A `--partition k/n` selection: shard `k` (1-based) of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    /// 1-based shard number, `1 ..= n`.
    pub k: usize,
    pub n: usize,
}

impl Partition {
    /// Whether this shard runs the scenario: `partition_index(name, n) == k - 1`.
    pub fn contains(&self, scenario: &str) -> bool {
        partition_index(scenario, self.n) + 1 == self.k
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid partition `{s}`: expected k/n with 1 ≤ k ≤ n, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // Reference values of FNV-1a 64 ("" and "a"), reduced modulo a large prime-free n.
        let full = |s: &str| partition_index(s, usize::MAX);
        assert_eq!(full("") as u64, 0xcbf29ce484222325 % usize::MAX as u64);
        assert_eq!(full("a") as u64, 0xaf63dc4c8601ec8c % usize::MAX as u64);
        assert_eq!(
            full("foobar") as u64,
            0x85944171f73967e8 % usize::MAX as u64
        );
    }

    #[test]
    fn partitions_parse() {
        assert_eq!("2/4".parse(), Ok(Partition { k: 2, n: 4 }));
        assert!("0/4".parse::<Partition>().is_err());
        assert!("5/4".parse::<Partition>().is_err());
        assert!("x".parse::<Partition>().is_err());
        assert_eq!(partition_index("anything", 0), 0);
    }
}
