"""A small service using the `anthropic` client, instrumented with the one-line import.

It makes a fixed set of Anthropic calls against ASSAY_TEST_BASE_URL (a prompt cached, then
read from the cache; a tool call; a streamed answer through `messages.stream`; an overloaded
error; a stream cut by an `error` event after `message_start`) and prints, as JSON, what the
end-to-end test needs to check their rows.
"""

from __future__ import annotations

import json
import os

import anthropic

import assay.instrumentation.auto  # noqa: F401
from assay.instrumentation import force_flush

MODEL = "claude-haiku-4-5"
SYSTEM = [
    {
        "type": "text",
        "text": "You are the support assistant of a bank. Answer briefly. " * 40,
        "cache_control": {"type": "ephemeral"},
    }
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def main() -> None:
    client = anthropic.Anthropic(
        base_url=os.environ["ASSAY_TEST_BASE_URL"], api_key="k", max_retries=0
    )
    ask = [{"role": "user", "content": "How do I reset my card PIN?"}]
    out: dict[str, object] = {}
    for name in ("cache_write", "cache_read"):
        message = client.messages.create(model=MODEL, max_tokens=300, system=SYSTEM, messages=ask)
        out[name] = {"id": message.id, "usage": message.usage.model_dump()}
    tool = client.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Lyon?"}],
    )
    block = tool.content[0]
    out["tool"] = {"id": tool.id, "tool_use_id": block.id, "input": block.input}  # type: ignore[union-attr]
    with client.messages.stream(model=MODEL, max_tokens=300, messages=ask) as stream:
        final = stream.get_final_message()
    out["stream"] = {"id": final.id, "usage": final.usage.model_dump()}
    try:
        client.messages.create(model="fail-529", max_tokens=10, messages=ask)
    except anthropic.APIStatusError as exc:
        out["error"] = type(exc).__name__
    try:  # message_start (with the input usage) arrives, then an `error` event ends the stream
        with client.messages.stream(
            model=MODEL, max_tokens=300, messages=ask, extra_headers={"x-fake-error": "midstream"}
        ) as stream:
            stream.get_final_message()
    except anthropic.APIStatusError as exc:
        out["midstream"] = str(exc)
    force_flush()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
