"""Mistral AI client instrumentation (`mistralai`): chat completions, sync and async, streamed.

`MistralInstrumentor` patches `Chat.complete`, `complete_async`, `stream` and
`stream_async` (in `mistralai.client.chat` from 2.x, `mistralai.chat` in 1.x); `parse`
calls `complete` and so gets its span. `mistralai` is patched when
the application imports it.

The client fills absent usage counts with 0: only the counts the API actually sent
(`model_fields_set`) are recorded, so missing usage is stated as unknown, never as 0.
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
    append_part,
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
from assay.instrumentation.providers.package import MISTRALAI_INSTRUMENTS

_TARGETS = tuple(
    Target(module, "Chat", (method,), kind, is_async)
    for module in ("mistralai.client.chat", "mistralai.chat")
    for method, kind, is_async in (
        ("complete", "chat", False),
        ("complete_async", "chat", True),
        ("stream", "stream", False),
        ("stream_async", "stream", True),
    )
)

_NUMBERS = {
    "temperature": semconv.REQUEST_TEMPERATURE,
    "top_p": semconv.REQUEST_TOP_P,
    "presence_penalty": semconv.REQUEST_PRESENCE_PENALTY,
    "frequency_penalty": semconv.REQUEST_FREQUENCY_PENALTY,
}
_INTEGERS = {
    "max_tokens": semconv.REQUEST_MAX_TOKENS,
    "random_seed": semconv.REQUEST_SEED,
    "top_k": semconv.REQUEST_TOP_K,
}


# --- messages in the GenAI JSON shape ----------------------------------------------------------


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)] if content else []
    parts: list[dict[str, Any]] = []
    for chunk in content if isinstance(content, (list, tuple)) else (content,):
        kind = field(chunk, "type")
        if kind == "text":
            parts.append(text_part(field(chunk, "text")))
        elif kind == "thinking":
            thinking = field(chunk, "thinking") or ()
            text = "".join(str(field(piece, "text") or "") for piece in thinking)
            parts.append({"type": "reasoning", "content": text})
        elif kind == "image_url":
            url = field(chunk, "image_url")
            url = url if isinstance(url, str) else field(url, "url")
            if isinstance(url, str) and url.startswith("data:"):  # keep the type, not the bytes
                parts.append(
                    {"type": "blob", "modality": "image", "mime_type": url[5:].split(";")[0]}
                )
            else:
                parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind == "document_url":
            parts.append({"type": "uri", "uri": field(chunk, "document_url")})
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
        if role == "tool":
            content = field(message, "content")
            response = content if isinstance(content, str) else _content_parts(content)
            parts = [tool_response_part(field(message, "tool_call_id"), response)]
        else:
            parts = _content_parts(field(message, "content"))
            parts.extend(_tool_call(call) for call in field(message, "tool_calls") or ())
        converted.append({"role": role, "parts": parts})
    return converted


# --- usage and responses -----------------------------------------------------------------------


def _sent(usage: Any, name: str) -> int | None:
    # UsageInfo defaults absent counts to 0: trust only the ones the API sent.
    fields_set = getattr(usage, "model_fields_set", None)
    if fields_set is not None and name not in fields_set:
        return None
    value = field(usage, name)
    return value if type(value) is int else None


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, usage: Any) -> None:
    if usage is None:
        call.add_usage(attributes, model, None, None)
        return
    extra = getattr(usage, "__pydantic_extra__", None) or {}
    details = extra.get("prompt_tokens_details") or extra.get("prompt_token_details")
    cached = field(details, "cached_tokens") if details is not None else None
    call.add_usage(
        attributes,
        model,
        _sent(usage, "prompt_tokens"),
        _sent(usage, "completion_tokens"),
        cached_input_tokens=cached if type(cached) is int else None,
    )


def _response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    model = getattr(response, "model", None)
    choices = getattr(response, "choices", None) or ()
    reasons = tuple(str(c.finish_reason) for c in choices if c.finish_reason)
    response_basics(attributes, getattr(response, "id", None), model, reasons)
    if capture:

        def output() -> list[dict[str, Any]]:
            messages = []
            for choice in choices:
                message = choice.message
                parts = _content_parts(message.content)
                parts.extend(_tool_call(tc) for tc in message.tool_calls or ())
                messages.append(output_message(message.role, parts, choice.finish_reason))
            return messages

        output_json(attributes, output, "mistralai")
    _add_usage(call, attributes, model or request_model, getattr(response, "usage", None))
    return attributes


class _ChoiceState:
    __slots__ = ("finish_reason", "parts", "role", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None

    def add_content(self, content: Any) -> None:
        for part in _content_parts(content):
            append_part(self.parts, part)

    def add_tool_call(self, position: int, tool_call: Any) -> None:
        index = field(tool_call, "index")
        index = index if type(index) is int else position
        function = field(tool_call, "function")
        entry = self.tool_calls.get(index)
        if entry is None:
            entry = self.tool_calls[index] = tool_call_part(None, None, None)
        entry["id"] = field(tool_call, "id") or entry["id"]
        entry["name"] = field(function, "name") or entry["name"]
        arguments = field(function, "arguments")
        if isinstance(arguments, str) and isinstance(entry["arguments"], str):
            entry["arguments"] += arguments  # fragments of one JSON text
        elif arguments is not None:
            entry["arguments"] = arguments


class _StreamAccumulator:
    """Stream events carry `data`: a chunk in the chat-completion-chunk shape."""

    __slots__ = ("_capture", "_choices", "_model", "_request_model", "_response_id", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._choices: dict[int, _ChoiceState] = {}

    def add(self, event: Any) -> None:
        chunk = getattr(event, "data", event)
        if self._response_id is None and chunk.id:
            self._response_id = chunk.id
        if self._model is None and chunk.model:
            self._model = chunk.model
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices:
            state = self._choices.get(choice.index)
            if state is None:
                state = self._choices[choice.index] = _ChoiceState()
            if choice.finish_reason:
                state.finish_reason = str(choice.finish_reason)
            delta = choice.delta
            if not self._capture or delta is None:
                continue
            if isinstance(delta.role, str):
                state.role = delta.role
            state.add_content(delta.content if isinstance(delta.content, (str, list)) else None)
            for position, tool_call in enumerate(delta.tool_calls or ()):
                state.add_tool_call(position, tool_call)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        states = [self._choices[index] for index in sorted(self._choices)]
        reasons = tuple(state.finish_reason for state in states if state.finish_reason)
        response_basics(attributes, self._response_id, self._model, reasons)
        if self._capture:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [
                    output_message(
                        state.role,
                        state.parts + [state.tool_calls[i] for i in sorted(state.tool_calls)],
                        state.finish_reason,
                    )
                    for state in states
                ]
            )
        _add_usage(call, attributes, self._model or self._request_model, self._usage)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


def _server_url(instance: Any, kwargs: Any) -> Any:
    url = kwargs.get("server_url")
    if isinstance(url, str):
        return url
    configuration = getattr(instance, "sdk_configuration", None)
    details = getattr(configuration, "get_server_details", None)
    return details()[0] if callable(details) else None


class _MistralWrappers(ClientWrappers):
    library = "mistralai"

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        model = request_model(kwargs)
        provider = semconv.PROVIDER_MISTRAL_AI
        attributes = self.opening(semconv.OP_CHAT, provider, model, kind == "stream")
        server_attributes(_server_url(instance, kwargs), attributes)
        number_attributes(kwargs, _NUMBERS, attributes)
        number_attributes(kwargs, _INTEGERS, attributes, integer=True)
        choices = kwargs.get("n")
        if type(choices) is int and choices != 1:
            attributes[semconv.REQUEST_CHOICE_COUNT] = choices
        add_stop_sequences(attributes, kwargs.get("stop"))
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


class MistralInstrumentor(ClientInstrumentor):
    """Spans for the `mistralai` client's chat completions, sync and async, plain and streamed."""

    library = "mistralai"
    targets = _TARGETS
    instruments = MISTRALAI_INSTRUMENTS

    wrappers = _MistralWrappers
