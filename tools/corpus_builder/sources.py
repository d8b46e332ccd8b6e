"""The real provider streams the corpus uses: where each came from (for the README) and
reading them, including bodies decoded from the kept vcrpy cassettes."""

from __future__ import annotations

import re
from pathlib import Path



REPOS = {
    "pydantic-ai": ("https://github.com/pydantic/pydantic-ai", "4fda38988f29", "MIT"),
    "mirascope": ("https://github.com/Mirascope/mirascope", "41d433578653", "MIT"),
    "llm-anthropic": ("https://github.com/simonw/llm-anthropic", "3ae428f3b514", "Apache-2.0"),
    "vercel": ("https://github.com/vercel/ai", "ed857f50f112", "Apache-2.0"),
}

# file (relative to provider-streams/) -> (repo key, upstream path and interaction)
PROVENANCE = {
    "anthropic/llm-anthropic__tool_chain_thinking.turn1.sse": (
        "llm-anthropic", "tests/cassettes/test_anthropic/test_fixed_version_tool_chain_with_thinking_display_regression.yaml (#0)"),
    "anthropic/llm-anthropic__tool_chain_thinking.turn2.sse": (
        "llm-anthropic", "tests/cassettes/test_anthropic/test_fixed_version_tool_chain_with_thinking_display_regression.yaml (#1)"),
    "anthropic/mirascope__parallel_tool_use.turn1.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/anthropic_claude_sonnet_4_0/stream.yaml (#0)"),
    "anthropic/mirascope__parallel_tool_use.turn2.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/anthropic_claude_sonnet_4_0/stream.yaml (#1)"),
    "anthropic/pydantic-ai__cache_read_compaction.sse": (
        "pydantic-ai", "tests/models/cassettes/test_anthropic/test_anthropic_compaction_usage_with_cache_streaming.yaml (#0)"),
    "openai-chat/mirascope__parallel_tool_calls.turn1.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_completions/stream.yaml (#0)"),
    "openai-chat/mirascope__parallel_tool_calls.turn2.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_completions/stream.yaml (#1)"),
    "openai-chat/mirascope__finish_length.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_max_tokens/openai_gpt_4o_completions/stream.yaml (#0)"),
    "openai-chat/pydantic-ai__parallel_tool_calls_empty_args.sse": (
        "pydantic-ai", "tests/cassettes/test_temporal/test_complex_agent_run.yaml (#0)"),
    "cassettes/pydantic-ai/tests/cassettes/test_temporal/test_complex_agent_run.yaml#1": (
        "pydantic-ai", "tests/cassettes/test_temporal/test_complex_agent_run.yaml (#1), decoded from the kept cassette"),
    "openai-chat/pydantic-ai__tool_args_many_chunks.sse": (
        "pydantic-ai", "tests/cassettes/test_temporal/test_complex_agent_run.yaml (#2)"),
    "openai-responses/pydantic-ai__function_call.turn1.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openai_responses/test_openai_responses_stream.yaml (#0)"),
    "openai-responses/pydantic-ai__function_call.turn2.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openai_responses/test_openai_responses_stream.yaml (#1)"),
    "openai-responses/mirascope__parallel_function_calls.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml (#0)"),
    "cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml#1": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml (#1), decoded from the kept cassette"),
    "openai-responses/pydantic-ai__web_search_cached_tokens.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openai_responses/test_openai_responses_model_web_search_tool_stream.yaml (#0)"),
    "gemini/mirascope__parallel_function_calls.turn1.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/google_gemini_2_5_flash/stream.yaml (#0)"),
    "gemini/mirascope__parallel_function_calls.turn2.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/google_gemini_2_5_flash/stream.yaml (#1)"),
    "gemini/pydantic-ai__thinking_parts.sse": (
        "pydantic-ai", "tests/models/cassettes/test_google/test_google_model_thinking_part_iter.yaml (#0)"),
    "gemini/pydantic-ai__tool_call_thought_signature.turn1.sse": (
        "pydantic-ai", "tests/models/cassettes/test_google/test_google_streaming_tool_call_thought_signature.yaml (#0)"),
    "gemini/pydantic-ai__tool_call_thought_signature.turn2.sse": (
        "pydantic-ai", "tests/models/cassettes/test_google/test_google_streaming_tool_call_thought_signature.yaml (#1)"),
    "http-errors/google__429_retry_info.json": (
        "vercel", "packages/google/src/__fixtures__/google-429-retry-info.json"),
    "openai-compatible/deepseek__reasoning_content.sse": (
        "pydantic-ai", "tests/models/cassettes/test_deepseek/test_deepseek_model_thinking_stream.yaml (#0)"),
    "openai-compatible/groq__error_event_midstream.sse": (
        "pydantic-ai", "tests/models/cassettes/test_groq/test_tool_use_failed_error_streaming.yaml (#0)"),
    "openai-compatible/openrouter__error_chunk_midstream.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openrouter/test_openrouter_stream_error.yaml (#0)"),
}

# --------------------------------------------------------------------------------------------------
# Reading real streams


class Streams:
    def __init__(self, root: Path):
        self.root = root
        self._yaml_checked: set[str] = set()

    def real(self, rel: str) -> str:
        return (self.root / rel).read_bytes().decode("utf-8")

    def from_kept_cassette(self, rel_yaml: str, index: int, check_index: int, check_file: str) -> str:
        """Body of interaction `index` of a kept vcrpy cassette. The decoder is verified first: interaction
        `check_index` must decode to exactly the bytes of `check_file`."""
        text = (self.root / rel_yaml).read_text(encoding="utf-8")
        bodies = vcr_bodies(text)
        if rel_yaml not in self._yaml_checked:
            if bodies[check_index] != self.real(check_file):
                raise SystemExit(f"vcrpy decoder check failed: {rel_yaml} #{check_index} != {check_file}")
            self._yaml_checked.add(rel_yaml)
        return bodies[index]


def vcr_bodies(text: str) -> list[str]:
    """The `body: string:` scalars of a vcrpy YAML cassette, in order. Handles the two forms the kept
    cassettes use for SSE bodies: single-quoted flow scalars and `|+` / `|` block literals."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m_block = re.match(r"^\s*string: \|([+-]?)$", line)
        m_quote = re.match(r"^\s*string: '(.*)$", line)
        if m_block:
            i += 1
            indent = None
            buf: list[str] = []
            while i < len(lines):
                cur = lines[i]
                if cur.strip() == "":
                    buf.append("")
                    i += 1
                    continue
                width = len(cur) - len(cur.lstrip(" "))
                if indent is None:
                    indent = width
                if width < indent:
                    break
                buf.append(cur[indent:])
                i += 1
            body = "\n".join(buf) + "\n"
            if m_block.group(1) != "+":
                body = body.rstrip("\n") + "\n"
            out.append(body)
            continue
        if m_quote:
            buf = [m_quote.group(1)]
            while "'" not in buf[-1].replace("''", ""):
                i += 1
                buf.append(lines[i])
            last = buf[-1]
            j = 0
            while j < len(last):
                if last[j] == "'":
                    if j + 1 < len(last) and last[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            buf[-1] = last[:j]
            if len(buf) == 1:
                body = buf[0]
            else:  # YAML line folding: a break is a space, each empty line a newline
                segs = [buf[0].rstrip(" \t")] + [s.strip(" \t") for s in buf[1:-1]] + [buf[-1].lstrip(" \t")]
                body = segs[0]
                empties = 0
                for k, seg in enumerate(segs[1:], 1):
                    if seg == "" and k != len(segs) - 1:
                        empties += 1
                        continue
                    body += ("\n" * empties if empties else " ") + seg
                    empties = 0
            out.append(body.replace("''", "'"))
        i += 1
    return out
