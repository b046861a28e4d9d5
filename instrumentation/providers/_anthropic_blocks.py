"""The Anthropic Messages format: content blocks, requests, responses and stream events.

The anthropic client and Bedrock's InvokeModel with Anthropic bodies speak it; both read
it here. Readers take request dicts, JSON bodies and the client's response models alike
(`field`), so a raw response or a Bedrock body is read by the same code as a Message.

Anthropic counts cached prompt tokens apart from `input_tokens`; the span's
`gen_ai.usage.input_tokens` is their sum, as the GenAI conventions say (input tokens
include cached ones), and the cache reads and writes are recorded apart for pricing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation._streams import ResponseState
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._call import response_identity
from assay.instrumentation.providers._request import Parameters

_PARAMETERS = Parameters(
    {"temperature": semconv.REQUEST_TEMPERATURE, "top_p": semconv.REQUEST_TOP_P},
    {"top_k": semconv.REQUEST_TOP_K, "max_tokens": semconv.REQUEST_MAX_TOKENS},
    stop=("stop_sequences",),
)
_TOOL_USES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


# --- content blocks ----------------------------------------------------------------------------


def _source_part(block: Any, modality: str) -> msg.Part:
    source = msg.field(block, "source")
    kind = msg.field(source, "type")
    if kind == "url":
        return {"type": "uri", "modality": modality, "uri": msg.field(source, "url")}
    if kind == "file":
        return {"type": "file", "modality": modality, "file_id": msg.field(source, "file_id")}
    if kind == "text":  # a plain-text document
        return msg.text_part(msg.field(source, "data"))
    return msg.blob_part(modality, msg.field(source, "media_type"))


def _tool_use_part(kind: Any, block_id: Any, name: Any, arguments: Any) -> msg.Part:
    if kind == "tool_use":
        return msg.tool_call_part(block_id, name, arguments)
    # A server tool (web search, code execution) or an MCP tool: the API runs it itself.
    return {
        "type": "server_tool_call",
        "id": block_id,
        "name": name,
        "server_tool_call": {"type": name, "input": arguments},
    }


def part(block: Any) -> msg.Part:
    """One content block (request dict, JSON body or response model) as a GenAI part."""
    if isinstance(block, str):
        return msg.text_part(block)
    kind = msg.field(block, "type")
    if kind == "text":
        return msg.text_part(msg.field(block, "text"))
    if kind in _TOOL_USES:
        return _tool_use_part(
            kind, msg.field(block, "id"), msg.field(block, "name"), msg.field(block, "input")
        )
    if kind == "tool_result":
        return msg.tool_response_part(
            msg.field(block, "tool_use_id"), msg.plain_text(msg.field(block, "content"))
        )
    if kind == "thinking":
        return msg.reasoning_part(msg.field(block, "thinking"))
    if kind == "redacted_thinking":  # encrypted: its presence, not its content
        return {"type": "reasoning"}
    if kind == "image":
        return _source_part(block, "image")
    if kind == "document":
        return _source_part(block, "document")
    if isinstance(kind, str) and kind.endswith("_tool_result"):
        return {
            "type": "server_tool_call_response",
            "id": msg.field(block, "tool_use_id"),
            "server_tool_call_response": {"type": kind},
        }
    return {"type": str(kind)}


def parts(content: Any) -> list[msg.Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [msg.text_part(content)]
    if not isinstance(content, (list, tuple)):
        return [msg.text_part(str(content))]
    return [part(block) for block in content]


def _message(message: Any) -> msg.Part:
    message_parts = parts(msg.field(message, "content"))
    role = msg.field(message, "role")
    # Anthropic sends tool results in a user turn; the conventions give them role "tool".
    if (
        role == "user"
        and message_parts
        and all(p["type"] == "tool_call_response" for p in message_parts)
    ):
        role = "tool"
    return {"role": role, "parts": message_parts}


def input_messages(messages: Any) -> list[msg.Part] | None:
    return msg.converted_messages(messages, _message)


def tool_definitions(tools: Any) -> list[msg.Part] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions: list[msg.Part] = []
    for tool in tools:
        schema = msg.field(tool, "input_schema")
        if schema is None:  # a server tool (web search, code execution, ...): as given
            definitions.append({"type": msg.field(tool, "type"), "name": msg.field(tool, "name")})
            continue
        definition: msg.Part = {"type": "function", "name": msg.field(tool, "name")}
        description = msg.field(tool, "description")
        if description:
            definition["description"] = description
        definition["parameters"] = schema
        definitions.append(definition)
    return definitions


# --- requests ----------------------------------------------------------------------------------


def request_attributes(request: Mapping[str, Any], attributes: Attributes) -> None:
    """The sampling parameters of a Messages request: keyword arguments or a JSON body.

    anthropic clients from 2.0 on take sampling parameters only through `extra_body`.
    """
    extra = request.get("extra_body")
    if isinstance(extra, dict):
        _PARAMETERS.read(extra, attributes)
    _PARAMETERS.read(request, attributes)


def request_content(request: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a Messages request, by attribute name."""
    system = request.get("system")
    return {
        semconv.SYSTEM_INSTRUCTIONS: parts(system)
        if isinstance(system, (str, list, tuple))
        else None,
        semconv.INPUT_MESSAGES: input_messages(request.get("messages")),
        semconv.TOOL_DEFINITIONS: tool_definitions(request.get("tools")),
    }


# --- responses ---------------------------------------------------------------------------------


def add_usage(
    call: LLMCall,
    attributes: Attributes,
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read: int | None = None,
    cache_creation: int | None = None,
    thinking_tokens: int | None = None,
) -> None:
    """Usage as Anthropic counts it (cache apart from input), in the conventions' terms."""
    total_input = None
    if input_tokens is not None:
        total_input = input_tokens + (cache_read or 0) + (cache_creation or 0)
    call.add_usage(
        attributes,
        model,
        total_input,
        output_tokens,
        cached_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        reasoning_output_tokens=thinking_tokens,
    )


def usage_counts(usage: Any) -> tuple[int | None, ...]:
    """(input, output, cache read, cache creation, thinking) of a `usage` object or dict."""
    return (
        msg.int_or_none(msg.field(usage, "input_tokens")),
        msg.int_or_none(msg.field(usage, "output_tokens")),
        msg.int_or_none(msg.field(usage, "cache_read_input_tokens")),
        msg.int_or_none(msg.field(usage, "cache_creation_input_tokens")),
        msg.int_or_none(msg.field(msg.field(usage, "output_tokens_details"), "thinking_tokens")),
    )


def response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    """A Message: the client's model, a raw response's JSON, or a Bedrock response body."""
    attributes: Attributes = {}
    model = response_identity(response, attributes)
    stop_reason = msg.field(response, "stop_reason")
    if isinstance(stop_reason, str) and stop_reason:
        attributes[semconv.RESPONSE_FINISH_REASONS] = (stop_reason,)
    else:
        stop_reason = None
    if capture:
        try:
            message = msg.output_message(parts(msg.field(response, "content")), stop_reason)
            attributes[semconv.OUTPUT_MESSAGES] = to_json([message])
        except Exception:
            report_internal_error("converting anthropic output messages")
    add_usage(call, attributes, model or request_model, *usage_counts(msg.field(response, "usage")))
    return attributes


# --- streams -----------------------------------------------------------------------------------


class _Block:
    __slots__ = ("id", "input", "kind", "name", "text")

    def __init__(self, block: Any) -> None:
        self.kind = msg.field(block, "type")
        self.id = msg.field(block, "id")
        self.name = msg.field(block, "name")
        self.text: list[str] = []  # text, thinking, or a tool call's JSON input fragments
        self.input = msg.field(block, "input")

    def part(self) -> msg.Part:
        if self.kind == "text":
            return msg.text_part("".join(self.text))
        if self.kind == "thinking":
            return msg.reasoning_part("".join(self.text))
        if self.kind in _TOOL_USES:
            arguments: Any = self.input
            if self.text:
                joined = "".join(self.text)
                try:
                    arguments = json.loads(joined)
                except ValueError:  # cut short (stream closed early): keep what came
                    arguments = joined
            return _tool_use_part(self.kind, self.id, self.name, arguments)
        return part({"type": self.kind})


# Which delta msg.field holds the text of each delta type.
_DELTA_TEXT = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
}


class MessageEvents(ResponseState):
    """What a Messages stream's span needs, gathered event by event without copying events.

    `add` reads the client's event objects; `add_json` reads the same events as JSON
    (Bedrock's InvokeModelWithResponseStream chunks).
    """

    __slots__ = ("_blocks", "_stop_reason", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        super().__init__(request_model, capture)
        self._stop_reason: str | None = None
        # input, output, cache read, cache creation, thinking
        self._usage: list[int | None] = [None, None, None, None, None]
        self._blocks: dict[int, _Block] = {}

    def add(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            if self._capture:
                delta = event.delta
                self._delta(event.index, delta.type, delta)
        elif kind == "content_block_start":
            if self._capture:
                self._blocks[event.index] = _Block(event.content_block)
        elif kind == "message_start":
            self._message_start(event.message)
        elif kind == "message_delta":
            self._message_delta(event.delta, event.usage)

    def add_json(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            if self._capture:
                delta = event.get("delta") or {}
                self._delta(event.get("index", 0), delta.get("type"), delta)
        elif kind == "content_block_start":
            if self._capture:
                self._blocks[event.get("index", 0)] = _Block(event.get("content_block") or {})
        elif kind == "message_start":
            self._message_start(event.get("message") or {})
        elif kind == "message_delta":
            self._message_delta(event.get("delta") or {}, event.get("usage"))

    def _delta(self, index: int, kind: Any, delta: Any) -> None:
        block = self._blocks.get(index)
        name = _DELTA_TEXT.get(kind)
        if block is not None and name is not None:
            text = msg.field(delta, name)
            if isinstance(text, str):
                block.text.append(text)

    def _message_start(self, message: Any) -> None:
        response_id = msg.field(message, "id")
        self._response_id = response_id if isinstance(response_id, str) else None
        model = msg.field(message, "model")
        self._model = model if isinstance(model, str) else None
        self._take_usage(msg.field(message, "usage"))

    def _message_delta(self, delta: Any, usage: Any) -> None:
        stop_reason = msg.field(delta, "stop_reason")
        if isinstance(stop_reason, str) and stop_reason:
            self._stop_reason = stop_reason
        self._take_usage(usage)

    def _take_usage(self, usage: Any) -> None:
        # message_start carries the input side; message_delta the cumulative output side
        # (and, from 2025 on, the input side again).
        if usage is None:
            return
        for position, count in enumerate(usage_counts(usage)):
            if count is not None:
                self._usage[position] = count

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        self.identity(attributes)
        if self._stop_reason:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (self._stop_reason,)
        if self._capture:
            try:
                message_parts = [self._blocks[index].part() for index in sorted(self._blocks)]
                attributes[semconv.OUTPUT_MESSAGES] = to_json(
                    [msg.output_message(message_parts, self._stop_reason)]
                )
            except Exception:
                report_internal_error("converting anthropic streamed messages")
        # Without a message_delta the call did not finish (closed early, cut off): the input
        # side message_start reported is billed and kept, but its output count is a
        # placeholder, so the output stays unknown (NULL), never that placeholder.
        input_tokens, output_tokens, cache_read, cache_creation, thinking = self._usage
        if self._stop_reason is None:
            output_tokens = thinking = None
        add_usage(
            call,
            attributes,
            self.model,
            input_tokens,
            output_tokens,
            cache_read,
            cache_creation,
            thinking,
        )
        return attributes
