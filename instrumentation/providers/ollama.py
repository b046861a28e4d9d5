"""Ollama client instrumentation (`ollama`): chat and generate, sync and async, streamed.

`OllamaInstrumentor` patches `Client.chat`, `Client.generate` and their `AsyncClient`
twins, and rebinds the module-level `ollama.chat` / `ollama.generate` (bound to a default
client when `ollama` is imported) so that they are traced too. Aliases a user took before
instrumenting (`from ollama import chat`) stay untraced. `ollama` is patched when the
application imports it.

Local models have no list price: cost stays NULL (see `pricing`), tokens are recorded.
Ollama leaves `prompt_eval_count` out when the whole prompt came from its cache: the input
tokens are then unknown, not 0.
"""

from __future__ import annotations

import sys
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, to_json
from assay.instrumentation._streams import ResponseState, StreamAccumulator
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._call import CallStart, CallWrappers, opening, response_basics
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import Parameters, server_attributes

_TARGETS = tuple(
    Target("ollama._client", prefix + "Client", (kind,), kind, prefix == "Async")
    for prefix in ("", "Async")
    for kind in ("chat", "generate")
)
_MODULE_ALIASES = ("chat", "generate")

# In the request's `options`.
_PARAMETERS = Parameters(
    chat.CHAT_NUMBERS,
    {
        "num_predict": semconv.REQUEST_MAX_TOKENS,
        "seed": semconv.REQUEST_SEED,
        "top_k": semconv.REQUEST_TOP_K,
    },
    stop=("stop",),
)


def _argument(args: Any, kwargs: Any, position: int, name: str) -> Any:
    """A parameter that may be passed by position (`chat("llama3.2", messages)`) or by name."""
    return args[position] if len(args) > position else kwargs.get(name)


# --- messages in the GenAI JSON shape ----------------------------------------------------------


def _tool_call(tool_call: Any) -> msg.Part:
    function = msg.field(tool_call, "function")
    return msg.tool_call_part(
        msg.field(tool_call, "id"), msg.field(function, "name"), msg.field(function, "arguments")
    )


def _message_parts(message: Any) -> list[msg.Part]:
    parts: list[msg.Part] = []
    thinking = msg.field(message, "thinking")
    if thinking:
        parts.append(msg.reasoning_part(thinking))
    content = msg.field(message, "content")
    if content:
        parts.append(msg.text_part(content))
    # Images are paths or bytes: their count is kept, not their content.
    parts.extend({"type": "blob", "modality": "image"} for _ in msg.field(message, "images") or ())
    parts.extend(_tool_call(call) for call in msg.field(message, "tool_calls") or ())
    return parts


def _message(message: Any) -> msg.Part:
    role = msg.field(message, "role")
    if role != "tool":
        return {"role": role, "parts": _message_parts(message)}
    # Ollama names the tool, not the call: the name stands in for the call id.
    name = msg.field(message, "tool_name")
    return {"role": role, "parts": [msg.tool_response_part(name, msg.field(message, "content"))]}


def _tool_definitions(tools: Any) -> list[msg.Part] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    # A Python function is declared by the client from its signature: it is named here.
    return [
        {"type": "function", "name": getattr(tool, "__name__", str(tool))}
        if callable(tool) and not isinstance(tool, dict)
        else definition
        for tool in tools
        for definition in msg.function_tool_definitions([tool]) or ()
    ]


# --- responses ---------------------------------------------------------------------------------


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, final: Any) -> None:
    # No final chunk, no counts: the call's usage is unknown.
    prompt = msg.int_or_none(msg.field(final, "prompt_eval_count"))
    call.add_usage(attributes, model, prompt, msg.int_or_none(msg.field(final, "eval_count")))


def _common_attributes(response: Any, attributes: Attributes) -> str | None:
    model = msg.field(response, "model")
    reason = msg.field(response, "done_reason")
    response_basics(attributes, None, model, (reason,) if reason else None)
    return model if isinstance(model, str) else None


def _output_parts(kind: str, response: Any) -> list[msg.Part]:
    if kind == "chat":
        return _message_parts(msg.field(response, "message"))
    message = {
        "thinking": msg.field(response, "thinking"),
        "content": msg.field(response, "response"),
    }
    return _message_parts(message)


class _StreamAccumulator(ResponseState):
    """Ollama streams NDJSON: pieces of the message, then a `done` chunk with the counts."""

    __slots__ = ("_final", "_kind", "_text", "_thinking", "_tool_calls")

    def __init__(self, kind: str, request_model: str | None, capture: bool) -> None:
        super().__init__(request_model, capture)
        self._kind = kind
        self._final: Any = None
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._tool_calls: list[Any] = []

    def add(self, chunk: Any) -> None:
        if self._model is None and chunk.model:
            self._model = chunk.model
        if chunk.done:
            self._final = chunk
        if not self._capture:
            return
        if self._kind == "chat":
            message = chunk.message
            if message.content:
                self._text.append(message.content)
            if message.thinking:
                self._thinking.append(message.thinking)
            if message.tool_calls:
                self._tool_calls.extend(message.tool_calls)
        else:
            if chunk.response:
                self._text.append(chunk.response)
            if chunk.thinking:
                self._thinking.append(chunk.thinking)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        if self._final is not None:
            _common_attributes(self._final, attributes)
        elif self._model:
            attributes[semconv.RESPONSE_MODEL] = self._model
        if self._capture:
            message = {
                "thinking": "".join(self._thinking),
                "content": "".join(self._text),
                "tool_calls": self._tool_calls,
            }
            reason = msg.field(self._final, "done_reason") if self._final is not None else None
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [msg.output_message(_message_parts(message), reason)]
            )
        _add_usage(call, attributes, self.model, self._final)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


def _request_model(args: Any, kwargs: Any) -> str | None:
    model = _argument(args, kwargs, 0, "model")
    return model if isinstance(model, str) and model else None


class OllamaWrappers(CallWrappers):
    """Spans for the ollama client's chat and generate calls."""

    library = "ollama"
    targets = _TARGETS

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        model = _request_model(args, kwargs)
        operation = semconv.OP_CHAT if kind == "chat" else semconv.OP_TEXT_COMPLETION
        provider = semconv.PROVIDER_OLLAMA
        stream = kwargs.get("stream") is True
        base_url = getattr(getattr(instance, "_client", None), "base_url", None)
        attributes = opening(operation, provider, model, stream, server_attributes(base_url))
        _PARAMETERS.read(kwargs.get("options"), attributes)
        self.add_content(attributes, lambda: _request_content(kind, args, kwargs))
        return CallStart(kind, operation, provider, model, attributes, stream)

    def response_attributes(self, call: LLMCall, start: CallStart, response: Any) -> Attributes:
        attributes: Attributes = {}
        model = _common_attributes(response, attributes)
        self.add_output(
            attributes,
            lambda: [
                msg.output_message(
                    _output_parts(start.kind, response), msg.field(response, "done_reason")
                )
            ],
        )
        _add_usage(call, attributes, model or start.model, response)
        return attributes

    def accumulator(self, call: LLMCall, start: CallStart) -> StreamAccumulator:
        return _StreamAccumulator(start.kind, start.model, self.capture_content)


def _request_content(kind: str, args: Any, kwargs: Any) -> msg.Part:
    if kind == "chat":
        return {
            semconv.INPUT_MESSAGES: msg.converted_messages(
                _argument(args, kwargs, 1, "messages"), _message
            ),
            semconv.TOOL_DEFINITIONS: _tool_definitions(kwargs.get("tools")),
        }
    prompt = _argument(args, kwargs, 1, "prompt")
    system = kwargs.get("system")
    return {
        semconv.INPUT_MESSAGES: [{"role": "user", "parts": [msg.text_part(prompt)]}]
        if prompt
        else None,
        semconv.SYSTEM_INSTRUCTIONS: [msg.text_part(system)]
        if isinstance(system, str) and system
        else None,
    }


class OllamaInstrumentor(ClientInstrumentor):
    """Spans for the `ollama` client's chat and generate, sync and async, plain and streamed."""

    wrappers = OllamaWrappers

    def after_patching(self) -> None:
        # `ollama.chat` is `_client.chat`, bound before patching when the application imported
        # ollama first: bind it again through the patched class, unless the user replaced it.
        library = sys.modules.get("ollama")
        default_client = getattr(library, "_client", None)
        self._rebound = []
        for name in _MODULE_ALIASES:
            alias = getattr(library, name, None)
            if default_client is not None and getattr(alias, "__self__", None) is default_client:
                setattr(library, name, getattr(default_client, name))
                self._rebound.append(name)

    def after_unpatching(self) -> None:
        library = sys.modules.get("ollama")
        default_client = getattr(library, "_client", None)
        for name in getattr(self, "_rebound", ()):
            setattr(library, name, getattr(default_client, name))
        self._rebound = []
