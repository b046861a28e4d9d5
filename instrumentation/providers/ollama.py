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

from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, to_json
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
from assay.instrumentation.providers.package import OLLAMA_INSTRUMENTS

_CLIENT = "ollama._client"
_TARGETS = (
    Target(_CLIENT, "Client", ("chat",), "chat", False),
    Target(_CLIENT, "Client", ("generate",), "generate", False),
    Target(_CLIENT, "AsyncClient", ("chat",), "chat", True),
    Target(_CLIENT, "AsyncClient", ("generate",), "generate", True),
)
_MODULE_ALIASES = ("chat", "generate")

_OPTION_NUMBERS = {
    "temperature": semconv.REQUEST_TEMPERATURE,
    "top_p": semconv.REQUEST_TOP_P,
    "presence_penalty": semconv.REQUEST_PRESENCE_PENALTY,
    "frequency_penalty": semconv.REQUEST_FREQUENCY_PENALTY,
}
_OPTION_INTEGERS = {
    "num_predict": semconv.REQUEST_MAX_TOKENS,
    "seed": semconv.REQUEST_SEED,
    "top_k": semconv.REQUEST_TOP_K,
}


def _argument(args: Any, kwargs: Any, position: int, name: str) -> Any:
    """A parameter that may be passed by position (`chat("llama3.2", messages)`) or by name."""
    return args[position] if len(args) > position else kwargs.get(name)


# --- messages in the GenAI JSON shape ----------------------------------------------------------


def _tool_call(tool_call: Any) -> dict[str, Any]:
    function = field(tool_call, "function")
    return tool_call_part(
        field(tool_call, "id"), field(function, "name"), field(function, "arguments")
    )


def _message_parts(message: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    thinking = field(message, "thinking")
    if thinking:
        parts.append({"type": "reasoning", "content": thinking})
    content = field(message, "content")
    if content:
        parts.append(text_part(content))
    # Images are paths or bytes: their count is kept, not their content.
    parts.extend({"type": "blob", "modality": "image"} for _ in field(message, "images") or ())
    parts.extend(_tool_call(call) for call in field(message, "tool_calls") or ())
    return parts


def _input_messages(messages: Any) -> list[dict[str, Any]] | None:
    if not isinstance(messages, (list, tuple)):
        return None
    converted = []
    for message in messages:
        role = field(message, "role")
        if role == "tool":
            # Ollama names the tool, not the call: the name stands in for the call id.
            name = field(message, "tool_name")
            parts = [tool_response_part(name, field(message, "content"))]
        else:
            parts = _message_parts(message)
        converted.append({"role": role, "parts": parts})
    return converted


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    # A Python function is declared by the client from its signature: it is named here.
    return [
        {"type": "function", "name": getattr(tool, "__name__", str(tool))}
        if callable(tool) and not isinstance(tool, dict)
        else definition
        for tool in tools
        for definition in function_tool_definitions([tool]) or ()
    ]


# --- responses ---------------------------------------------------------------------------------


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, final: Any) -> None:
    if final is None:
        call.add_usage(attributes, model, None, None)
        return
    prompt = field(final, "prompt_eval_count")
    completion = field(final, "eval_count")
    call.add_usage(
        attributes,
        model,
        prompt if type(prompt) is int else None,
        completion if type(completion) is int else None,
    )


def _common_attributes(response: Any, attributes: Attributes) -> str | None:
    model = field(response, "model")
    reason = field(response, "done_reason")
    response_basics(attributes, None, model, (reason,) if reason else None)
    return model if isinstance(model, str) else None


def _response_attributes(
    kind: str, call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    model = _common_attributes(response, attributes)
    if capture:

        def output() -> list[dict[str, Any]]:
            if kind == "chat":
                parts = _message_parts(field(response, "message"))
            else:
                message = {
                    "thinking": field(response, "thinking"),
                    "content": field(response, "response"),
                }
                parts = _message_parts(message)
            return [output_message("assistant", parts, field(response, "done_reason"))]

        output_json(attributes, output, "ollama")
    _add_usage(call, attributes, model or request_model, response)
    return attributes


class _StreamAccumulator:
    """Ollama streams NDJSON: pieces of the message, then a `done` chunk with the counts."""

    __slots__ = (
        "_capture",
        "_final",
        "_kind",
        "_model",
        "_request_model",
        "_text",
        "_thinking",
        "_tool_calls",
    )

    def __init__(self, kind: str, request_model: str | None, capture: bool) -> None:
        self._kind = kind
        self._request_model = request_model
        self._capture = capture
        self._model: str | None = None
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
            reason = field(self._final, "done_reason") if self._final is not None else None
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [output_message("assistant", _message_parts(message), reason)]
            )
        _add_usage(call, attributes, self._model or self._request_model, self._final)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


def _request_model(args: Any, kwargs: Any) -> str | None:
    model = _argument(args, kwargs, 0, "model")
    return model if isinstance(model, str) and model else None


class _OllamaWrappers(ClientWrappers):
    library = "ollama"

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        model = _request_model(args, kwargs)
        operation = semconv.OP_CHAT if kind == "chat" else semconv.OP_TEXT_COMPLETION
        provider = semconv.PROVIDER_OLLAMA
        attributes = self.opening(operation, provider, model, self.is_stream(kind, kwargs))
        server_attributes(getattr(getattr(instance, "_client", None), "base_url", None), attributes)
        options = kwargs.get("options")
        if options is not None:
            number_attributes(options, _OPTION_NUMBERS, attributes)
            number_attributes(options, _OPTION_INTEGERS, attributes, integer=True)
            add_stop_sequences(attributes, field(options, "stop"))
        self.add_content(attributes, lambda: _request_content(kind, args, kwargs))
        return CallStart(operation, provider, model, attributes)

    def is_stream(self, kind: str, kwargs: Any) -> bool:
        return kwargs.get("stream") is True

    def accumulator(self, kind: str, args: Any, kwargs: Any) -> _StreamAccumulator:
        return _StreamAccumulator(kind, _request_model(args, kwargs), self.capture_content)

    def response_attributes(
        self, kind: str, call: LLMCall, response: Any, args: Any, kwargs: Any
    ) -> Attributes:
        model = _request_model(args, kwargs)
        return _response_attributes(kind, call, response, model, self.capture_content)


def _request_content(kind: str, args: Any, kwargs: Any) -> dict[str, Any]:
    if kind == "chat":
        return {
            semconv.INPUT_MESSAGES: _input_messages(_argument(args, kwargs, 1, "messages")),
            semconv.TOOL_DEFINITIONS: _tool_definitions(kwargs.get("tools")),
        }
    prompt = _argument(args, kwargs, 1, "prompt")
    system = kwargs.get("system")
    return {
        semconv.INPUT_MESSAGES: [{"role": "user", "parts": [text_part(prompt)]}]
        if prompt
        else None,
        semconv.SYSTEM_INSTRUCTIONS: [text_part(system)]
        if isinstance(system, str) and system
        else None,
    }


class OllamaInstrumentor(ClientInstrumentor):
    """Spans for the `ollama` client's chat and generate, sync and async, plain and streamed."""

    library = "ollama"
    targets = _TARGETS
    instruments = OLLAMA_INSTRUMENTS

    wrappers = _OllamaWrappers

    def after_patching(self, library: Any) -> None:
        # `ollama.chat` is `_client.chat`, bound before patching: bind it again through the
        # patched class, unless the user replaced it.
        default_client = getattr(library, "_client", None)
        self._rebound = []
        for name in _MODULE_ALIASES:
            alias = getattr(library, name, None)
            if default_client is not None and getattr(alias, "__self__", None) is default_client:
                setattr(library, name, getattr(default_client, name))
                self._rebound.append(name)

    def after_unpatching(self, library: Any) -> None:
        default_client = getattr(library, "_client", None)
        for name in getattr(self, "_rebound", ()):
            setattr(library, name, getattr(default_client, name))
        self._rebound = []
