"""OpenLIT: the current GenAI names for models and usage, plus its own cost
(`gen_ai.usage.cost`, from a price list it downloads: 0 when that failed), time to first token in
`gen_ai.server.time_to_first_token` (seconds) and the stream flag in `gen_ai.request.is_stream`.
Messages are on the span (`gen_ai.input.messages`) and in a
`gen_ai.client.inference.operation.details` log record; its older releases put them in
`gen_ai.content.prompt` / `gen_ai.content.completion` span events as plain text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from assay.collector.normalize.dialects import genai
from assay.collector.normalize.dialects._shape import (
    Rename,
    apply_renames,
    chat_message,
    merged,
)
from assay.collector.normalize.dialects.genai import GenAIEvent
from assay.instrumentation import semconv as sc

NAME = "openlit"

SDK_NAME = "telemetry.sdk.name"  # OpenLIT stamps its spans with its name
COST = "gen_ai.usage.cost"
PROMPT_EVENT, PROMPT = "gen_ai.content.prompt", "gen_ai.prompt"
COMPLETION_EVENT, COMPLETION = "gen_ai.content.completion", "gen_ai.completion"

# Content: the prompt and completion of its older releases, as event attributes or as span
# attributes under `gen_ai.content.*`.
CONTENT_KEYS = frozenset({PROMPT, COMPLETION})
CONTENT_PREFIXES = ("gen_ai.content.",)

RENAMES: dict[str, str | Rename] = {
    COST: sc.COST_USD,
    "gen_ai.server.time_to_first_token": sc.RESPONSE_TIME_TO_FIRST_CHUNK,
    "gen_ai.request.is_stream": sc.REQUEST_STREAM,
    "gen_ai.usage.prompt_tokens": sc.USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": sc.USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.reasoning_tokens": sc.USAGE_REASONING_OUTPUT_TOKENS,
}


def matches(attrs: Mapping[str, Any]) -> bool:
    # OpenLIT stamps every span it makes, vector stores and frameworks too: calls only.
    return (attrs.get(SDK_NAME) == NAME or COST in attrs) and genai.matches(attrs)


def translate(attrs: Mapping[str, Any], events: Iterable[GenAIEvent] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    consumed = apply_renames(attrs, RENAMES, out)
    for event in events:
        if event.name == PROMPT_EVENT and PROMPT in event.attributes:
            out.setdefault(sc.INPUT_MESSAGES, [chat_message("user", event.attributes[PROMPT])])
        elif event.name == COMPLETION_EVENT and COMPLETION in event.attributes:
            out.setdefault(
                sc.OUTPUT_MESSAGES, [chat_message("assistant", event.attributes[COMPLETION])]
            )
    return merged(attrs, consumed, out)
