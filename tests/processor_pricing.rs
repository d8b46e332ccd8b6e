//! Tokens, cost and the price table (reference §5), and the overflow check and compaction
//! (reference §6).

mod processor_support;

use processor_support::*;
use serde_json::json;
use tapeloop::conversation::Message;
use tapeloop::event::{FinishReason, StreamEvent, Usage};
use tapeloop::processor::compaction::{COMPACTED_QUESTION, COMPACTION_PROMPT, CONTINUE_PROMPT};
use tapeloop::processor::{CompactionMode, PriceTable, RequestKind, StepStatus, Termination};

#[test]
fn lookup_order() {
    let t = PriceTable::bundled();
    // (provider hint, requested model, found provider/id)
    let cases = [
        (
            Some("openai"),
            "gpt-4o-mini",
            Some(("openai", "gpt-4o-mini")),
        ),
        (
            None,
            "gpt-4o-mini-2024-07-18",
            Some(("openai", "gpt-4o-mini")),
        ),
        (
            Some("anthropic"),
            "claude-sonnet-4-20250514",
            Some(("anthropic", "claude-sonnet-4")),
        ),
        (
            Some("anthropic"),
            "claude-sonnet-4-5-20250929",
            Some(("anthropic", "claude-sonnet-4-5")),
        ),
        (
            None,
            "claude-3-5-haiku-latest",
            Some(("anthropic", "claude-3-5-haiku")),
        ),
        (
            Some("openrouter"),
            "anthropic/claude-opus-4-1",
            Some(("anthropic", "claude-opus-4-1")),
        ),
        (
            None,
            "gemini-2.5-pro-preview-06-05",
            Some(("google", "gemini-2.5-pro")),
        ),
        (
            Some("deepseek"),
            "deepseek-reasoner",
            Some(("deepseek", "deepseek-reasoner")),
        ),
        (None, "grok-3-mini", Some(("xai", "grok-3-mini"))),
        (None, "llama-3-70b", None),
    ];
    for (provider, model, want) in cases {
        let got = t
            .lookup(provider, model)
            .map(|m| (m.provider.as_str(), m.id.as_str()));
        assert_eq!(got, want, "{provider:?} {model}");
    }
}

#[test]
fn from_json_reads_models_dev_shape_and_ignores_unknown_fields() {
    let text = r#"{
      "_meta": {"as_of": "2026-01-01"},
      "acme": {"id": "acme", "name": "Acme", "env": ["ACME_KEY"], "models": {
        "rocket-1": {"id": "rocket-1", "name": "Rocket", "attachment": false,
                     "cost": {"input": 1, "output": 2, "cache_read": 0.5, "reasoning": 9,
                              "context_over_200k": {"input": 2, "output": 4}},
                     "limit": {"context": 1000000, "output": 8000}, "modalities": {"input": ["text"]}},
        "free": {"id": "free"}
      }},
      "openai": {"id": "openai", "models": {"gpt-4o": {"id": "gpt-4o", "cost": {"input": 9, "output": 9}}}}
    }"#;
    let t = PriceTable::from_json(text).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.as_of.as_deref(), Some("2026-01-01"));
    let m = t.lookup(None, "rocket-1").unwrap();
    assert_eq!(
        (m.cost.input, m.cost.cache_write, m.limit.context),
        (1.0, 0.0, 1_000_000)
    );
    assert_eq!(
        t.lookup(None, "free")
            .unwrap()
            .cost
            .cost_usd(&usage(1_000_000, 0)),
        0.0
    );
    assert_eq!(t.lookup(Some("openai"), "gpt-4o").unwrap().cost.input, 9.0);
    assert!(PriceTable::from_json("[1]").is_err());
    assert!(PriceTable::from_json("{").is_err());
    assert!(PriceTable::from_json(r#"{"p":{"models":{"m":{"cost":{"input":"x"}}}}}"#).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.json");
    std::fs::write(&path, text).unwrap();
    assert_eq!(PriceTable::load(&path).unwrap(), t);
    assert!(PriceTable::load(&dir.path().join("missing.json")).is_err());
}

#[test]
fn cost_formula_and_the_200k_tier() {
    let t = PriceTable::bundled();
    let sonnet = t.lookup(Some("anthropic"), "claude-sonnet-4").unwrap().cost;
    let u = |input, cache_read| Usage {
        input,
        output: 1_000,
        reasoning: 500,
        cache_read,
        cache_write: 10_000,
    };
    // Just at the threshold: base rates (3 / 15 / 0.3 / 3.75).
    let at = u(150_000, 50_000);
    let want = (150_000.0 * 3.0 + 1_500.0 * 15.0 + 50_000.0 * 0.3 + 10_000.0 * 3.75) / 1e6;
    assert!((sonnet.cost_usd(&at) - want).abs() < 1e-9);
    // One token above: every rate switches (6 / 22.5 / 0.6 / 7.5), cache write not in the test.
    let above = u(150_001, 50_000);
    let want = (150_001.0 * 6.0 + 1_500.0 * 22.5 + 50_000.0 * 0.6 + 10_000.0 * 7.5) / 1e6;
    assert!((sonnet.cost_usd(&above) - want).abs() < 1e-9);
    // A model without the tier keeps its rates.
    let haiku = t.lookup(None, "claude-3-5-haiku").unwrap().cost;
    assert_eq!(haiku.tier_for(&above).input, 0.8);
    let gemini = t.lookup(None, "gemini-2.5-pro").unwrap().cost;
    assert_eq!(gemini.tier_for(&above).input, 2.5);
    assert_eq!(gemini.tier_for(&at).input, 1.25);
}

#[test]
fn run_cost_and_unknown_model_warning() {
    let step = |u: Usage| vec![StreamEvent::StartStep, finish(FinishReason::Stop, u)];
    let u = Usage {
        input: 1_000_000,
        output: 100_000,
        reasoning: 50_000,
        cache_read: 200_000,
        cache_write: 0,
    };
    let mut c = config();
    c.model = "o4-mini-2025-04-16".into();
    c.provider = Some("openai".into());
    let o = run(c, vec![step(u)]).outcome;
    // Reasoning billed once at the output price: 1.1 + 0.15·4.4 + 0.2·0.275.
    let want = 1.1 + 0.15 * 4.4 + 0.2 * 0.275;
    assert!((o.cost_usd - want).abs() < 1e-9, "{}", o.cost_usd);
    assert_eq!(o.steps[0].cost_usd, o.cost_usd);
    assert!(o.warnings.is_empty());

    let mut c = config();
    c.model = "my-local-model".into();
    let o = run(c, vec![step(u)]).outcome;
    assert_eq!(o.cost_usd, 0.0);
    assert_eq!(o.usage, u);
    assert!(o.warnings[0].contains("no price for model `my-local-model`"));
}

fn big(input: u64, output: u64) -> Vec<StreamEvent> {
    vec![
        StreamEvent::StartStep,
        finish(FinishReason::ToolCalls, usage(input, output)),
    ]
}

#[test]
fn overflow_threshold_from_config_and_table() {
    // gpt-4o-mini from the table: 128_000 − 16_384 = 111_616 usable.
    // With config limits: 50_000 − min(40_000, 32_000) = 18_000 usable.
    let cases = [
        (None, None, 111_000, 616, false),
        (None, None, 111_000, 617, true),
        (Some(50_000), None, 33_000, 616, false),
        (Some(50_000), None, 33_000, 617, true),
        (Some(50_000), Some(40_000), 17_999, 1, false),
        (Some(50_000), Some(40_000), 18_000, 1, true),
    ];
    for (context, output_limit, input, output, overflow) in cases {
        let mut c = config();
        c.context_limit = context;
        c.output_limit = output_limit;
        let o = run(c, vec![big(input, output), final_text("done")]).outcome;
        let want = if overflow {
            Termination::ContextOverflow
        } else {
            Termination::Completed
        };
        assert_eq!(o.termination, Some(want), "{context:?} {input}+{output}");
        if overflow {
            assert_eq!(o.steps.len(), 1);
            assert_eq!(o.steps[0].status, StepStatus::Completed);
            assert!(o
                .termination_detail
                .unwrap()
                .contains("exceed the usable context"));
        }
    }
    // Unknown limits: no check.
    let mut c = config();
    c.model = "unknown-model".into();
    let o = run(c, vec![big(10_000_000, 1), final_text("done")]).outcome;
    assert_eq!(o.termination, Some(Termination::Completed));
}

#[test]
fn compaction_summarizes_and_continues() {
    let mut c = config();
    c.compaction = CompactionMode::Compact;
    let step1 = response(
        vec![call("1", "read", json!({"path": "a"}))],
        FinishReason::ToolCalls,
    );
    let mut step1 = step1;
    step1.pop();
    step1.push(finish(FinishReason::ToolCalls, usage(120_000, 10)));
    let r = run(
        c.clone(),
        vec![
            step1,
            final_text("We read a; next fix b."),
            final_text("done"),
        ],
    );
    let o = &r.outcome;
    assert_eq!(o.termination, Some(Termination::Completed));
    assert_eq!(
        r.sends.iter().map(|s| s.kind).collect::<Vec<_>>(),
        vec![
            RequestKind::Step,
            RequestKind::Compaction,
            RequestKind::Step
        ]
    );
    let compaction = &r.sends[1].conversation;
    assert!(compaction.tools.is_empty());
    assert_eq!(compaction.messages.len(), 4);
    assert_eq!(
        compaction.messages[3],
        Message::User {
            content: COMPACTION_PROMPT.into()
        }
    );
    let after = &r.sends[2].conversation;
    assert_eq!(after.tools.len(), 1);
    assert_eq!(
        after.messages[0],
        Message::User {
            content: COMPACTED_QUESTION.into()
        }
    );
    assert!(
        matches!(&after.messages[1], Message::Assistant { parts } if serde_json::to_string(parts).unwrap().contains("next fix b"))
    );
    assert_eq!(
        after.messages[2],
        Message::User {
            content: CONTINUE_PROMPT.into()
        }
    );
    assert_eq!(o.steps[1].kind, RequestKind::Compaction);

    // A compaction request that itself overflows ends the run.
    let mut summary = final_text("summary");
    summary.pop();
    summary.push(finish(FinishReason::Stop, usage(130_000, 10)));
    let r = run(c, vec![big(120_000, 10), summary, final_text("done")]);
    assert_eq!(r.outcome.termination, Some(Termination::ContextOverflow));
    assert!(r.outcome.termination_detail.unwrap().contains("compaction"));
}

#[test]
fn compaction_modes() {
    use tapeloop::event::ErrorClass;
    use tapeloop::processor::compaction::COMPACTION_SYSTEM;
    use RequestKind::{Compaction, Step};
    let overflow_then_stop = || {
        let mut step = final_text("all done");
        step.pop();
        step.push(finish(FinishReason::Stop, usage(120_000, 10)));
        step
    };
    let overflow_error = || http_error(400, ErrorClass::ContextOverflow, false, None);
    // gpt-4o-mini: 111_616 usable tokens. (mode, responses, finish, requests sent)
    let cases = [
        (
            CompactionMode::Stop,
            vec![big(120_000, 10), final_text("done")],
            Termination::ContextOverflow,
            vec![Step],
        ),
        // opencode with autocompact off never checks: the loop goes on as the finish says.
        (
            CompactionMode::Off,
            vec![big(120_000, 10), final_text("done")],
            Termination::Completed,
            vec![Step, Step],
        ),
        (
            CompactionMode::Off,
            vec![overflow_then_stop()],
            Termination::Completed,
            vec![Step],
        ),
        // Autocompact on: the summary request follows the overflowing step, whatever its
        // finish reason, then the loop continues from the compacted history.
        (
            CompactionMode::Compact,
            vec![big(120_000, 10), final_text("summary"), final_text("done")],
            Termination::Completed,
            vec![Step, Compaction, Step],
        ),
        (
            CompactionMode::Compact,
            vec![
                overflow_then_stop(),
                final_text("summary"),
                final_text("done"),
            ],
            Termination::Completed,
            vec![Step, Compaction, Step],
        ),
        // A provider's overflow error: compacted with `compact`, the turn's end otherwise.
        (
            CompactionMode::Stop,
            vec![overflow_error()],
            Termination::ContextOverflow,
            vec![Step],
        ),
        (
            CompactionMode::Off,
            vec![overflow_error()],
            Termination::ContextOverflow,
            vec![Step],
        ),
        (
            CompactionMode::Compact,
            vec![overflow_error(), final_text("summary"), final_text("done")],
            Termination::Completed,
            vec![Step, Compaction, Step],
        ),
    ];
    for (mode, responses, finish, kinds) in cases {
        let mut c = config();
        c.compaction = mode;
        let r = run(c, responses);
        assert_eq!(r.outcome.termination, Some(finish), "{mode}");
        assert_eq!(
            r.sends.iter().map(|s| s.kind).collect::<Vec<_>>(),
            kinds,
            "{mode}"
        );
        for send in &r.sends {
            let c = &send.conversation;
            if send.kind == Compaction {
                // opencode's compaction agent: its own system prompt, no tools.
                assert_eq!(c.system.as_deref(), Some(COMPACTION_SYSTEM), "{mode}");
                assert!(c.tools.is_empty(), "{mode}");
            } else {
                assert_eq!(
                    c.system.as_deref(),
                    Some("You are a coding agent."),
                    "{mode}"
                );
                assert_eq!(c.tools.len(), 1, "{mode}");
            }
        }
    }
}
