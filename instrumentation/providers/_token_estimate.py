"""Token counts estimated from text, for calls whose API reported no usage.

Only used where no usage can be had (an OpenAI-compatible server that refuses or ignores
`stream_options.include_usage`, a LiteLLM stream whose provider sent none): the span then
carries these counts with `assay.usage.source = estimated`, so a cost is shown and known
to be approximate. No tokenizer ships with Assay (the usual ones fetch their vocabularies
from the network), so the estimate is OpenAI's rule of thumb: about four characters of
English text a token, and three tokens of framing for each chat message.
"""

from __future__ import annotations

from typing import Any

from assay.instrumentation.providers._messages import field

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3

# The keys of a chat message (or of its parts and tool calls) that hold text the model reads.
_TEXT_KEYS = ("content", "text", "refusal", "arguments", "tool_calls", "function", "name")


def tokens_of(chars: int) -> int:
    """The estimated tokens of `chars` characters of text (rounded up)."""
    return -(-chars // CHARS_PER_TOKEN)


def text_chars(value: Any, depth: int = 0) -> int:
    """Characters of text in a message's content: strings, lists of parts, tool calls.

    Images and audio (URLs, base64 data) are not text and count nothing.
    """
    if isinstance(value, str):
        return len(value)
    if depth > 8 or value is None:
        return 0
    if isinstance(value, (list, tuple)):
        return sum(text_chars(item, depth + 1) for item in value)
    return sum(text_chars(field(value, key), depth + 1) for key in _TEXT_KEYS)


def input_tokens(messages: Any) -> int | None:
    """Estimated input tokens of a chat request's `messages` (or a completion's `prompt`);
    None when there is nothing to count."""
    if isinstance(messages, str):
        return tokens_of(len(messages))
    if not isinstance(messages, (list, tuple)) or not messages:
        return None
    if all(isinstance(prompt, str) for prompt in messages):  # a completion's prompts
        return tokens_of(sum(len(prompt) for prompt in messages))
    if all(type(token) is int for token in messages):  # a completion's prompt as token ids
        return len(messages)
    chars = sum(text_chars(message) for message in messages)
    return tokens_of(chars) + TOKENS_PER_MESSAGE * len(messages)
