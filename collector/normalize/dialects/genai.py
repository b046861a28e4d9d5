"""The current OpenTelemetry GenAI conventions (Assay's own spans, the official instrumentations,
OpenLLMetry's recent releases): the attributes are already the columns' names; messages may also
come as `gen_ai.*` events, on the span or as log records correlated to it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assay.collector.normalize import span_kinds as kinds
from assay.collector.normalize.dialects._shape import (
    Message,
    chat_message,
    openai_message,
    parsed_json,
)
from assay.collector.normalize.otlp import as_text
from assay.instrumentation import semconv as sc

NAME = "genai"

# What a dialect declares beside its reader (receivers/content.py redacts by these): attributes
# whose values are content (prompts, responses, tool calls, documents), by name and by prefix,
# and foreign names read into the conventions' ones. These are the conventions' own names.
CONTENT_KEYS = frozenset(
    {
        sc.INPUT_MESSAGES,
        sc.OUTPUT_MESSAGES,
        sc.SYSTEM_INSTRUCTIONS,
        sc.TOOL_DEFINITIONS,
        sc.TOOL_CALL_ARGUMENTS,
        sc.TOOL_CALL_RESULT,
        sc.RETRIEVAL_DOCUMENTS,
        sc.RETRIEVAL_QUERY_TEXT,
        sc.EVALUATION_EXPLANATION,
        sc.PROMPT,
        sc.COMPLETION,
    }
)
CONTENT_PREFIXES: tuple[str, ...] = ()
RENAMES: dict[str, str] = {}

# The earlier per-message events: the event name says the role of its input message.
_MESSAGE_EVENTS = {
    sc.EVENT_SYSTEM_MESSAGE: "system",
    sc.EVENT_USER_MESSAGE: "user",
    sc.EVENT_ASSISTANT_MESSAGE: "assistant",
    sc.EVENT_TOOL_MESSAGE: "tool",
}
EVENT_NAMES = frozenset({sc.EVENT_INFERENCE_DETAILS, sc.EVENT_CHOICE, *_MESSAGE_EVENTS})


@dataclass(frozen=True, slots=True)
class GenAIEvent:
    """A span event or a log record: its name, attributes and (log records only) body."""

    name: str
    attributes: Mapping[str, Any]
    body: Any = None


def matches(attrs: Mapping[str, Any]) -> bool:
    """An LLM operation named, or a model without an operation."""
    operation = attrs.get(sc.OPERATION_NAME)
    if operation is not None:
        return operation in sc.LLM_OPERATIONS
    return sc.REQUEST_MODEL in attrs


def translate(attrs: Mapping[str, Any], events: Iterable[GenAIEvent] = ()) -> dict[str, Any]:
    """The attributes are already in the conventions' names (events are read for every dialect
    by `with_event_messages`)."""
    return dict(attrs)


def with_event_messages(attrs: dict[str, Any], events: Iterable[GenAIEvent]) -> dict[str, Any]:
    """`attrs` with the messages GenAI events carry, where the attributes have none."""
    for key, value in message_attributes(events).items():
        attrs.setdefault(key, value)
    return attrs


def message_attributes(events: Iterable[GenAIEvent]) -> dict[str, Any]:
    """`gen_ai.input.messages` / `output.messages` / `system_instructions` from GenAI events."""
    out: dict[str, Any] = {}
    inputs: list[Message] = []
    outputs: list[tuple[int, Message]] = []
    for event in events:
        if event.name == sc.EVENT_INFERENCE_DETAILS:
            for key in (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS):
                value = parsed_json(event.attributes.get(key))
                if value is not None:
                    out.setdefault(key, value)
            continue
        payload = parsed_json(event.body)
        if not isinstance(payload, Mapping):
            payload = event.attributes
        role = _MESSAGE_EVENTS.get(event.name)
        if role is not None:
            calls = payload.get("tool_calls")
            inputs.append(
                chat_message(
                    payload.get("role") or role,
                    parsed_json(payload.get("content"))
                    if isinstance(payload.get("content"), list)
                    else payload.get("content"),
                    tool_calls=calls if isinstance(calls, list) else (),
                    tool_call_id=payload.get("id"),
                )
            )
        elif event.name == sc.EVENT_CHOICE:
            message = openai_message(
                parsed_json(payload.get("message")) or {"role": "assistant"},
                payload.get("finish_reason"),
            )
            if message is not None:
                outputs.append((_index(payload.get("index")), message))
    if inputs:
        out.setdefault(sc.INPUT_MESSAGES, inputs)
    if outputs:
        out.setdefault(sc.OUTPUT_MESSAGES, [m for _, m in sorted(outputs, key=lambda p: p[0])])
    return out


def _index(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- agent structure (normalize/agents.py) ------------------------------------------------------
# What a span is, by its operation; an operation not listed here gives no kind.
KINDS = {
    sc.OP_INVOKE_WORKFLOW: kinds.WORKFLOW,
    sc.OP_INVOKE_AGENT: kinds.AGENT,
    sc.OP_CREATE_AGENT: kinds.AGENT,
    sc.OP_PLAN: kinds.CHAIN,
    sc.OP_CHAT: kinds.LLM,
    sc.OP_TEXT_COMPLETION: kinds.LLM,
    sc.OP_GENERATE_CONTENT: kinds.LLM,
    sc.OP_EMBEDDINGS: kinds.EMBEDDING,
    sc.OP_EXECUTE_TOOL: kinds.TOOL,
    sc.OP_RETRIEVAL: kinds.RETRIEVER,
}
# The conversation a span belongs to: Assay's session id, else the conventions' conversation id.
SESSION_KEYS = (sc.SESSION_ID, sc.CONVERSATION_ID)
USER_KEYS = (sc.USER_ID,)
KIND_KEYS = frozenset({sc.OPERATION_NAME, sc.GUARDRAIL_NAME})  # every name `span_kind` reads


def span_kind(attrs: Mapping[str, Any]) -> str | None:
    operation = attrs.get(sc.OPERATION_NAME)
    if isinstance(operation, str):
        return KINDS.get(operation)
    # The conventions name no guardrail operation: Assay's agent instrumentation marks its own.
    return kinds.GUARDRAIL if sc.GUARDRAIL_NAME in attrs else None


def agent_name(attrs: Mapping[str, Any]) -> str:
    return as_text(attrs.get(sc.AGENT_NAME) or "")


def tool_fields(attrs: Mapping[str, Any]) -> kinds.ToolFields:
    return kinds.ToolFields(
        name=as_text(attrs.get(sc.TOOL_NAME) or ""),
        call_id=as_text(attrs.get(sc.TOOL_CALL_ID) or ""),
        type=as_text(attrs.get(sc.TOOL_TYPE) or ""),
        arguments=as_text(attrs.get(sc.TOOL_CALL_ARGUMENTS)),
        result=as_text(attrs.get(sc.TOOL_CALL_RESULT)),
    )
