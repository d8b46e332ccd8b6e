//! The run record the report and expectation tests start from: the FORMATS.md example
//! (`read-loop` on an OpenAI cassette, a doom loop at step 3 after one 429 retry). Each test
//! adds what it checks (detector results, cache tokens, ttft).
#![allow(dead_code)]

use tapeloop::event::Usage;
use tapeloop::provider::Api;
use tapeloop::report::{DoomLoopHit, Finish, RetryRecord, RunRecord};

pub fn read_loop_run() -> RunRecord {
    let mut r = RunRecord::new(
        "read-loop",
        "recordings/read-loop.openai.jsonl",
        Api::OpenAiChat,
        "openai",
        "gpt-4o-mini",
        Finish::DoomLoop,
    );
    r.steps = 3;
    r.tool_calls = 3;
    r.doom_loop = Some(DoomLoopHit {
        step: 3,
        tool: "read".into(),
        detector: "opencode".into(),
        ..Default::default()
    });
    r.retries = vec![RetryRecord {
        step: 1,
        attempt: 1,
        status: Some(429),
        delay_ms: 3000,
        reason: "rate limited".into(),
        ..Default::default()
    }];
    r.tokens = Usage {
        input: 1200,
        output: 90,
        reasoning: 0,
        cache_read: 0,
        cache_write: 0,
    };
    r.cost_usd = 0.00024;
    r.sim_ms = 5210;
    r
}
