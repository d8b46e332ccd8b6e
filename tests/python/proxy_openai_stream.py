"""Stream a chat completion with tool calls through `tapeloop record --proxy` with the official
openai SDK, and print what the client received.

Usage: proxy_openai_stream.py BASE_URL API_KEY
Prints one JSON object: {"raw": <the raw SSE body text as the client read it>,
"chunks": <the parsed ChatCompletionChunk dicts>, "tool_calls": {index: {name, arguments}}}.
"""

import json
import sys

import openai


def main() -> None:
    base_url, api_key = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    request = dict(
        model="gpt-4o",
        stream=True,
        messages=[
            {"role": "system", "content": "Use parallel tool calling."},
            {
                "role": "user",
                "content": "Please retrieve the secrets associated with each of these passwords: mellon,radiance",
            },
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "secret_retrieval_tool",
                    "description": "A tool that requires a password to retrieve a secret.",
                    "parameters": {
                        "type": "object",
                        "properties": {"password": {"type": "string"}},
                        "required": ["password"],
                    },
                },
            }
        ],
    )
    # 1) The raw bytes, exactly as the HTTP client read them.
    with client.chat.completions.with_streaming_response.create(**request) as response:
        raw = b"".join(response.http_response.iter_bytes()).decode("utf-8")
    # 2) The SDK's own parsing of a second, identical request.
    chunks = []
    calls = {}
    for chunk in client.chat.completions.create(**request):
        chunks.append(chunk.model_dump(mode="json", exclude_unset=True))
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(str(tc.index), {"name": "", "arguments": ""})
                if tc.function and tc.function.name:
                    entry["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    entry["arguments"] += tc.function.arguments
    print(json.dumps({"raw": raw, "chunks": chunks, "tool_calls": calls}))


if __name__ == "__main__":
    main()
