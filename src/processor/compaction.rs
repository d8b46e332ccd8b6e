//! Context-overflow check and compaction texts (reference §6).

use crate::conversation::{AssistantPart, Message};
use crate::event::Usage;

/// opencode `OUTPUT_TOKEN_MAX`: the output reserve never exceeds this (reference §6.1).
pub const OUTPUT_TOKEN_MAX: u64 = 32_000;

/// The user prompt of the compaction request (reference §6.3, era A wording).
pub const COMPACTION_PROMPT: &str = "Provide a detailed prompt for continuing our conversation above. Focus on information that would be helpful for continuing the conversation, including what we did, what we're doing, which files we're working on, and what we're going to do next.";

/// The system prompt of the compaction request: opencode's hidden `compaction` agent prompt
/// (`agent/prompt/compaction.txt`, the era A text that goes with [`COMPACTION_PROMPT`]). It
/// replaces the agent's system prompt (reference §6.3, §8).
pub const COMPACTION_SYSTEM: &str = "You are a helpful AI assistant tasked with summarizing conversations.

When asked to summarize, provide a detailed but concise summary of the conversation.
Focus on information that would be helpful for continuing the conversation, including:
- What was done
- What is currently being worked on
- Which files are being modified
- What needs to be done next
- Key user requests, constraints, or preferences that should persist
- Important technical decisions and why they were made

Your summary should be comprehensive enough to provide context but concise enough to be quickly understood.
";

/// The user text that replaces the compacted history (reference §6.3 history filter).
pub const COMPACTED_QUESTION: &str = "What did we do so far?";

/// The synthetic user text appended after an automatic compaction (reference §6.3).
pub const CONTINUE_PROMPT: &str = "Continue if you have next steps";

/// The model limits the overflow check uses. 0 / `None` mean unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub context: u64,
    pub output: u64,
    pub input: Option<u64>,
}

impl Limits {
    /// Usable prompt tokens, era A: `limit.input` when known, else
    /// `context − (min(limit.output, 32_000) || 32_000)`. `None` when the context is unknown
    /// (opencode returns "no overflow" for `limit.context === 0`).
    pub fn usable(&self) -> Option<u64> {
        if let Some(input) = self.input.filter(|i| *i > 0) {
            return Some(input);
        }
        if self.context == 0 {
            return None;
        }
        Some(self.context.saturating_sub(self.max_output_tokens()))
    }

    /// opencode's `ProviderTransform.maxOutputTokens`: `min(limit.output, 32_000) || 32_000`.
    /// It is both the output reserve of the overflow check and the output cap sent with every
    /// request (reference §6.1, §8).
    pub fn max_output_tokens(&self) -> u64 {
        match self.output.min(OUTPUT_TOKEN_MAX) {
            0 => OUTPUT_TOKEN_MAX,
            r => r,
        }
    }

    /// Era A `isOverflow`: `input + cache.read + output > usable` (no cache write, no
    /// reasoning).
    pub fn is_overflow(&self, u: &Usage) -> bool {
        match self.usable() {
            Some(usable) => overflow_count(u) > usable,
            None => false,
        }
    }
}

/// The token count era A compares against the usable context.
pub fn overflow_count(u: &Usage) -> u64 {
    u.input + u.cache_read + u.output
}

/// The history after a successful compaction: the question, the summary, and the synthetic
/// continue prompt (era A with `auto: true`).
pub fn compacted_history(summary: &str) -> Vec<Message> {
    vec![
        Message::User {
            content: COMPACTED_QUESTION.to_string(),
        },
        Message::Assistant {
            parts: vec![AssistantPart::Text {
                text: summary.to_string(),
            }],
        },
        Message::User {
            content: CONTINUE_PROMPT.to_string(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cache_read: u64, output: u64) -> Usage {
        Usage {
            input,
            output,
            cache_read,
            reasoning: 1_000_000,
            cache_write: 1_000_000,
        }
    }

    #[test]
    fn usable_tokens() {
        let l = |context, output, input| Limits {
            context,
            output,
            input,
        };
        assert_eq!(l(128_000, 16_384, None).usable(), Some(111_616));
        assert_eq!(l(200_000, 64_000, None).usable(), Some(168_000));
        assert_eq!(l(200_000, 0, None).usable(), Some(168_000));
        assert_eq!(l(400_000, 128_000, Some(272_000)).usable(), Some(272_000));
        assert_eq!(l(32_768, 32_768, None).usable(), Some(768));
        assert_eq!(l(0, 4_096, None).usable(), None);
    }

    #[test]
    fn overflow_threshold_both_sides() {
        let limits = Limits {
            context: 128_000,
            output: 16_384,
            input: None,
        };
        // usable 111_616; reasoning and cache write never count.
        assert!(!limits.is_overflow(&usage(100_000, 11_000, 616)));
        assert!(limits.is_overflow(&usage(100_000, 11_000, 617)));
        assert!(!Limits::default().is_overflow(&usage(u64::MAX / 4, 0, 0)));
    }
}
