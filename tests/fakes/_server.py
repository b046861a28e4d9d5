"""What the provider fakes of the tests share beyond the server: their deterministic model.

The server itself (`FakeServer`, `Reply`, `Request`, `sse`, `ndjson`) ships in the package
(`assay.collector.demo.fake_server`), where `assay demo`'s fake OpenAI stands on it too.
"""

from __future__ import annotations

from typing import Any

from assay.collector.demo.fake_server import FakeServer, Reply, Request, ndjson, sse

__all__ = [
    "FakeServer",
    "Reply",
    "Request",
    "ndjson",
    "reply_text",
    "sse",
    "thirds",
    "tool_arguments",
    "word_tokens",
]


def word_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: 4 tokens per 3 words."""
    return -(-len(text.split()) * 4 // 3)


# What every fake model does: echo the last user text, or call the first tool offered.
FUNCTION_ARGUMENT = "Paris"  # the value the fake model gives every required parameter


def reply_text(last_user_text: str | None) -> str:
    return f"You said: {last_user_text or 'nothing'}"


def tool_arguments(schema: Any) -> dict[str, Any]:
    """Arguments for a function with JSON schema `schema`: every required parameter set."""
    required = schema.get("required", ()) if isinstance(schema, dict) else ()
    return {name: FUNCTION_ARGUMENT for name in required}


def thirds(text: str) -> list[str]:
    """`text` in three streamed pieces (fewer for very short texts) that join back to it."""
    words = text.split(" ")
    step = max(1, -(-len(words) // 3))
    pieces = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
    return [piece + " " for piece in pieces[:-1]] + pieces[-1:]
