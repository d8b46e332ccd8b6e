//! The processor's configuration: [`ProcessorConfig`], and the policies in it as named in
//! scenarios (`[policy]`, `[limits]`) and on the command line. Names are fixed by FORMATS.md;
//! each policy type parses from and prints as that name.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::pricing::PriceTable;

/// Everything the processor needs to know about a run.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub model: String,
    /// Pricing lookup hint ("openai", "anthropic", …).
    pub provider: Option<String>,
    /// Detectors run side by side; may be empty.
    pub detectors: Vec<DetectorSpec>,
    pub doom_action: DoomAction,
    pub retry: RetryPreset,
    /// Jitter seed: same seed, same schedule.
    pub seed: u64,
    /// Hard limit (the seed's): stop with `max-steps` after this many steps.
    pub max_steps: Option<u32>,
    /// opencode's soft limit: from this step on, append the MAX_STEPS assistant prefill;
    /// never stops (reference §4.3).
    pub soft_max_steps: Option<u32>,
    /// Hard guard on retries per request, also for policies that retry forever.
    pub max_retries: u32,
    /// Context limit for the overflow check; else the price table's.
    pub context_limit: Option<u64>,
    /// Output limit for the overflow check; else the price table's.
    pub output_limit: Option<u64>,
    pub compaction: CompactionMode,
    pub prices: Arc<PriceTable>,
    /// [C] `ensureToolCall`: a `tool-call` without a preceding `tool-input-start` creates its
    /// tool part (default). `false` is era A: the call gets no part, so it is missing from the
    /// message and the history, and the `opencode` detector never sees it; the AI SDK still
    /// executes it, so it is still executed and counted (reference §1.2, §8).
    pub ensure_tool_call: bool,
    /// The names of the tools the agent has. `None`: every call is a call to one of them.
    /// `Some`: a call to any other name is rerouted to opencode's internal `invalid` tool
    /// (reference §7 tier 1, `toolset`). A scenario's `[[tools]]` or an
    /// agent profile's list.
    pub tools: Option<BTreeSet<String>>,
}

impl ProcessorConfig {
    /// Defaults: detectors `[opencode]`, `ask-reject`, retry `opencode`, seed 0, no step
    /// limits, `max_retries` 10, compaction `stop`, the bundled price table, no tool set.
    pub fn new(model: impl Into<String>) -> Self {
        ProcessorConfig {
            model: model.into(),
            provider: None,
            detectors: vec![DetectorSpec::Opencode],
            doom_action: DoomAction::AskReject,
            retry: RetryPreset::Opencode,
            seed: 0,
            max_steps: None,
            soft_max_steps: None,
            max_retries: 10,
            context_limit: None,
            output_limit: None,
            compaction: CompactionMode::Stop,
            prices: PriceTable::bundled(),
            ensure_tool_call: true,
            tools: None,
        }
    }
}

/// A doom-loop detector and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectorSpec {
    /// opencode: the last three parts of the current assistant message are identical tool
    /// calls (key-order-sensitive JSON).
    Opencode,
    /// The seeds' detector: the last three calls of the session have the same tool and
    /// canonical (sorted-key) arguments.
    Seed,
    /// The last N calls of the session are identical (canonical).
    Consecutive(u32),
    /// For some period p ≤ `max_period`, the last p·`repeats` calls are `repeats` repetitions of
    /// one block of p calls.
    Cycle { max_period: u32, repeats: u32 },
    /// The last N steps each made the same set (order-free) of two or more calls.
    Fanout(u32),
    /// The last N calls have the same tool, canonical arguments and identical result.
    NoProgress(u32),
    /// The last N steps produced the same non-empty assistant text (trimmed).
    TextRepeat(u32),
}

/// Every detector name form, for error messages and suggestions.
pub const DETECTOR_FORMS: &[&str] = &[
    "opencode",
    "seed",
    "consecutive:N",
    "cycle:K:R",
    "fanout:N",
    "no-progress:N",
    "text-repeat:N",
];

impl fmt::Display for DetectorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectorSpec::Opencode => f.write_str("opencode"),
            DetectorSpec::Seed => f.write_str("seed"),
            DetectorSpec::Consecutive(n) => write!(f, "consecutive:{n}"),
            DetectorSpec::Cycle {
                max_period,
                repeats,
            } => write!(f, "cycle:{max_period}:{repeats}"),
            DetectorSpec::Fanout(n) => write!(f, "fanout:{n}"),
            DetectorSpec::NoProgress(n) => write!(f, "no-progress:{n}"),
            DetectorSpec::TextRepeat(n) => write!(f, "text-repeat:{n}"),
        }
    }
}

fn parse_count(name: &str, s: &str, min: u32) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("`{name}`: `{s}` is not a whole number"))?;
    if n < min {
        return Err(format!("`{name}`: the count must be at least {min}"));
    }
    Ok(n)
}

impl FromStr for DetectorSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let spec = match parts.as_slice() {
            ["opencode"] => DetectorSpec::Opencode,
            ["seed"] => DetectorSpec::Seed,
            ["consecutive", n] => DetectorSpec::Consecutive(parse_count(s, n, 2)?),
            ["cycle", k, r] => DetectorSpec::Cycle {
                max_period: parse_count(s, k, 1)?,
                repeats: parse_count(s, r, 2)?,
            },
            ["fanout", n] => DetectorSpec::Fanout(parse_count(s, n, 2)?),
            ["no-progress", n] => DetectorSpec::NoProgress(parse_count(s, n, 2)?),
            ["text-repeat", n] => DetectorSpec::TextRepeat(parse_count(s, n, 2)?),
            _ => {
                return Err(format!(
                    "unknown doom-loop detector `{s}`: expected one of {}",
                    DETECTOR_FORMS.join(", ")
                ))
            }
        };
        Ok(spec)
    }
}

crate::string_enum! {
    /// What happens when a doom loop is detected (opencode's `doom_loop` permission).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum DoomAction: "doom action" {
        /// Continue as if nothing happened (the detection is still reported).
        Allow = "allow",
        /// Config deny: the turn ends as an error (`DeniedError`).
        Deny = "deny",
        /// opencode's default `ask`, answered "reject": the turn ends as an error.
        #[default]
        AskReject = "ask-reject",
        /// `ask`, answered "once": processing resumes.
        AskAllow = "ask-allow",
    }
}

crate::string_enum! {
    /// A retry policy preset.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum RetryPreset: "retry policy" {
        /// opencode as observed in 1.18.33: 2 s·2^(n-1) plus up to 25% jitter, server waits
        /// first, at most 5 retries.
        #[default]
        Opencode = "opencode",
        /// opencode era A: no jitter, no attempt limit, header waits uncapped.
        OpencodeClassic = "opencode-classic",
        /// The seeds' `retry_with_backoff`: 3 attempts, 1 s base, ×2, 30 s cap, every error.
        Seed = "seed",
        /// The official openai SDKs' retry.
        OpenaiSdk = "openai-sdk",
        /// The official anthropic SDKs' retry.
        AnthropicSdk = "anthropic-sdk",
        /// The AI SDK's `retryWithExponentialBackoff`.
        AiSdk = "ai-sdk",
        /// Never retry.
        None = "none",
    }
}

crate::string_enum! {
    /// What to do when the context overflows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum CompactionMode: "compaction mode" {
        /// End the run with `context-overflow`. tapeloop's own: opencode has no such mode.
        #[default]
        Stop = "stop",
        /// opencode's autocompact on: send the summary request after the overflowing step
        /// and continue with the compacted history.
        Compact = "compact",
        /// opencode's autocompact off (`OPENCODE_DISABLE_AUTOCOMPACT=1`): overflow is never
        /// checked; the loop goes on as the finish reason says (reference §6.1).
        Off = "off",
    }
}

macro_rules! serde_via_str {
    ($($ty:ty),+) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

serde_via_str!(DetectorSpec, DoomAction, RetryPreset, CompactionMode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_names_round_trip() {
        for name in [
            "opencode",
            "seed",
            "consecutive:4",
            "cycle:4:3",
            "fanout:3",
            "no-progress:3",
            "text-repeat:2",
        ] {
            let spec: DetectorSpec = name.parse().unwrap();
            assert_eq!(spec.to_string(), name);
        }
    }

    #[test]
    fn bad_detector_names_explain_themselves() {
        let err = "opencod".parse::<DetectorSpec>().unwrap_err();
        assert!(err.contains("consecutive:N"), "{err}");
        assert!("consecutive:x".parse::<DetectorSpec>().is_err());
        assert!("consecutive:1".parse::<DetectorSpec>().is_err());
        assert!("cycle:4".parse::<DetectorSpec>().is_err());
    }

    #[test]
    fn presets_parse() {
        assert_eq!("ask-allow".parse::<DoomAction>(), Ok(DoomAction::AskAllow));
        assert_eq!("ai-sdk".parse::<RetryPreset>(), Ok(RetryPreset::AiSdk));
        assert!("forever".parse::<RetryPreset>().is_err());
        assert_eq!(
            serde_json::to_string(&RetryPreset::OpencodeClassic).unwrap(),
            "\"opencode-classic\""
        );
    }
}
