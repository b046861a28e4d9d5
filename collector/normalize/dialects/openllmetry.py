"""OpenLLMetry (Traceloop) before it moved to the current conventions: messages as indexed
`gen_ai.prompt.N.*` / `gen_ai.completion.N.*` attributes, usage as `prompt_tokens` /
`completion_tokens`, the operation in `llm.request.type`. Its recent releases write the current
names too; whatever a span has in those wins over the older spellings read here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from assay.collector.normalize import span_kinds as kinds
from assay.collector.normalize.dialects._shape import (
    Message,
    Rename,
    apply_renames,
    chat_message,
    indexed,
    merged,
    parsed_json,
)
from assay.collector.normalize.dialects.genai import GenAIEvent
from assay.collector.normalize.otlp import as_text
from assay.instrumentation import semconv as sc

NAME = "openllmetry"

PROMPT = "gen_ai.prompt"
COMPLETION = "gen_ai.completion"
REQUEST_TYPE = "llm.request.type"
_OPERATIONS = {
    "chat": sc.OP_CHAT,
    "completion": sc.OP_TEXT_COMPLETION,
    "embedding": sc.OP_EMBEDDINGS,
}

RENAMES: dict[str, str | Rename] = {
    "gen_ai.usage.prompt_tokens": sc.USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": sc.USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.cache_read_input_tokens": sc.USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_creation_input_tokens": sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
    "llm.usage.reasoning_tokens": sc.USAGE_REASONING_OUTPUT_TOKENS,
    REQUEST_TYPE: Rename(sc.OPERATION_NAME, lambda value: _OPERATIONS.get(str(value))),
    "llm.is_streaming": sc.REQUEST_STREAM,
    "gen_ai.is_streaming": sc.REQUEST_STREAM,
    "gen_ai.usage.reasoning_tokens": sc.USAGE_REASONING_OUTPUT_TOKENS,
    "gen_ai.openai.api_base": Rename(sc.SERVER_ADDRESS, lambda url: _host(str(url))),
    "traceloop.association.properties.user_id": sc.USER_ID,
    "traceloop.association.properties.session_id": sc.SESSION_ID,
}


# Content: the indexed messages (`gen_ai.prompt.0.content`, tool call arguments under them), the
# workflow's input and output, the tools offered (`llm.request.functions.N.*`), and the indexed
# form its first releases wrote under `llm.prompts` / `llm.completions`.
CONTENT_KEYS = frozenset({PROMPT, COMPLETION, "traceloop.entity.input", "traceloop.entity.output"})
CONTENT_PREFIXES = (
    PROMPT + ".",
    COMPLETION + ".",
    "llm.prompts.",
    "llm.completions.",
    "llm.request.functions.",
)

# Names only OpenLLMetry writes; association properties are no mark, they go on every span.
MARKS = frozenset({"gen_ai.openai.api_base", "gen_ai.is_streaming", "gen_ai.usage.prompt_tokens"})
_INDEXED_PREFIXES = (PROMPT + ".", COMPLETION + ".")
# Only `gen_ai.prompt.N.*` is OpenLLMetry's: the current conventions own `gen_ai.prompt.name`,
# `gen_ai.prompt.version` and `gen_ai.prompt.variable.*`, which Assay's own spans carry.
_INDEXED = re.compile(r"gen_ai\.(?:prompt|completion)\.\d+\.")


def _is_indexed(key: str) -> bool:
    return key.startswith(_INDEXED_PREFIXES) and _INDEXED.match(key) is not None


class _OwnNames(dict[str, bool]):
    """Whether a name is OpenLLMetry's own (a mark or an indexed message's), remembered: every
    span is asked, and spans carry the same few names again and again. Bounded: names come from
    clients (the memory a long name would keep is not spent)."""

    def __missing__(self, key: str) -> bool:
        own = key in MARKS or _is_indexed(key)
        if len(key) <= _REMEMBERED_LENGTH:
            if len(self) >= _REMEMBERED_NAMES:
                self.clear()
            self[key] = own
        return own


_REMEMBERED_NAMES = 4096
_REMEMBERED_LENGTH = 200
_own_names = _OwnNames()


def matches(attrs: Mapping[str, Any]) -> bool:
    if REQUEST_TYPE in attrs:
        return str(attrs[REQUEST_TYPE]) in _OPERATIONS
    operation = attrs.get(sc.OPERATION_NAME)
    if operation is not None and operation not in sc.LLM_OPERATIONS:
        return False
    # Every span that is no LLM call comes this far: each name looked up, in C, among those
    # seen before (1,800 instructions for 15 names, where testing the marks as a set and
    # searching the names joined by line breaks took 10,000-14,000).
    return any(map(_own_names.__getitem__, attrs))


def translate(attrs: Mapping[str, Any], events: Iterable[GenAIEvent] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    consumed = apply_renames(attrs, RENAMES, out)
    out.setdefault(sc.OPERATION_NAME, sc.OP_CHAT)
    prompts = indexed(attrs, PROMPT)
    completions = indexed(attrs, COMPLETION)
    # Indexed messages leave the attributes map only when they became the messages.
    used = tuple(
        prefix + "."
        for prefix, key in ((PROMPT, sc.INPUT_MESSAGES), (COMPLETION, sc.OUTPUT_MESSAGES))
        if key not in attrs
    )
    consumed.update(k for k in attrs if used and k.startswith(used) and _is_indexed(k))
    if prompts:
        out[sc.INPUT_MESSAGES] = [_message(fields) for fields in prompts.values()]
    if completions:
        out[sc.OUTPUT_MESSAGES] = [_message(fields, output=True) for fields in completions.values()]
        reasons = [f["finish_reason"] for f in completions.values() if f.get("finish_reason")]
        if reasons:
            out[sc.RESPONSE_FINISH_REASONS] = reasons
    return merged(attrs, consumed, out)


def _message(fields: dict[str, Any], output: bool = False) -> Message:
    calls = [
        {"id": call.get("id"), "function": call} for call in indexed(fields, "tool_calls").values()
    ]
    content = fields.get("content")
    structured = parsed_json(content) if isinstance(content, str) and content[:1] == "[" else None
    return chat_message(
        fields.get("role") or ("assistant" if output else "user"),
        structured if isinstance(structured, list) else content,
        tool_calls=calls,
        tool_call_id=fields.get("tool_call_id"),
        finish_reason=fields.get("finish_reason") if output else None,
    )


def _host(url: str) -> str | None:
    return urlsplit(url).hostname


# --- agent structure (normalize/agents.py) ------------------------------------------------------
# Its decorators (@workflow, @task, @agent, @tool) and framework instrumentations mark their spans
# with a kind and an entity: the name, and the input (`{"args": [...], "kwargs": {...}}`) and
# output as JSON. Its LLM spans carry no kind; they are calls (`matches` above).
SPAN_KIND = "traceloop.span.kind"
ENTITY_NAME = "traceloop.entity.name"
ENTITY_INPUT = "traceloop.entity.input"
ENTITY_OUTPUT = "traceloop.entity.output"
KINDS = {
    "workflow": kinds.WORKFLOW,
    "task": kinds.CHAIN,
    "agent": kinds.AGENT,
    "tool": kinds.TOOL,
}
SESSION_KEYS = tuple(k for k, v in RENAMES.items() if v == sc.SESSION_ID)
USER_KEYS = tuple(k for k, v in RENAMES.items() if v == sc.USER_ID)
KIND_KEYS = frozenset({SPAN_KIND})  # every name `span_kind` reads


def span_kind(attrs: Mapping[str, Any]) -> str | None:
    kind = attrs.get(SPAN_KIND)
    return KINDS.get(kind) if isinstance(kind, str) else None


def agent_name(attrs: Mapping[str, Any]) -> str:
    return as_text(attrs.get(ENTITY_NAME) or "") if span_kind(attrs) == kinds.AGENT else ""


def tool_fields(attrs: Mapping[str, Any]) -> kinds.ToolFields:
    return kinds.ToolFields(
        name=as_text(attrs.get(ENTITY_NAME) or ""),
        arguments=_arguments(attrs.get(ENTITY_INPUT)),
        result=as_text(attrs.get(ENTITY_OUTPUT)),
    )


def _arguments(value: Any) -> str:
    """The call's arguments: its keyword arguments when it was called with keywords only."""
    entity = parsed_json(value)
    if isinstance(entity, Mapping) and set(entity) == {"args", "kwargs"} and not entity["args"]:
        return json.dumps(entity["kwargs"], ensure_ascii=False)
    return as_text(value)
