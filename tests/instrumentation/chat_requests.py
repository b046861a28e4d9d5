"""Requests the chat-style client tests send, and how they read JSON attributes back."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

QUESTION = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "Why is the sky blue?"},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def json_attribute(span: ReadableSpan, name: str) -> Any:
    """A JSON-valued attribute (messages, tool definitions) decoded."""
    return json.loads(str(span.attributes[name]))


def text_messages(messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """`messages` of plain text in the GenAI shape the spans carry."""
    return [
        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in messages
    ]
