//! Retry presets: classification, header waits, jitter bounds, attempt limits, and what a
//! failed attempt leaves behind (reference §3, FORMATS.md "Retry presets").

mod processor_support;

use processor_support::*;
use serde_json::json;
use tapeloop::conversation::Message;
use tapeloop::event::{ErrorClass, FinishReason, ProviderError, StreamEvent};
use tapeloop::processor::{CompactionMode, RequestKind, RetryPreset, StepStatus, Termination};

fn preset_config(preset: RetryPreset, seed: u64) -> tapeloop::processor::ProcessorConfig {
    let mut c = config();
    c.retry = preset;
    c.seed = seed;
    c
}

/// `n` failing attempts, then a successful response.
fn failing(n: usize, err: Vec<StreamEvent>) -> Vec<Vec<StreamEvent>> {
    let mut s = vec![err; n];
    s.push(final_text("done"));
    s
}

#[test]
fn attempt_limits_per_preset() {
    // (preset, max_retries guard, retries made, termination) against endless 429s.
    let cases = [
        (RetryPreset::Opencode, 10, 5, Termination::RetriesExhausted),
        (RetryPreset::Opencode, 3, 3, Termination::RetriesExhausted),
        (
            RetryPreset::OpencodeClassic,
            10,
            10,
            Termination::RetriesExhausted,
        ),
        (
            RetryPreset::OpencodeClassic,
            25,
            25,
            Termination::RetriesExhausted,
        ),
        (RetryPreset::Seed, 10, 2, Termination::RetriesExhausted),
        (RetryPreset::OpenaiSdk, 10, 2, Termination::RetriesExhausted),
        (
            RetryPreset::AnthropicSdk,
            10,
            2,
            Termination::RetriesExhausted,
        ),
        (RetryPreset::AiSdk, 10, 2, Termination::RetriesExhausted),
        (RetryPreset::None, 10, 0, Termination::ProviderError),
        (RetryPreset::Opencode, 0, 0, Termination::RetriesExhausted),
    ];
    for (preset, guard, retries, termination) in cases {
        let mut c = preset_config(preset, 1);
        c.max_retries = guard;
        let r = run(c, failing(40, rate_limited(None)));
        let o = &r.outcome;
        assert_eq!(o.retries.len(), retries, "{preset} guard {guard}");
        assert_eq!(o.termination, Some(termination), "{preset} guard {guard}");
        assert_eq!(o.steps.len(), 1);
        assert_eq!(o.steps[0].attempts as usize, retries + 1);
        assert_eq!(o.steps[0].status, StepStatus::Error);
        for (i, rec) in o.retries.iter().enumerate() {
            assert_eq!(
                (rec.step, rec.attempt, rec.status),
                (1, i as u32 + 1, Some(429))
            );
            assert_eq!(rec.class, ErrorClass::RateLimited);
        }
        // Same step, next attempt, same request.
        for (i, send) in r.sends.iter().enumerate() {
            assert_eq!((send.step, send.attempt), (1, i as u32 + 1));
            assert_eq!(send.conversation, r.sends[0].conversation);
        }
        assert_eq!(
            o.sim_ms,
            r.waits.iter().sum::<u64>() + 2 * (retries as u64 + 1)
        );
    }
}

#[test]
fn retries_then_success_completes() {
    let r = run(
        preset_config(RetryPreset::Opencode, 3),
        failing(2, rate_limited(None)),
    );
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
    assert_eq!(r.outcome.retries.len(), 2);
    assert_eq!(r.outcome.steps[0].attempts, 3);
    assert_eq!(r.outcome.steps[0].status, StepStatus::Completed);
}

#[test]
fn header_waits() {
    // (preset, retry_after_ms, expected first delay range)
    let cases: &[(RetryPreset, Option<u64>, u64, u64)] = &[
        (RetryPreset::Opencode, Some(3_000), 3_000, 3_000),
        (RetryPreset::Opencode, Some(120_000), 120_000, 120_000),
        (RetryPreset::Opencode, None, 2_000, 2_500),
        (RetryPreset::OpencodeClassic, Some(90_000), 90_000, 90_000),
        (RetryPreset::OpencodeClassic, None, 2_000, 2_000),
        (RetryPreset::Seed, Some(30_000), 1_000, 1_000),
        (RetryPreset::Seed, None, 1_000, 1_000),
        (RetryPreset::OpenaiSdk, Some(5_000), 5_000, 5_000),
        (RetryPreset::OpenaiSdk, Some(60_000), 60_000, 60_000),
        (RetryPreset::OpenaiSdk, Some(60_001), 375, 500),
        (RetryPreset::OpenaiSdk, Some(0), 375, 500),
        (RetryPreset::AnthropicSdk, None, 375, 500),
        (RetryPreset::AiSdk, Some(3_000), 3_000, 3_000),
        (RetryPreset::AiSdk, Some(1_000), 2_000, 2_000),
        (RetryPreset::AiSdk, Some(60_000), 2_000, 2_000),
        (RetryPreset::AiSdk, None, 2_000, 2_000),
    ];
    for &(preset, after, lo, hi) in cases {
        let r = run(preset_config(preset, 11), failing(1, rate_limited(after)));
        let d = r.outcome.retries[0].delay_ms;
        assert!(
            (lo..=hi).contains(&d),
            "{preset} after {after:?}: {d} not in [{lo}, {hi}]"
        );
        assert_eq!(r.waits, vec![d]);
    }
}

#[test]
fn backoff_schedules_without_headers() {
    let delays = |preset, n| -> Vec<u64> {
        let mut c = preset_config(preset, 5);
        c.max_retries = n;
        run(c, failing(n as usize, rate_limited(None)))
            .outcome
            .retries
            .iter()
            .map(|r| r.delay_ms)
            .collect()
    };
    assert_eq!(
        delays(RetryPreset::OpencodeClassic, 7),
        vec![2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    );
    assert_eq!(delays(RetryPreset::Seed, 2), vec![1_000, 2_000]);
    assert_eq!(delays(RetryPreset::AiSdk, 2), vec![2_000, 4_000]);
    let sdk = delays(RetryPreset::OpenaiSdk, 2);
    assert!(
        (375..=500).contains(&sdk[0]) && (750..=1_000).contains(&sdk[1]),
        "{sdk:?}"
    );
}

#[test]
fn opencode_jitter_stays_within_a_quarter_and_replays_by_seed() {
    let bases = [2_000u64, 4_000, 8_000, 16_000, 30_000];
    let schedule = |seed| -> Vec<u64> {
        run(
            preset_config(RetryPreset::Opencode, seed),
            failing(5, rate_limited(None)),
        )
        .outcome
        .retries
        .iter()
        .map(|r| r.delay_ms)
        .collect()
    };
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let s = schedule(seed);
        assert_eq!(s.len(), 5);
        for (d, base) in s.iter().zip(bases) {
            assert!(
                *d >= base && *d * 4 <= base * 5,
                "seed {seed}: {d} outside [{base}, 1.25·{base}]"
            );
        }
        assert_eq!(s, schedule(seed), "same seed, same schedule");
        distinct.insert(s);
    }
    assert!(
        distinct.len() > 250,
        "the seed drives the jitter ({} distinct)",
        distinct.len()
    );
}

#[test]
fn classification_decides_retry_or_terminal() {
    use ErrorClass::*;
    let e = |class, status, retryable| http_error(status, class, retryable, None);
    // (preset, error, retried?, termination when not retried)
    let cases = [
        (RetryPreset::Opencode, e(Server, 500, false), true, None),
        (
            RetryPreset::OpencodeClassic,
            e(Server, 500, false),
            false,
            Some(Termination::ProviderError),
        ),
        (
            RetryPreset::OpenaiSdk,
            e(Server, 500, false),
            false,
            Some(Termination::ProviderError),
        ),
        (
            RetryPreset::Opencode,
            e(InvalidRequest, 400, false),
            false,
            Some(Termination::ProviderError),
        ),
        (
            RetryPreset::Opencode,
            e(Auth, 401, false),
            false,
            Some(Termination::ProviderError),
        ),
        (
            RetryPreset::Opencode,
            e(ContextOverflow, 400, false),
            false,
            Some(Termination::ContextOverflow),
        ),
        (RetryPreset::Seed, e(InvalidRequest, 400, false), true, None),
        (RetryPreset::AiSdk, e(Overloaded, 529, true), true, None),
    ];
    for (preset, err, retried, termination) in cases {
        let r = run(preset_config(preset, 0), failing(1, err.clone()));
        assert_eq!(!r.outcome.retries.is_empty(), retried, "{preset} {err:?}");
        match termination {
            Some(t) => {
                assert_eq!(r.outcome.termination, Some(t), "{preset} {err:?}");
                assert_eq!(
                    r.outcome.termination_detail.as_deref(),
                    Some("HTTP ".to_string() + &err_status(&err)).as_deref()
                );
            }
            None => assert_eq!(r.outcome.termination, Some(Termination::Completed)),
        }
    }
}

fn err_status(evs: &[StreamEvent]) -> String {
    match &evs[0] {
        StreamEvent::Error(e) => e.status.unwrap().to_string(),
        _ => unreachable!(),
    }
}

#[test]
fn in_stream_and_network_errors() {
    let stream_err = |class, retryable, message: &str| {
        vec![
            StreamEvent::StartStep,
            StreamEvent::TextStart { id: "t".into() },
            StreamEvent::TextDelta {
                id: "t".into(),
                text: "partial".into(),
            },
            StreamEvent::Error(ProviderError {
                class,
                status: None,
                message: message.into(),
                retryable,
                retry_after_ms: None,
                code: None,
            }),
        ]
    };
    // (preset, class, retryable, message, retried?)
    let cases = [
        (
            RetryPreset::Opencode,
            ErrorClass::Network,
            true,
            "Connection reset by server",
            true,
        ),
        (
            RetryPreset::OpenaiSdk,
            ErrorClass::Network,
            true,
            "Connection reset by server",
            true,
        ),
        (
            RetryPreset::OpenaiSdk,
            ErrorClass::Overloaded,
            true,
            "overloaded_error",
            false,
        ),
        (
            RetryPreset::Opencode,
            ErrorClass::Overloaded,
            true,
            "overloaded_error",
            true,
        ),
        (
            RetryPreset::OpencodeClassic,
            ErrorClass::Protocol,
            false,
            r#"{"type":"error","error":{"type":"api_error"}}"#,
            true,
        ),
        (
            RetryPreset::Opencode,
            ErrorClass::Protocol,
            false,
            r#"{"type":"error","error":{"type":"api_error"}}"#,
            false,
        ),
    ];
    for (preset, class, retryable, message, retried) in cases {
        let r = run(
            preset_config(preset, 0),
            failing(1, stream_err(class, retryable, message)),
        );
        assert_eq!(
            !r.outcome.retries.is_empty(),
            retried,
            "{preset} {class} {message}"
        );
        if retried {
            let rec = &r.outcome.retries[0];
            assert_eq!(
                (rec.step, rec.attempt, rec.status, rec.class),
                (1, 1, None, class)
            );
        } else {
            assert_eq!(r.outcome.termination, Some(Termination::ProviderError));
        }
    }
}

#[test]
fn a_failed_attempt_is_not_counted_but_its_parts_stay() {
    let failed = vec![
        StreamEvent::StartStep,
        StreamEvent::TextStart { id: "t".into() },
        StreamEvent::TextDelta {
            id: "t".into(),
            text: "Let me lo".into(),
        },
        StreamEvent::ToolInputStart {
            id: "c0".into(),
            tool: "read".into(),
            provider_executed: false,
        },
        finish(FinishReason::ToolCalls, usage(5_000, 500)),
        StreamEvent::Error(ProviderError {
            class: ErrorClass::Network,
            status: None,
            message: "stream cut off".into(),
            retryable: true,
            retry_after_ms: None,
            code: None,
        }),
        // Ignored: the stream is not read after an error.
        StreamEvent::TextDelta {
            id: "t".into(),
            text: "ignored".into(),
        },
    ];
    let ok = response(
        vec![
            text("t2", "Reading."),
            call("c1", "read", json!({"path": "a"})),
        ],
        FinishReason::ToolCalls,
    );
    let r = run(config(), vec![failed, ok, final_text("done")]);
    let o = &r.outcome;
    assert_eq!(o.termination, Some(Termination::Completed));
    assert_eq!(o.retries[0].reason, "stream cut off");
    // Only the successful attempts count: 100 + 100 input tokens.
    assert_eq!(o.usage.input, 200);
    assert_eq!(o.steps[0].usage.input, 100);
    assert_eq!(o.steps[0].attempts, 2);
    // Same assistant message: the failed attempt's partial text stays, its pending tool
    // part is closed as aborted at cleanup (reference §1.3, §3.3).
    let Message::Assistant { parts } = &r.sends[2].conversation.messages[1] else {
        panic!()
    };
    let texts: Vec<String> = parts
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    assert!(texts[0].contains("Let me lo"), "{texts:?}");
    assert!(texts[1].contains("\"c0\""), "{texts:?}");
    let Message::Tool { results } = &r.sends[2].conversation.messages[2] else {
        panic!()
    };
    assert_eq!(results[0].call_id, "c0");
    assert_eq!(results[0].output, "Tool execution aborted");
    assert_eq!(
        (results[1].call_id.as_str(), results[1].output.as_str()),
        ("c1", "read ok")
    );
}

#[test]
fn context_overflow_error_compacts_when_asked() {
    let mut c = config();
    c.compaction = CompactionMode::Compact;
    let r = run(
        c,
        vec![
            http_error(400, ErrorClass::ContextOverflow, false, None),
            final_text("We read main.rs and found the bug."),
            final_text("done"),
        ],
    );
    assert_eq!(r.outcome.termination, Some(Termination::Completed));
    assert_eq!(r.sends[1].kind, RequestKind::Compaction);
    assert_eq!(r.outcome.steps[0].status, StepStatus::Error);
    assert_eq!(r.outcome.steps.len(), 3);
}
