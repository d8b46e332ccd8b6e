"""The corpus itself: every cassette the bundled scenarios replay, as data."""

from __future__ import annotations

import json
import random
from typing import Callable

from corpus_builder.sources import Streams
from corpus_builder.parse import Call
from corpus_builder.synth import anthropic_stream, compact, gemini_stream, openai_chat_stream, pretty_error, rand_id
from corpus_builder.cassette import Attempt, CassetteSpec, Tool


CODING_SYSTEM = "You are a coding agent working in a Rust repository. Use the tools to inspect and change files."

READ = Tool("read", "Read a file from the workspace", {
    "type": "object", "properties": {"path": {"type": "string"}, "offset": {"type": "integer"},
                                     "limit": {"type": "integer"}}, "required": ["path"]})
GREP = Tool("grep", "Search the workspace for a regular expression", {
    "type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]})
SECRET = Tool("secret_retrieval_tool", "A tool that requires a password to retrieve a secret.", {
    "type": "object", "properties": {"password": {"title": "Password", "type": "string"}},
    "required": ["password"], "additionalProperties": False})
SECRETS = {"mellon": "Welcome to Moria!", "radiance": "Life before Death"}
MIRASCOPE_SYSTEM = "Use parallel tool calling."
MIRASCOPE_PROMPT = "Please retrieve the secrets associated with each of these passwords: mellon,radiance"


def by_tool(table: dict) -> Callable[[int, Call], tuple[str, bool]]:
    """Results keyed by tool name; a value may be a function of the parsed arguments."""
    def answer(_step: int, call: Call):
        v = table[call.name]
        if callable(v):
            v = v(json.loads(call.args))
        return (v, False)
    return answer


def by_step(table: dict) -> Callable[[int, Call], tuple[str, bool]]:
    def answer(step: int, _call: Call):
        return (table[step], False)
    return answer


def secret(args):
    return SECRETS[args["password"]]


def corpus(s: Streams) -> list[CassetteSpec]:
    out: list[CassetteSpec] = []

    def real(rel: str) -> Attempt:
        return Attempt(s.real(rel), origin=rel)

    # ---- doom-parallel-identical: three identical calls in ONE response (opencode's only catch) --------
    rng = random.Random("synthetic:doom-parallel-identical")
    model = "claude-sonnet-4-20250514"
    lib_rs = "mod parser;\nuse crate::lexer::Token;\n\npub fn parse(src: &str) -> Vec<Token> {\n    parser::parse(src)\n}\n"
    ids = ["toolu_01" + rand_id(rng, 22) for _ in range(3)]
    step1 = anthropic_stream(rng, model, blocks=[("text", "I'll read src/lib.rs to check the imports.")] +
                             [("tool_use", i, "read", '{"path": "src/lib.rs"}') for i in ids],
                             stop_reason="tool_use", usage=(1480, 142))
    step2 = anthropic_stream(rng, model, blocks=[("text", "The build fails because src/lib.rs imports "
                             "`crate::lexer::Token` but the crate never declares `mod lexer;`. Add `mod lexer;` "
                             "next to `mod parser;`.")], stop_reason="end_turn", usage=(1962, 58))
    out.append(CassetteSpec(
        "doom-parallel-identical.anthropic.jsonl", ["doom-parallel-identical"], "anthropic", "anthropic", model,
        CODING_SYSTEM, "Why does `cargo build` fail with error E0432 in src/lib.rs?", [READ, GREP],
        [[Attempt(step1, origin="synthetic")], [Attempt(step2, origin="synthetic")]],
        by_tool({"read": lib_rs}), synthetic=True,
        changes="synthetic (no real stream holds three identical parallel calls): step 1 = text + three identical "
                "`read` tool_use blocks; step 2 = final text, so `doom_action = \"allow\"` can finish"))

    # ---- repeated real tool turn across steps (opencode misses; seed/consecutive fire; max-steps) ------
    t1, t2 = "anthropic/llm-anthropic__tool_chain_thinking.turn1.sse", "anthropic/llm-anthropic__tool_chain_thinking.turn2.sse"
    out.append(CassetteSpec(
        "doom-sequential-repeat.anthropic.jsonl", ["doom-sequential-repeat", "max-steps"], "anthropic", "anthropic",
        "claude-haiku-4-5-20251001", None,
        "Use the fixed_version tool to find out the version, then tell me the version and make a short joke about "
        "it. Think about it first.",
        [Tool("fixed_version", "Return the fixed version number", {"type": "object", "properties": {}})],
        [[real(t1)] for _ in range(6)] + [[real(t2)]],
        by_tool({"fixed_version": "0.32a0"}), thinking=True,
        changes="re-sequenced: the real thinking + tool_use turn 1 repeated for steps 1-6 (same tool_use id "
                "every time), then the real final-text turn 2 as step 7; chunked; request bodies rebuilt"))

    # ---- A,B,A,B,A,B cycle ---------------------------------------------------------------------------
    rng = random.Random("synthetic:doom-cycle")
    model = "gpt-4o-mini"
    steps = []
    for n in range(6):
        call = ("read", '{"path":"src/config.rs"}') if n % 2 == 0 else ("grep", '{"pattern":"fn parse_config"}')
        steps.append([Attempt(openai_chat_stream(rng, model, calls=[("call_" + rand_id(rng, 24), *call)],
                                                 usage=(612 + 95 * n, 18)), origin="synthetic")])
    steps.append([Attempt(openai_chat_stream(rng, model, text="`parse_config` is defined in src/config.rs:12 and "
                                             "panics on an empty file because it unwraps the first line. Return "
                                             "`Config::default()` when the input is empty.", usage=(1240, 41)),
                          origin="synthetic")])
    config_rs = "use std::collections::HashMap;\n\npub struct Config { pub values: HashMap<String, String> }\n\n" \
                "pub fn parse_config(text: &str) -> Config {\n    let first = text.lines().next().unwrap();\n" \
                "    todo!(\"{first}\")\n}\n"
    out.append(CassetteSpec(
        "doom-cycle.openai-chat.jsonl", ["doom-cycle"], "openai-chat", "openai", model, CODING_SYSTEM,
        "Find where parse_config is defined and fix the panic on an empty config file.", [READ, GREP], steps,
        by_tool({"read": config_rs, "grep": "src/config.rs:5:pub fn parse_config(text: &str) -> Config {"}),
        synthetic=True,
        changes="synthetic (needs different calls per step): read/grep alternating for 6 steps with fresh call "
                "ids, then a final text step"))

    # ---- key-reordered identical arguments in one response -------------------------------------------
    rng = random.Random("synthetic:doom-key-reorder")
    main_rs = "fn main() {\n    let args: Vec<String> = std::env::args().collect();\n    tapeloop::cli::run(args);\n}\n"
    calls = [("call_" + rand_id(rng, 24), "read", a) for a in
             ('{"path":"src/main.rs","limit":40}', '{"limit":40,"path":"src/main.rs"}', '{"path":"src/main.rs","limit":40}')]
    out.append(CassetteSpec(
        "doom-key-reorder.openai-chat.jsonl", ["doom-key-reorder"], "openai-chat", "openai", model, CODING_SYSTEM,
        "Show me the first 40 lines of src/main.rs.", [READ],
        [[Attempt(openai_chat_stream(rng, model, calls=calls, usage=(402, 71)), origin="synthetic")],
         [Attempt(openai_chat_stream(rng, model, text="src/main.rs has only 4 lines: `main` collects the arguments "
                                     "and calls `tapeloop::cli::run`.", usage=(598, 24)), origin="synthetic")]],
        by_tool({"read": main_rs}), synthetic=True,
        changes="synthetic (no real stream has reordered keys): one response with three `read` calls whose "
                "arguments differ only in key order, then a final text step"))

    # ---- repeated identical parallel fan-out (real) ---------------------------------------------------
    f1, f2 = "openai-chat/mirascope__parallel_tool_calls.turn1.sse", "openai-chat/mirascope__parallel_tool_calls.turn2.sse"
    out.append(CassetteSpec(
        "doom-fanout.openai-chat.jsonl", ["doom-fanout"], "openai-chat", "openai", "gpt-4o",
        MIRASCOPE_SYSTEM, MIRASCOPE_PROMPT, [SECRET], [[real(f1)] for _ in range(4)] + [[real(f2)]],
        by_tool({"secret_retrieval_tool": secret}),
        changes="re-sequenced: the real two-call parallel turn 1 repeated for steps 1-4 (same call ids every "
                "time), then the real final-text turn 2 as step 5; chunked; request bodies rebuilt"))

    # ---- no progress: same call, same result (real Responses) -----------------------------------------
    r1, r2 = "openai-responses/pydantic-ai__function_call.turn1.sse", "openai-responses/pydantic-ai__function_call.turn2.sse"
    capital = Tool("get_capital", "Get the capital of a country", {
        "type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"],
        "additionalProperties": False})
    out.append(CassetteSpec(
        "doom-no-progress.openai-responses.jsonl", ["doom-no-progress"], "openai-responses", "openai",
        "gpt-4o", None, "What is the capital of France?", [capital],
        [[real(r1)] for _ in range(4)] + [[real(r2)]], by_tool({"get_capital": "Paris"}),
        changes="re-sequenced: the real function_call turn 1 repeated for steps 1-4 (same call_id every time, "
                "same tool output `Paris`), then the real text turn 2 as step 5; chunked"))

    # ---- text repeat (Gemini) -------------------------------------------------------------------------
    rng = random.Random("synthetic:text-repeat")
    model = "gemini-2.5-flash"
    search = Tool("search_logs", "Search the service logs", {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})
    queries = ["7f3a", "request_id=7f3a", "7f3a status=500", "7f3a error"]
    steps = [[Attempt(gemini_stream(rng, model, text="Let me search the logs for the failing request.",
                                    calls=[("search_logs", {"query": q})], usage=(310 + 40 * n, 24)),
                      origin="synthetic")] for n, q in enumerate(queries)]
    steps.append([Attempt(gemini_stream(rng, model, text="I could not find request 7f3a in the logs; it may have "
                                        "been served by another region.", calls=[], usage=(480, 23)),
                          origin="synthetic")])
    out.append(CassetteSpec(
        "text-repeat.gemini.jsonl", ["text-repeat"], "gemini", "google", model, "You are an on-call assistant.",
        "Find out why request 7f3a returned HTTP 500.", [search], steps,
        by_tool({"search_logs": "no matches"}), synthetic=True,
        changes="synthetic (needs the same text with different calls): 4 steps each saying the same sentence "
                "and calling search_logs with a different query, then a final text step"))

    # ---- polling a job whose status changes ------------------------------------------------------------
    rng = random.Random("synthetic:polling")
    model = "gpt-4o-mini"
    check = Tool("check_job", "Get the status of a deployment job", {
        "type": "object", "properties": {"job_id": {"type": "string"}}, "required": ["job_id"]})
    statuses = {1: '{"status":"running","progress":12}', 2: '{"status":"running","progress":48}',
                3: '{"status":"running","progress":91}',
                4: '{"status":"succeeded","progress":100,"url":"https://staging.example.com"}'}
    steps = [[Attempt(openai_chat_stream(rng, model, calls=[("call_" + rand_id(rng, 24), "check_job",
                                                            '{"job_id":"job-7f3a"}')], usage=(380 + 30 * n, 17)),
                      origin="synthetic")] for n in range(4)]
    steps.append([Attempt(openai_chat_stream(rng, model, text="Job job-7f3a succeeded: build 512 is live at "
                                             "https://staging.example.com.", usage=(520, 22)), origin="synthetic")])
    out.append(CassetteSpec(
        "polling-job-status.openai-chat.jsonl", ["polling-job-status", "polling-job-status-consecutive"],
        "openai-chat", "openai", model, "You are a deployment assistant.",
        "Job job-7f3a is deploying build 512 to staging. Tell me when it is live.", [check], steps,
        by_step(statuses), synthetic=True,
        changes="synthetic (needs a changing tool result per step): check_job with the same arguments 4 times, "
                "fresh call ids, tool lines carrying progress 12/48/91/succeeded, then a final text step"))

    # ---- re-running tests after a fix (productive repetition) -----------------------------------------
    rng = random.Random("synthetic:rerun-tests")
    model = "claude-sonnet-4-20250514"
    run_tests = Tool("run_tests", "Run the test suite", {"type": "object", "properties": {}})
    edit = Tool("edit", "Replace text in a file", {
        "type": "object", "properties": {"path": {"type": "string"}, "old": {"type": "string"},
                                         "new": {"type": "string"}}, "required": ["path", "old", "new"]})
    plan = [
        ("I'll run the test suite first.", "run_tests", "{}"),
        ("The empty-input case panics on `unwrap`. Fixing it.", "edit",
         '{"path": "src/config.rs", "old": "text.lines().next().unwrap()", "new": "match text.lines().next() { Some(l) => l, None => return Config::default() }"}'),
        ("Re-running the tests.", "run_tests", "{}"),
        ("One failure left: the default is missing a key.", "edit",
         '{"path": "src/config.rs", "old": "values: HashMap::new()", "new": "values: HashMap::from([(\\"mode\\".into(), \\"dev\\".into())])"}'),
        ("Running the tests again to confirm.", "run_tests", "{}"),
    ]
    steps = []
    for n, (text, tool, args) in enumerate(plan):
        steps.append([Attempt(anthropic_stream(rng, model, blocks=[("text", text), ("tool_use", "toolu_01" + rand_id(rng, 22), tool, args)],
                                               stop_reason="tool_use", usage=(2100 + 260 * n, 60 + 10 * n)),
                              origin="synthetic")])
    steps.append([Attempt(anthropic_stream(rng, model, blocks=[("text", "All 42 tests pass. `parse_config` now returns "
                                           "the default config for an empty file.")], stop_reason="end_turn",
                                           usage=(3500, 31)), origin="synthetic")])
    test_results = {1: "running 42 tests\ntest config::tests::empty_file ... FAILED\ntest config::tests::defaults ... FAILED\n"
                       "test result: FAILED. 40 passed; 2 failed",
                    2: "edited src/config.rs (1 replacement)",
                    3: "running 42 tests\ntest config::tests::defaults ... FAILED\ntest result: FAILED. 41 passed; 1 failed",
                    4: "edited src/config.rs (1 replacement)",
                    5: "running 42 tests\ntest result: ok. 42 passed; 0 failed"}
    out.append(CassetteSpec(
        "rerun-tests-after-fix.anthropic.jsonl", ["rerun-tests-after-fix"], "anthropic", "anthropic", model,
        CODING_SYSTEM, "The test suite fails. Fix it.", [run_tests, edit], steps, by_step(test_results),
        synthetic=True,
        changes="synthetic (needs a test/fix/test sequence): run_tests, edit, run_tests, edit, run_tests with "
                "changing results, then a final text step"))

    # ---- 429 with retry-after, then success (real success bodies) -------------------------------------
    rate_body = pretty_error({"error": {
        "message": "Rate limit reached for gpt-4o in organization org-[REDACTED] on requests per min (RPM): "
                   "Limit 500, Used 500, Requested 1. Please try again in 6.2s. Visit "
                   "https://platform.openai.com/account/rate-limits to learn more.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded"}})
    out.append(CassetteSpec(
        "retry-429.openai-chat.jsonl", ["retry-429-retry-after"], "openai-chat", "openai", "gpt-4o",
        MIRASCOPE_SYSTEM, MIRASCOPE_PROMPT, [SECRET],
        [[Attempt(rate_body, status=429, origin="synthetic 429", headers={
            "content-type": "application/json; charset=utf-8", "retry-after": "7",
            "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "6.2s"}), real(f1)], [real(f2)]],
        by_tool({"secret_retrieval_tool": secret}),
        changes="step 1 attempt 1 is a synthetic HTTP 429 (no real 429 with headers exists, notes §8) with "
                "`retry-after: 7`; attempt 2 and step 2 are the real mirascope turns; chunked"))

    # ---- Anthropic 529, then an in-stream overloaded_error, then success --------------------------------
    rng = random.Random("synthetic:overloaded")
    model = "claude-sonnet-4-20250514"
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                  "request_id": "req_011C" + rand_id(rng, 20)}
    midstream = anthropic_stream(rng, model, blocks=[("text", "I'll retrieve the secrets for both passwords you provided.")],
                                 stop_reason=None, usage=(416, 1),
                                 error={"type": "error", "error": {"details": None, "type": "overloaded_error",
                                                                   "message": "Overloaded"},
                                        "request_id": "req_011C" + rand_id(rng, 20)},
                                 error_after_deltas=3)
    a1, a2 = "anthropic/mirascope__parallel_tool_use.turn1.sse", "anthropic/mirascope__parallel_tool_use.turn2.sse"
    out.append(CassetteSpec(
        "retry-overloaded.anthropic.jsonl", ["retry-anthropic-overloaded"], "anthropic", "anthropic", model,
        MIRASCOPE_SYSTEM, MIRASCOPE_PROMPT, [SECRET],
        [[Attempt(compact(overloaded), status=529, origin="synthetic 529",
                  headers={"content-type": "application/json", "x-should-retry": "true"}),
          Attempt(midstream, origin="synthetic overloaded_error mid-stream"), real(a1)], [real(a2)]],
        by_tool({"secret_retrieval_tool": secret}),
        changes="step 1 attempt 1: synthetic HTTP 529 overloaded_error JSON; attempt 2: synthetic 200 stream "
                "cut by `event: error` overloaded_error after 3 text deltas (no real recording exists, notes §2/§8); "
                "attempt 3 and step 2: the real mirascope turns"))

    # ---- 5xx storm that exhausts the retries --------------------------------------------------------------
    model = "gpt-4o-mini"
    e500 = pretty_error({"error": {"message": "The server had an error while processing your request. Sorry about that!",
                                   "type": "server_error", "param": None, "code": None}})
    e503 = pretty_error({"error": {"message": "The engine is currently overloaded, please try again later",
                                   "type": "server_error", "param": None, "code": None}})
    e502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            "</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
    storm = []
    for n in range(11):
        kind = n % 3
        if kind == 0:
            storm.append(Attempt(e500, status=500, origin="synthetic 500",
                                 headers={"content-type": "application/json; charset=utf-8"}))
        elif kind == 1:
            storm.append(Attempt(e502, status=502, origin="synthetic 502",
                                 headers={"content-type": "text/html", "server": "cloudflare"}))
        else:
            storm.append(Attempt(e503, status=503, origin="synthetic 503",
                                 headers={"content-type": "application/json; charset=utf-8"}))
    issues = Tool("list_issues", "List open issues with a label", {
        "type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]})
    out.append(CassetteSpec(
        "retry-5xx-storm.openai-chat.jsonl", ["retry-5xx-exhausted", "retry-5xx-exhausted-seed"], "openai-chat",
        "openai", model, "You are a triage assistant.", "Summarise the open issues labelled bug.", [issues],
        [storm], None, synthetic=True,
        changes="synthetic (no real 5xx recording exists, notes §8): 11 failed attempts of step 1 cycling "
                "500 / 502 (Cloudflare HTML) / 503, no retry-after headers; no success"))

    # ---- connection reset mid-stream, then success (real bytes) -------------------------------------------
    body1 = s.real(r1)
    cut = body1.index("event: response.function_call_arguments.done") + 37
    out.append(CassetteSpec(
        "retry-reset.openai-responses.jsonl", ["retry-connection-reset"], "openai-responses", "openai",
        "gpt-4o", None, "What is the capital of France?", [capital],
        [[Attempt(body1, outcome="reset", cut_at=len(body1[:cut].encode()), origin=r1), real(r1)], [real(r2)]],
        by_tool({"get_capital": "Paris"}),
        changes="step 1 attempt 1: the real turn 1 bytes cut 37 bytes into the `function_call_arguments.done` "
                "event, `end.outcome = reset` (a synthetic cut of real bytes); attempt 2 and step 2: the real turns"))

    # ---- context overflow on a real three-step loop -----------------------------------------------------
    c_yaml = "cassettes/pydantic-ai/tests/cassettes/test_temporal/test_complex_agent_run.yaml"
    c0, c2 = "openai-chat/pydantic-ai__parallel_tool_calls_empty_args.sse", "openai-chat/pydantic-ai__tool_args_many_chunks.sse"
    weather = Attempt(s.from_kept_cassette(c_yaml, 1, 0, c0), origin=c_yaml + "#1")
    obj = lambda props, req: {"type": "object", "properties": props, "required": req, "additionalProperties": False}
    out.append(CassetteSpec(
        "complex-agent-run.openai-chat.jsonl", ["context-overflow"], "openai-chat", "openai", "gpt-4o",
        None, "Tell me: the capital of the country; the weather there; the product name",
        [Tool("get_country", "", obj({}, [])), Tool("get_product_name", "", obj({}, [])),
         Tool("get_weather", "", obj({"city": {"type": "string"}}, ["city"])),
         Tool("final_result", "The final response which ends this conversation", obj({"answers": {
             "type": "array", "items": obj({"label": {"type": "string"}, "answer": {"type": "string"}},
                                           ["label", "answer"])}}, ["answers"]))],
        [[real(c0)], [weather], [real(c2)]],
        by_tool({"get_country": "Mexico", "get_product_name": "Pydantic AI", "get_weather": "sunny",
                 "final_result": "Final result processed."}),
        changes="real three-step loop in recorded order (interaction #1 decoded from the kept vcrpy cassette, "
                "checked byte-exact against #0); tool outputs from the recorded follow-up requests; chunked"))

    # ---- one task in all four wire APIs (tapeloop compare) ---------------------------------------------
    g1, g2 = "gemini/mirascope__parallel_function_calls.turn1.sse", "gemini/mirascope__parallel_function_calls.turn2.sse"
    rs_yaml = "cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml"
    rs1 = "openai-responses/mirascope__parallel_function_calls.sse"
    rs2 = Attempt(s.from_kept_cassette(rs_yaml, 1, 0, rs1), origin=rs_yaml + "#1")
    common = dict(system=MIRASCOPE_SYSTEM, prompt=MIRASCOPE_PROMPT, tools=[SECRET],
                  results=by_tool({"secret_retrieval_tool": secret}))
    out.append(CassetteSpec("call-with-tools.anthropic.jsonl", ["call-with-tools"], "anthropic", "anthropic",
                            "claude-sonnet-4-20250514", steps=[[real(a1)], [real(a2)]],
                            changes="real turns 1 and 2 in recorded order; chunked", **common))
    out.append(CassetteSpec("call-with-tools.openai-chat.jsonl", ["call-with-tools"], "openai-chat", "openai",
                            "gpt-4o", steps=[[real(f1)], [real(f2)]],
                            changes="real turns 1 and 2 in recorded order; chunked", **common))
    out.append(CassetteSpec("call-with-tools.openai-responses.jsonl", ["call-with-tools"], "openai-responses",
                            "openai", "gpt-4o", steps=[[real(rs1)], [rs2]],
                            changes="real turn 1; turn 2 decoded from the kept vcrpy cassette (#1), decoder checked "
                                    "byte-exact against #0; chunked", **common))
    out.append(CassetteSpec("call-with-tools.gemini.jsonl", ["call-with-tools"], "gemini", "google",
                            "gemini-2.5-flash", steps=[[real(g1)], [real(g2)]],
                            changes="real turns 1 and 2 in recorded order; CRLF framing kept; Gemini sends no call "
                                    "ids, so the tool lines' call_ids are the builder's; chunked", **common))

    # ---- reasoning models ---------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "reasoning-thinking.anthropic.jsonl", ["reasoning-anthropic-thinking"], "anthropic", "anthropic",
        "claude-haiku-4-5-20251001", None,
        "Use the fixed_version tool to find out the version, then tell me the version and make a short joke about "
        "it. Think about it first.",
        [Tool("fixed_version", "Return the fixed version number", {"type": "object", "properties": {}})],
        [[real(t1)], [real(t2)]], by_tool({"fixed_version": "0.32a0"}), thinking=True, mid_utf8=True,
        changes="real turns 1 and 2 in recorded order; chunked, with reads allowed to split the emoji in turn 2 "
                "(those chunks are `b64`)"))
    out.append(CassetteSpec(
        "reasoning-deepseek.openai-chat.jsonl", ["reasoning-deepseek"], "openai-chat", "deepseek", "deepseek-reasoner",
        None, "Hello", [], [[real("openai-compatible/deepseek__reasoning_content.sse")]], None,
        changes="real single turn; chunked"))
    out.append(CassetteSpec(
        "reasoning-thoughts.gemini.jsonl", ["reasoning-gemini-thoughts"], "gemini", "google", "gemini-2.5-pro",
        "You are a helpful assistant.", "How do I cross the street?", [],
        [[real("gemini/pydantic-ai__thinking_parts.sse")]], None, thinking=True,
        changes="real single turn (thought parts, then answer); chunked"))

    # ---- prompt caching --------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "prompt-cache.anthropic.jsonl", ["prompt-cache-anthropic"], "anthropic", "anthropic", "claude-sonnet-4-6",
        "You are a helpful assistant. Be very brief.",
        "Remember this context: " + "The quick brown fox jumps over the lazy dog. " * 20 + "Now just say hello.", [],
        [[real("anthropic/pydantic-ai__cache_read_compaction.sse")]], None,
        changes="real single turn; chunked; prompt shortened (the recorded one repeats the sentence far more)"))
    out.append(CassetteSpec(
        "prompt-cache.openai-responses.jsonl", ["prompt-cache-responses"], "openai-responses", "openai",
        "gpt-5", "You are a helpful assistant.", "What is the weather in San Francisco today?", [],
        [[real("openai-responses/pydantic-ai__web_search_cached_tokens.sse")]], None,
        provider_tools=[{"type": "web_search"}], changes="real single turn; chunked"))

    # ---- provider errors ----------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "groq-tool-use-failed.openai-chat.jsonl", ["groq-tool-use-failed"], "openai-chat", "groq",
        "openai/gpt-oss-120b", "Be concise. Never use pretty double quotes, just regular ones.",
        'Please call the "get_something_by_name" tool with non-existent parameters to test error handling; on '
        "the second try you can use valid args",
        [Tool("get_something_by_name", "", {"type": "object", "properties": {"name": {"type": "string"}},
                                            "required": ["name"], "additionalProperties": False})],
        [[real("openai-compatible/groq__error_event_midstream.sse")]], None,
        changes="real single interaction (reasoning deltas, then `event: error` tool_use_failed, then EOF); chunked"))
    out.append(CassetteSpec(
        "openrouter-error-chunk.openai-chat.jsonl", ["openrouter-error-chunk"], "openai-chat", "openrouter",
        "minimax/minimax-m2:free", None, "Hello there", [],
        [[real("openai-compatible/openrouter__error_chunk_midstream.sse")]], None,
        changes="real single interaction (keep-alive comments, two `length` finish chunks, a chunk with a "
                "top-level error {code 400}, [DONE]); chunked"))

    # ---- finish_reason length ------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "finish-length.openai-chat.jsonl", ["finish-length"], "openai-chat", "openai", "gpt-4o", None,
        "List all U.S. states.", [], [[real("openai-chat/mirascope__finish_length.sse")]], None,
         max_tokens=50, changes="real single turn; chunked"))

    # ---- Gemini 429 whose retry hint lives in the body ------------------------------------------------------
    gt1, gt2 = "gemini/pydantic-ai__tool_call_thought_signature.turn1.sse", "gemini/pydantic-ai__tool_call_thought_signature.turn2.sse"
    out.append(CassetteSpec(
        "retry-429-body-hint.gemini.jsonl", ["retry-gemini-429-body-hint"], "gemini", "google", "gemini-3-pro-preview",
        None, "What is the capital of the user country? Call the tool",
        [Tool("get_country", "", {"type": "object", "properties": {}, "additionalProperties": False})],
        [[Attempt(s.real("http-errors/google__429_retry_info.json"), status=429,
                  origin="http-errors/google__429_retry_info.json",
                  headers={"content-type": "application/json; charset=UTF-8"}), real(gt1)], [real(gt2)]],
        by_tool({"get_country": "Mexico"}),
        changes="step 1 attempt 1: the real Gemini 429 body (RetryInfo retryDelay 34.4s in the body) under "
                "synthetic headers without retry-after; attempt 2 and step 2: the real pydantic-ai turns; chunked"))
    return out
