"""Cohere client instrumentation (`cohere`): the v2 chat API, sync and async, streamed.

`CohereInstrumentor` patches `V2Client.chat` / `chat_stream` and `AsyncV2Client.chat` /
`chat_stream`, which serve `ClientV2`, `AsyncClientV2` and `Client().v2` alike. `cohere`
is patched when the application imports it.

Tokens are Cohere's billed units (what the price applies to); finish reasons are Cohere's
own, in lower case (`complete`, `max_tokens`, `tool_call`). Responses carry no model
name: the request's model is priced.
"""

from __future__ import annotations

from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, to_json
from assay.instrumentation.providers._common import request_model
from assay.instrumentation.providers._wrapping import (
    CallStart,
    ClientInstrumentor,
    ClientWrappers,
    Target,
    add_stop_sequences,
    field,
    function_tool_definitions,
    number_attributes,
    output_json,
    output_message,
    response_basics,
    server_attributes,
    text_part,
    tool_call_part,
    tool_response_part,
)
from assay.instrumentation.providers.package import COHERE_INSTRUMENTS

_CLIENT = "cohere.v2.client"
# chat_stream is a generator function in both clients (async: an async generator function,
# called without await), so its wrapper is a plain function either way.
_TARGETS = (
    Target(_CLIENT, "V2Client", ("chat",), "chat", False),
    Target(_CLIENT, "V2Client", ("chat_stream",), "stream", False),
    Target(_CLIENT, "AsyncV2Client", ("chat",), "chat", True),
    Target(_CLIENT, "AsyncV2Client", ("chat_stream",), "stream", False),
)

_NUMBERS = {
    "temperature": semconv.REQUEST_TEMPERATURE,
    "p": semconv.REQUEST_TOP_P,
    "presence_penalty": semconv.REQUEST_PRESENCE_PENALTY,
    "frequency_penalty": semconv.REQUEST_FREQUENCY_PENALTY,
}
_INTEGERS = {
    "max_tokens": semconv.REQUEST_MAX_TOKENS,
    "seed": semconv.REQUEST_SEED,
    "k": semconv.REQUEST_TOP_K,
}


# --- messages in the GenAI JSON shape ----------------------------------------------------------


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for item in content if isinstance(content, (list, tuple)) else (content,):
        kind = field(item, "type")
        if kind == "text":
            parts.append(text_part(field(item, "text")))
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": field(item, "thinking")})
        elif kind == "image_url":
            url = field(field(item, "image_url"), "url")
            if isinstance(url, str) and url.startswith("data:"):  # keep the type, not the bytes
                parts.append(
                    {"type": "blob", "modality": "image", "mime_type": url[5:].split(";")[0]}
                )
            else:
                parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind == "document":
            parts.append({"type": "document", "content": field(item, "document")})
        else:
            parts.append({"type": str(kind)})
    return parts


def _tool_call(tool_call: Any) -> dict[str, Any]:
    function = field(tool_call, "function")
    return tool_call_part(
        field(tool_call, "id"), field(function, "name"), field(function, "arguments")
    )


def _input_messages(messages: Any) -> list[dict[str, Any]] | None:
    if not isinstance(messages, (list, tuple)):
        return None
    converted = []
    for message in messages:
        role = field(message, "role")
        content = field(message, "content")
        if role == "tool":
            response = content if isinstance(content, str) else _content_parts(content)
            parts = [tool_response_part(field(message, "tool_call_id"), response)]
        else:
            plan = field(message, "tool_plan")
            parts = [{"type": "reasoning", "content": plan}] if plan else []
            parts.extend(_content_parts(content))
            parts.extend(_tool_call(call) for call in field(message, "tool_calls") or ())
        converted.append({"role": role, "parts": parts})
    return converted


def _finish_reason(reason: Any) -> str | None:
    return str(reason).lower() if reason else None


def _count(value: Any) -> int | None:
    # Cohere's counts are JSON numbers the client types as float.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, usage: Any) -> None:
    # Billed units are what the price applies to; `tokens` only when a response lacks them.
    counts = None if usage is None else field(usage, "billed_units") or field(usage, "tokens")
    if counts is None:
        call.add_usage(attributes, model, None, None)
        return
    call.add_usage(
        attributes,
        model,
        _count(field(counts, "input_tokens")),
        _count(field(counts, "output_tokens")),
        cached_input_tokens=_count(field(usage, "cached_tokens")),
    )


def _response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    reason = _finish_reason(getattr(response, "finish_reason", None))
    response_basics(attributes, getattr(response, "id", None), None, (reason,) if reason else None)
    if capture:

        def output() -> list[dict[str, Any]]:
            message = response.message
            plan = getattr(message, "tool_plan", None)
            parts = [{"type": "reasoning", "content": plan}] if plan else []
            parts.extend(_content_parts(message.content))
            parts.extend(_tool_call(tc) for tc in message.tool_calls or ())
            return [output_message("assistant", parts, reason)]

        output_json(attributes, output, "cohere")
    _add_usage(call, attributes, request_model, getattr(response, "usage", None))
    return attributes


class _StreamAccumulator:
    """Cohere streams typed events: message-start, content-*, tool-plan-delta, tool-call-*,
    citation-*, message-end (finish reason and usage)."""

    __slots__ = (
        "_capture",
        "_finish_reason",
        "_plan",
        "_request_model",
        "_response_id",
        "_text",
        "_tool_calls",
        "_usage",
    )

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._text: dict[int, list[str]] = {}
        self._plan: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}

    def add(self, event: Any) -> None:
        kind = event.type
        if kind == "message-start":
            self._response_id = event.id or self._response_id
        elif kind == "message-end":
            self._response_id = self._response_id or event.id
            delta = event.delta
            if delta is not None:
                self._finish_reason = _finish_reason(delta.finish_reason)
                self._usage = delta.usage
        elif not self._capture:
            return
        elif kind in ("content-start", "content-delta"):
            content = event.delta.message.content if event.delta and event.delta.message else None
            text = field(content, "text")
            if text:
                self._text.setdefault(event.index or 0, []).append(text)
        elif kind == "tool-plan-delta":
            plan = event.delta.message.tool_plan if event.delta and event.delta.message else None
            if plan:
                self._plan.append(plan)
        elif kind in ("tool-call-start", "tool-call-delta"):
            tool_call = (
                event.delta.message.tool_calls if event.delta and event.delta.message else None
            )
            if tool_call is None:
                return
            index = event.index or 0
            entry = self._tool_calls.get(index)
            if entry is None:
                entry = self._tool_calls[index] = tool_call_part(None, None, "")
            entry["id"] = field(tool_call, "id") or entry["id"]
            function = field(tool_call, "function")
            entry["name"] = field(function, "name") or entry["name"]
            arguments = field(function, "arguments")
            if arguments:
                entry["arguments"] += arguments

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        reason = self._finish_reason
        response_basics(attributes, self._response_id, None, (reason,) if reason else None)
        if self._capture:
            parts: list[dict[str, Any]] = []
            if self._plan:
                parts.append({"type": "reasoning", "content": "".join(self._plan)})
            parts.extend(text_part("".join(self._text[i])) for i in sorted(self._text))
            parts.extend(self._tool_calls[i] for i in sorted(self._tool_calls))
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [output_message("assistant", parts, self._finish_reason)]
            )
        _add_usage(call, attributes, self._request_model, self._usage)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


def _base_url(instance: Any) -> Any:
    wrapper = getattr(getattr(instance, "_raw_client", None), "_client_wrapper", None)
    get_base_url = getattr(wrapper, "get_base_url", None)
    return get_base_url() if callable(get_base_url) else None


class _CohereWrappers(ClientWrappers):
    library = "cohere"

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        model = request_model(kwargs)
        provider = semconv.PROVIDER_COHERE
        attributes = self.opening(semconv.OP_CHAT, provider, model, kind == "stream")
        server_attributes(_base_url(instance), attributes)
        number_attributes(kwargs, _NUMBERS, attributes)
        number_attributes(kwargs, _INTEGERS, attributes, integer=True)
        add_stop_sequences(attributes, kwargs.get("stop_sequences"))
        self.add_content(
            attributes,
            lambda: {
                semconv.INPUT_MESSAGES: _input_messages(kwargs.get("messages")),
                semconv.TOOL_DEFINITIONS: function_tool_definitions(kwargs.get("tools")),
            },
        )
        return CallStart(semconv.OP_CHAT, provider, model, attributes)

    def accumulator(self, kind: str, args: Any, kwargs: Any) -> _StreamAccumulator:
        return _StreamAccumulator(request_model(kwargs), self.capture_content)

    def response_attributes(
        self, kind: str, call: LLMCall, response: Any, args: Any, kwargs: Any
    ) -> Attributes:
        return _response_attributes(call, response, request_model(kwargs), self.capture_content)


class CohereInstrumentor(ClientInstrumentor):
    """Spans for the `cohere` client's v2 chat, sync and async, plain and streamed."""

    library = "cohere"
    targets = _TARGETS
    instruments = COHERE_INSTRUMENTS

    wrappers = _CohereWrappers
