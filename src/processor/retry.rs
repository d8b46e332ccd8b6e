//! Retry policies: which failed attempts are retried, after how long, and how many times
//! (reference §3, FORMATS.md "Retry presets", DESIGN.md "Processor semantics and presets").
//!
//! Every decision starts from the adapter's [`ProviderError`] (`class`, `status`, `retryable`
//! with `x-should-retry` folded in, `retry_after_ms` from `retry-after-ms` / `retry-after` /
//! provider retry info) and adds the preset's own rules. Waits are virtual: the processor
//! returns them as `Action::Wait`, nothing sleeps.

use serde_json::Value;

use super::config::RetryPreset;
use super::rng::SplitMix64;
use crate::event::{ErrorClass, ProviderError};

/// opencode `RETRY_INITIAL_DELAY` (reference §3.2).
pub const OPENCODE_INITIAL_DELAY_MS: u64 = 2_000;
/// opencode `RETRY_MAX_DELAY_NO_HEADERS` (reference §3.2).
pub const OPENCODE_MAX_DELAY_NO_HEADERS_MS: u64 = 30_000;
/// opencode `RETRY_MAX_DELAY`: the largest `setTimeout` value (reference §3.2).
pub const OPENCODE_MAX_DELAY_MS: u64 = 2_147_483_647;
/// opencode 1.18.33's retry limit ([C] `RETRY_MAX_RETRIES`, observed; DESIGN.md).
pub const OPENCODE_MAX_RETRIES: u32 = 5;

/// What a policy decided about one failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryVerdict {
    /// The policy would retry this error (subject to its attempt limit).
    pub retryable: bool,
    /// The message shown for the retry (opencode's `retryable()` text), else the error's.
    pub reason: String,
}

/// A retry preset bound to its jitter generator.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    preset: RetryPreset,
    provider: Option<String>,
    rng: SplitMix64,
}

impl RetryPolicy {
    pub fn new(preset: RetryPreset, seed: u64, provider: Option<String>) -> Self {
        RetryPolicy {
            preset,
            provider,
            rng: SplitMix64::new(seed),
        }
    }

    pub fn preset(&self) -> RetryPreset {
        self.preset
    }

    /// Retries the preset allows per request, before the processor's `max_retries` guard.
    pub fn max_retries(&self) -> u32 {
        match self.preset {
            RetryPreset::Opencode => OPENCODE_MAX_RETRIES,
            // Eras A/B: no attempt limit (reference §3.3); only the hard guard stops it.
            RetryPreset::OpencodeClassic => u32::MAX,
            // The seed's `retry_with_backoff`: 3 attempts in all.
            RetryPreset::Seed => 2,
            // Stainless SDKs' and the AI SDK's default `maxRetries`.
            RetryPreset::OpenaiSdk | RetryPreset::AnthropicSdk | RetryPreset::AiSdk => 2,
            RetryPreset::None => 0,
        }
    }

    /// Whether the preset retries this error, and the message it shows.
    pub fn classify(&self, err: &ProviderError) -> RetryVerdict {
        let provider = self.provider.as_deref().unwrap_or("");
        match self.preset {
            RetryPreset::Opencode => opencode_retryable(err, provider, false),
            RetryPreset::OpencodeClassic => opencode_retryable(err, provider, true),
            // The seed retries every exception whatever its class.
            RetryPreset::Seed => verdict(true, &err.message),
            // Stainless: 408/409/429/≥500 and `x-should-retry` (folded into `retryable` by the
            // adapter), and connection errors. A stream that already started is not retried
            // by the SDK, so in-stream errors other than network ones are final.
            RetryPreset::OpenaiSdk | RetryPreset::AnthropicSdk | RetryPreset::AiSdk => {
                let retry = match err.status {
                    Some(_) => err.retryable,
                    None => err.class == ErrorClass::Network,
                };
                verdict(retry, &err.message)
            }
            RetryPreset::None => verdict(false, &err.message),
        }
    }

    /// The wait before retry number `retry` (1-based: the first retry follows attempt 1).
    /// Draws one jitter value for the presets that jitter, so the schedule depends only on
    /// the seed and the sequence of failures.
    pub fn delay_ms(&mut self, retry: u32, err: &ProviderError) -> u64 {
        let n = retry.max(1);
        match self.preset {
            RetryPreset::Opencode => match err.retry_after_ms {
                Some(ms) => ms.min(OPENCODE_MAX_DELAY_MS),
                None => {
                    let base = exp_backoff(OPENCODE_INITIAL_DELAY_MS, n)
                        .min(OPENCODE_MAX_DELAY_NO_HEADERS_MS);
                    let u = self.rng.next_f64();
                    // [C] jitter: ceil(base + base·0.25·random).
                    let jittered = (base as f64 + base as f64 * 0.25 * u).ceil() as u64;
                    jittered.min(OPENCODE_MAX_DELAY_MS)
                }
            },
            RetryPreset::OpencodeClassic => match err.retry_after_ms {
                // Era A returns header waits unchanged; only the sleep clamps at 2³¹−1.
                Some(ms) => ms.min(OPENCODE_MAX_DELAY_MS),
                None => {
                    exp_backoff(OPENCODE_INITIAL_DELAY_MS, n).min(OPENCODE_MAX_DELAY_NO_HEADERS_MS)
                }
            },
            // base 1 s, ×2, 30 s cap, server waits ignored: 1 s, then 2 s.
            RetryPreset::Seed => exp_backoff(1_000, n).min(30_000),
            RetryPreset::OpenaiSdk | RetryPreset::AnthropicSdk => match err.retry_after_ms {
                Some(ms) if ms > 0 && ms <= 60_000 => ms,
                _ => {
                    let base = exp_backoff(500, n).min(8_000) as f64;
                    let u = self.rng.next_f64();
                    (base * (1.0 - 0.25 * u)).round() as u64
                }
            },
            RetryPreset::AiSdk => {
                let backoff = exp_backoff(2_000, n);
                match err.retry_after_ms {
                    Some(ms) if ms < 60_000 && ms >= backoff => ms,
                    _ => backoff,
                }
            }
            RetryPreset::None => 0,
        }
    }
}

/// `initial · 2^(n-1)`, saturating.
fn exp_backoff(initial: u64, n: u32) -> u64 {
    let shift = (n - 1).min(62);
    initial.saturating_mul(1u64 << shift)
}

fn verdict(retryable: bool, reason: &str) -> RetryVerdict {
    RetryVerdict {
        retryable,
        reason: reason.to_string(),
    }
}

const FREE_USAGE_CLASSIC: &str = "Free usage exceeded, add credits https://opencode.ai/zen";
const FREE_USAGE: &str = "Free usage exceeded, subscribe to Go https://opencode.ai/go";

/// opencode's `SessionRetry.retryable()` (reference §3.1). `classic` is era A; otherwise the
/// observed 1.18.33 behaviour: era A plus [B] (≥500 always retried, plain-text rate-limit
/// messages retried, unmatched JSON objects no longer retried) and the [C] overloaded text.
pub fn opencode_retryable(err: &ProviderError, provider: &str, classic: bool) -> RetryVerdict {
    // 1. ContextOverflowError: never.
    if err.class == ErrorClass::ContextOverflow {
        return verdict(false, &err.message);
    }
    // Errors that cannot become a retryable APIError in any era.
    if matches!(err.class, ErrorClass::Auth) && !err.retryable {
        return verdict(false, &err.message);
    }
    if let Some(status) = err.status {
        // 2. APIError: only if isRetryable ([B]: or ≥500). parseAPICallError also marks 404
        //    retryable for providers whose id starts with `openai`.
        let retry = err.retryable
            || (!classic && status >= 500)
            || (status == 404 && provider.starts_with("openai"));
        if !retry {
            return verdict(false, &err.message);
        }
        return verdict(true, &api_error_message(err, classic));
    }
    // No status: a transport error (ECONNRESET → retryable APIError) or an in-stream error
    // that parseStreamError turned into a retryable APIError ("Rate Limited").
    if err.class == ErrorClass::Network || err.retryable {
        let reason = match err.class {
            ErrorClass::RateLimited => "Rate Limited".to_string(),
            ErrorClass::Overloaded => "Provider is overloaded".to_string(),
            _ => api_error_message(err, classic),
        };
        return verdict(true, &reason);
    }
    // 3. Anything else: the JSON-message rules.
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&err.message) {
        let error = obj.get("error");
        let str_at = |v: Option<&Value>, key: &str| -> String {
            v.and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if obj.get("type").and_then(Value::as_str) == Some("error")
            && str_at(error, "type") == "too_many_requests"
        {
            return verdict(true, "Too Many Requests");
        }
        let code = obj.get("code").and_then(Value::as_str).unwrap_or("");
        if code.contains("exhausted") || code.contains("unavailable") {
            return verdict(true, "Provider is overloaded");
        }
        if str_at(error, "code").contains("rate_limit") {
            return verdict(true, "Rate Limited");
        }
        // Era A quirk: any other JSON object is retried with its text as the message.
        return verdict(classic, &err.message);
    }
    if !classic {
        let lower = err.message.to_ascii_lowercase();
        let texts = [
            "rate increased too quickly",
            "rate limit",
            "too many requests",
            "overloaded",
        ];
        if texts.iter().any(|t| lower.contains(t)) {
            let reason = if lower.contains("overloaded") {
                "Provider is overloaded"
            } else {
                err.message.as_str()
            };
            return verdict(true, reason);
        }
    }
    verdict(false, &err.message)
}

/// The display message of a retryable APIError (reference §3.1 step 2).
fn api_error_message(err: &ProviderError, classic: bool) -> String {
    if err.message.contains("FreeUsageLimitError") {
        return if classic {
            FREE_USAGE_CLASSIC
        } else {
            FREE_USAGE
        }
        .to_string();
    }
    let overloaded = if classic {
        err.message.contains("Overloaded")
    } else {
        err.message.to_ascii_lowercase().contains("overloaded")
    };
    if overloaded {
        "Provider is overloaded".to_string()
    } else {
        err.message.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(class: ErrorClass, status: Option<u16>, retryable: bool, msg: &str) -> ProviderError {
        ProviderError {
            class,
            status,
            message: msg.to_string(),
            retryable,
            retry_after_ms: None,
            code: None,
        }
    }

    #[test]
    fn opencode_classification_table() {
        use ErrorClass::*;
        // (class, status, retryable, message, classic verdict, modern verdict, modern reason)
        type Case = (
            ErrorClass,
            Option<u16>,
            bool,
            &'static str,
            bool,
            bool,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                ContextOverflow,
                Some(400),
                true,
                "prompt is too long",
                false,
                false,
                "prompt is too long",
            ),
            (
                RateLimited,
                Some(429),
                true,
                "slow down",
                true,
                true,
                "slow down",
            ),
            (
                Overloaded,
                Some(529),
                true,
                "Overloaded",
                true,
                true,
                "Provider is overloaded",
            ),
            (Server, Some(500), false, "boom", false, true, "boom"),
            (InvalidRequest, Some(400), false, "bad", false, false, "bad"),
            (Auth, Some(401), false, "key", false, false, "key"),
            (
                Network,
                None,
                true,
                "Connection reset by server",
                true,
                true,
                "Connection reset by server",
            ),
            (
                Protocol,
                None,
                false,
                r#"{"type":"error","error":{"type":"too_many_requests"}}"#,
                true,
                true,
                "Too Many Requests",
            ),
            (
                Protocol,
                None,
                false,
                r#"{"code":"resource_exhausted"}"#,
                true,
                true,
                "Provider is overloaded",
            ),
            (
                Protocol,
                None,
                false,
                r#"{"error":{"code":"rate_limit_exceeded"}}"#,
                true,
                true,
                "Rate Limited",
            ),
            (
                Protocol,
                None,
                false,
                r#"{"type":"error","error":{"type":"api_error"}}"#,
                true,
                false,
                r#"{"type":"error","error":{"type":"api_error"}}"#,
            ),
            (
                Protocol,
                None,
                false,
                "Rate limit reached, try later",
                false,
                true,
                "Rate limit reached, try later",
            ),
            (
                Protocol,
                None,
                false,
                "not json at all",
                false,
                false,
                "not json at all",
            ),
            (
                RateLimited,
                Some(429),
                true,
                "FreeUsageLimitError",
                true,
                true,
                FREE_USAGE,
            ),
        ];
        for (class, status, retryable, msg, classic, modern, reason) in cases {
            let e = err(*class, *status, *retryable, msg);
            assert_eq!(
                opencode_retryable(&e, "anthropic", true).retryable,
                *classic,
                "classic {msg}"
            );
            let v = opencode_retryable(&e, "anthropic", false);
            assert_eq!(v.retryable, *modern, "modern {msg}");
            assert_eq!(v.reason, *reason, "reason {msg}");
        }
        let not_found = err(InvalidRequest, Some(404), false, "Not Found");
        assert!(opencode_retryable(&not_found, "openai", false).retryable);
        assert!(!opencode_retryable(&not_found, "anthropic", false).retryable);
    }

    #[test]
    fn backoff_saturates() {
        assert_eq!(exp_backoff(2_000, 1), 2_000);
        assert_eq!(exp_backoff(2_000, 4), 16_000);
        assert_eq!(exp_backoff(2_000, 200), u64::MAX);
    }
}
