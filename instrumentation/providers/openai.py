"""OpenAI client instrumentation: chat completions and embeddings, sync and async, streamed.

`OpenAIInstrumentor` patches, with wrapt, the client methods every call goes through:
`chat.completions.create` (plain and `stream=True`; the `stream()` helper calls it too),
`chat.completions.parse`, and `embeddings.create`, on the sync and async resource
classes. Each call becomes one CLIENT span built by `_spans`; streams are wrapped by
`_streams`. The `openai` package is imported only when instrumenting.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from assay.instrumentation import config, semconv
from assay.instrumentation._spans import (
    Attributes,
    LLMCall,
    report_internal_error,
    should_trace,
    start_call,
    to_json,
)
from assay.instrumentation._streams import AsyncStreamProxy, SyncStreamProxy
from assay.instrumentation.providers.package import OPENAI_INSTRUMENTS

_CHAT = "openai.resources.chat.completions"
_EMBEDDINGS = "openai.resources.embeddings"
# (module, class, method, kind of call). Missing ones (older or newer clients) are skipped.
_TARGETS: tuple[tuple[str, str, str, str], ...] = (
    (_CHAT, "Completions", "create", "chat"),
    (_CHAT, "AsyncCompletions", "create", "async_chat"),
    (_CHAT, "Completions", "parse", "chat"),
    (_CHAT, "AsyncCompletions", "parse", "async_chat"),
    ("openai.resources.beta.chat.completions", "Completions", "parse", "chat"),
    ("openai.resources.beta.chat.completions", "AsyncCompletions", "parse", "async_chat"),
    (_EMBEDDINGS, "Embeddings", "create", "embeddings"),
    (_EMBEDDINGS, "AsyncEmbeddings", "create", "async_embeddings"),
)

_AZURE_CLIENTS = frozenset({"AzureOpenAI", "AsyncAzureOpenAI"})
_AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")

_FLOAT_PARAMS = (
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("top_p", semconv.REQUEST_TOP_P),
    ("frequency_penalty", semconv.REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", semconv.REQUEST_PRESENCE_PENALTY),
)
_NUMBER = (int, float)


# --- provider detection ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Endpoint:
    base_url: object  # the client's URL object, compared by identity to notice a change
    provider: str
    attributes: Mapping[str, Any]


def _detect_endpoint(client: Any, base_url: object) -> _Endpoint:
    provider = semconv.PROVIDER_OPENAI
    attributes: dict[str, Any] = {}
    if base_url is not None:
        parts = urlsplit(str(base_url))
        host = parts.hostname or ""
        if host:
            attributes[semconv.SERVER_ADDRESS] = host
            attributes[semconv.SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
        if host.endswith(_AZURE_HOST_SUFFIXES):
            provider = semconv.PROVIDER_AZURE_OPENAI
    if any(cls.__name__ in _AZURE_CLIENTS for cls in type(client).__mro__):
        provider = semconv.PROVIDER_AZURE_OPENAI
    attributes[semconv.PROVIDER_NAME] = provider
    return _Endpoint(base_url, provider, attributes)


class _EndpointCache:
    """Provider and server attributes per client, recomputed only when its base_url changes."""

    def __init__(self) -> None:
        # Keyed by id(client) with a weak reference to check identity: cheaper per call than a
        # WeakKeyDictionary, which builds a new weak reference for every lookup.
        self._by_client: dict[int, tuple[weakref.ref[Any], _Endpoint]] = {}

    def get(self, resource: Any) -> _Endpoint:
        client = getattr(resource, "_client", None)
        base_url = getattr(client, "base_url", None)
        key = id(client)
        cached = self._by_client.get(key)
        if cached is not None and cached[0]() is client and cached[1].base_url is base_url:
            return cached[1]
        endpoint = _detect_endpoint(client, base_url)
        try:
            reference = weakref.ref(client, partial(self._forget, key))
        except TypeError:  # a client that cannot be weakly referenced: detect every time
            return endpoint
        self._by_client[key] = (reference, endpoint)
        return endpoint

    def _forget(self, key: int, _: object) -> None:
        self._by_client.pop(key, None)


# --- messages in the GenAI JSON shape ----------------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    # Request params are plain dicts (TypedDicts); messages handed back from a response are
    # pydantic models. Both are read without converting them.
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _image_part(url: Any) -> dict[str, Any]:
    if isinstance(url, str) and url.startswith("data:"):
        # An inline image can be megabytes of base64: keep its type, not its bytes.
        return {"type": "blob", "modality": "image", "mime_type": url[5:].split(";", 1)[0]}
    return {"type": "uri", "modality": "image", "uri": url}


def _content_parts(content: Any, parts: list[dict[str, Any]]) -> None:
    if content is None:
        return
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
        return
    if not isinstance(content, (list, tuple)):
        parts.append({"type": "text", "content": str(content)})
        return
    for part in content:
        kind = _field(part, "type")
        if kind == "text":
            parts.append({"type": "text", "content": _field(part, "text")})
        elif kind == "image_url":
            parts.append(_image_part(_field(_field(part, "image_url"), "url")))
        elif kind == "input_audio":
            audio_format = _field(_field(part, "input_audio"), "format")
            parts.append(
                {"type": "blob", "modality": "audio", "mime_type": f"audio/{audio_format}"}
            )
        elif kind == "file":
            file = _field(part, "file")
            parts.append(
                {
                    "type": "file",
                    "file_id": _field(file, "file_id"),
                    "name": _field(file, "filename"),
                }
            )
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": _field(part, "refusal")})
        else:
            parts.append({"type": str(kind)})


def _plain_text(content: Any) -> Any:
    if isinstance(content, (list, tuple)):
        return "".join(str(_field(part, "text") or "") for part in content)
    return content


def _tool_call_part(tool_call: Any) -> dict[str, Any]:
    function = _field(tool_call, "function")
    if function is not None:
        name, arguments = _field(function, "name"), _field(function, "arguments")
    else:  # custom tools carry free-form input instead of JSON arguments
        custom = _field(tool_call, "custom")
        name, arguments = _field(custom, "name"), _field(custom, "input")
    return {
        "type": "tool_call",
        "id": _field(tool_call, "id"),
        "name": name,
        "arguments": arguments,
    }


def _input_messages(messages: Any) -> list[dict[str, Any]] | None:
    # Only a list or tuple is read: iterating a generator would consume the user's request.
    if not isinstance(messages, (list, tuple)):
        return None
    converted = []
    for message in messages:
        if type(message) is dict:
            content = message.get("content")
            # The common case, a plain text message, in one step.
            if type(content) is str and len(message) == 2:
                converted.append(
                    {"role": message.get("role"), "parts": [{"type": "text", "content": content}]}
                )
                continue
        converted.append(_input_message(message))
    return converted


def _input_message(message: Any) -> dict[str, Any]:
    role = _field(message, "role")
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": _field(message, "tool_call_id"),
                "response": _plain_text(_field(message, "content")),
            }
        )
    elif role == "function":  # the deprecated function-calling result
        parts.append(
            {
                "type": "tool_call_response",
                "id": _field(message, "name"),
                "response": _field(message, "content"),
            }
        )
    else:
        _content_parts(_field(message, "content"), parts)
        tool_calls = _field(message, "tool_calls")
        if tool_calls:
            parts.extend(_tool_call_part(tool_call) for tool_call in tool_calls)
        function_call = _field(message, "function_call")
        if function_call is not None:
            parts.append(_tool_call_part({"function": function_call}))
    entry: dict[str, Any] = {"role": role, "parts": parts}
    name = _field(message, "name")
    if name and role != "function":
        entry["name"] = name
    return entry


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        function = _field(tool, "function")
        if function is None:
            definitions.append(tool)
            continue
        definition = {"type": "function", "name": _field(function, "name")}
        description = _field(function, "description")
        if description:
            definition["description"] = description
        parameters = _field(function, "parameters")
        if parameters is not None:
            definition["parameters"] = parameters
        definitions.append(definition)
    return definitions


def _output_message(
    role: str | None,
    text: str | None,
    refusal: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str | None,
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"type": "text", "content": text})
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    parts.extend(tool_calls)
    message: dict[str, Any] = {"role": role or "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return message


# --- request and response attributes -----------------------------------------------------------


def _chat_request_attributes(
    kwargs: Mapping[str, Any], attributes: Attributes, capture: bool
) -> None:
    # Keyword values may be the client's `omit`/`NOT_GIVEN` sentinels (the `stream()` helper
    # passes every parameter): the type checks below skip them.
    for key, name in _FLOAT_PARAMS:
        value = kwargs.get(key)
        if type(value) in _NUMBER:
            attributes[name] = value
    max_tokens = kwargs.get("max_completion_tokens")
    if type(max_tokens) is not int:
        max_tokens = kwargs.get("max_tokens")
    if type(max_tokens) is int:
        attributes[semconv.REQUEST_MAX_TOKENS] = max_tokens
    seed = kwargs.get("seed")
    if type(seed) is int:
        attributes[semconv.REQUEST_SEED] = seed
    choices = kwargs.get("n")
    if type(choices) is int and choices != 1:
        attributes[semconv.REQUEST_CHOICE_COUNT] = choices
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, (list, tuple)):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    if capture:
        # Content is the most varied input: a failure here loses the content, not the span.
        try:
            messages = _input_messages(kwargs.get("messages"))
            if messages is not None:
                attributes[semconv.INPUT_MESSAGES] = to_json(messages)
            tools = _tool_definitions(kwargs.get("tools"))
            if tools:
                attributes[semconv.TOOL_DEFINITIONS] = to_json(tools)
        except Exception:
            report_internal_error("converting openai input messages")


def _add_chat_usage(
    call: LLMCall, attributes: Attributes, model: str | None, usage: Any | None
) -> None:
    if usage is None:
        call.add_usage(attributes, model, None, None)
        return
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    call.add_usage(
        attributes,
        model,
        getattr(usage, "prompt_tokens", None),
        getattr(usage, "completion_tokens", None),
        cached_input_tokens=getattr(prompt_details, "cached_tokens", None),
        cache_creation_input_tokens=getattr(prompt_details, "cache_write_tokens", None),
        reasoning_output_tokens=getattr(completion_details, "reasoning_tokens", None),
    )


def _output_messages(choices: Any) -> list[dict[str, Any]]:
    messages = []
    for choice in choices:
        message = choice.message
        tool_calls = [_tool_call_part(tool_call) for tool_call in message.tool_calls or ()]
        function_call = getattr(message, "function_call", None)
        if function_call is not None:
            tool_calls.append(_tool_call_part({"function": function_call}))
        messages.append(
            _output_message(
                message.role,
                message.content,
                getattr(message, "refusal", None),
                tool_calls,
                choice.finish_reason,
            )
        )
    return messages


def _chat_response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    response_id = getattr(response, "id", None)
    if response_id:
        attributes[semconv.RESPONSE_ID] = response_id
    model = getattr(response, "model", None)
    if model:
        attributes[semconv.RESPONSE_MODEL] = model
    choices = getattr(response, "choices", None) or ()
    finish_reasons = tuple(choice.finish_reason for choice in choices if choice.finish_reason)
    if finish_reasons:
        attributes[semconv.RESPONSE_FINISH_REASONS] = finish_reasons
    if capture:
        try:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(_output_messages(choices))
        except Exception:
            report_internal_error("converting openai output messages")
    _add_chat_usage(call, attributes, model or request_model, getattr(response, "usage", None))
    return attributes


def _embeddings_response_attributes(
    call: LLMCall, response: Any, request_model: str | None, dimensions_known: bool
) -> Attributes:
    attributes: Attributes = {}
    model = getattr(response, "model", None)
    if model:
        attributes[semconv.RESPONSE_MODEL] = model
    if not dimensions_known:
        data = getattr(response, "data", None)
        vector = getattr(data[0], "embedding", None) if data else None
        if isinstance(vector, list):
            attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
    usage = getattr(response, "usage", None)
    # Embeddings have input tokens only; the output-token count does not apply.
    input_tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
    call.add_usage(attributes, model or request_model, input_tokens, None)
    return attributes


class _ChoiceState:
    __slots__ = ("finish_reason", "refusal", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.text: list[str] = []
        self.refusal: list[str] = []
        # by tool-call index: [id, name, argument fragments]
        self.tool_calls: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None


class _ChatStreamAccumulator:
    """What a chat stream's span needs, gathered chunk by chunk without copying chunks."""

    __slots__ = ("_capture", "_choices", "_model", "_request_model", "_response_id", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._choices: dict[int, _ChoiceState] = {}

    def add(self, chunk: Any) -> None:
        # Azure's first chunk (prompt filter results) has an empty id and model.
        if self._response_id is None and chunk.id:
            self._response_id = chunk.id
        if self._model is None and chunk.model:
            self._model = chunk.model
        # getattr: LiteLLM's OpenAI-shaped chunks leave out `usage` (and `delta.refusal`).
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        for choice in chunk.choices:
            state = self._choices.get(choice.index)
            if state is None:
                state = self._choices[choice.index] = _ChoiceState()
            if choice.finish_reason:
                state.finish_reason = choice.finish_reason
            if not self._capture:
                continue
            delta = choice.delta
            if delta is None:
                continue
            if delta.role:
                state.role = delta.role
            if delta.content:
                state.text.append(delta.content)
            refusal = getattr(delta, "refusal", None)
            if refusal:
                state.refusal.append(refusal)
            if delta.tool_calls:
                for tool_call in delta.tool_calls:
                    entry = state.tool_calls.get(tool_call.index)
                    if entry is None:
                        entry = state.tool_calls[tool_call.index] = [None, None, []]
                    if tool_call.id:
                        entry[0] = tool_call.id
                    function = tool_call.function
                    if function is not None:
                        if function.name:
                            entry[1] = function.name
                        if function.arguments:
                            entry[2].append(function.arguments)
            function_call = delta.function_call
            if function_call is not None:
                entry = state.tool_calls.setdefault(-1, [None, None, []])
                if function_call.name:
                    entry[1] = function_call.name
                if function_call.arguments:
                    entry[2].append(function_call.arguments)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        if self._response_id:
            attributes[semconv.RESPONSE_ID] = self._response_id
        if self._model:
            attributes[semconv.RESPONSE_MODEL] = self._model
        choices = [self._choices[index] for index in sorted(self._choices)]
        finish_reasons = tuple(state.finish_reason for state in choices if state.finish_reason)
        if finish_reasons:
            attributes[semconv.RESPONSE_FINISH_REASONS] = finish_reasons
        if self._capture:
            try:
                attributes[semconv.OUTPUT_MESSAGES] = to_json(self._output_messages(choices))
            except Exception:
                report_internal_error("converting openai streamed messages")
        _add_chat_usage(call, attributes, self._model or self._request_model, self._usage)
        return attributes

    @staticmethod
    def _output_messages(choices: list[_ChoiceState]) -> list[dict[str, Any]]:
        return [
            _output_message(
                state.role,
                "".join(state.text),
                "".join(state.refusal),
                [
                    {
                        "type": "tool_call",
                        "id": tc[0],
                        "name": tc[1],
                        "arguments": "".join(tc[2]),
                    }
                    for _, tc in sorted(state.tool_calls.items())
                ],
                state.finish_reason,
            )
            for state in choices
        ]


def _request_model(kwargs: Mapping[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) else None


# --- the wrappers ------------------------------------------------------------------------------


class _OpenAIWrappers:
    """The wrapt wrappers, bound to one tracer and capture setting."""

    def __init__(self, tracer: trace.Tracer, capture_content: bool, openai_module: Any) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        # Bound methods captured before `uninstrument` (e.g. by `with_raw_response`) keep
        # calling the wrapper; this switch turns it into a pass-through.
        self.enabled = True
        self._endpoints = _EndpointCache()
        self._stream_cls: type = openai_module.Stream
        self._async_stream_cls: type = openai_module.AsyncStream
        try:  # a private module: `with_raw_response` results are read only where it exists
            legacy = importlib.import_module("openai._legacy_response")
        except ImportError:
            legacy = None
        self._legacy_response_cls: Any = getattr(legacy, "LegacyAPIResponse", None)

    def by_kind(self, kind: str) -> Callable[..., Any]:
        wrapper: Callable[..., Any] = getattr(self, kind)
        return wrapper

    # -- starting a call

    def _start_chat(self, resource: Any, kwargs: Mapping[str, Any]) -> LLMCall | None:
        try:
            if not (self.enabled and should_trace()):
                return None
            endpoint = self._endpoints.get(resource)
            model = _request_model(kwargs)
            attributes: Attributes = {
                semconv.OPERATION_NAME: semconv.OP_CHAT,
                **endpoint.attributes,
            }
            if model:
                attributes[semconv.REQUEST_MODEL] = model
            attributes[semconv.REQUEST_STREAM] = kwargs.get("stream") is True
            _chat_request_attributes(kwargs, attributes, self.capture_content)
        except Exception:
            report_internal_error("reading an openai chat request")
            return None
        return start_call(self.tracer, semconv.OP_CHAT, endpoint.provider, model, attributes)

    def _start_embeddings(self, resource: Any, kwargs: Mapping[str, Any]) -> LLMCall | None:
        try:
            if not (self.enabled and should_trace()):
                return None
            endpoint = self._endpoints.get(resource)
            model = _request_model(kwargs)
            attributes: Attributes = {
                semconv.OPERATION_NAME: semconv.OP_EMBEDDINGS,
                **endpoint.attributes,
            }
            if model:
                attributes[semconv.REQUEST_MODEL] = model
            encoding_format = kwargs.get("encoding_format")
            if isinstance(encoding_format, str):
                attributes[semconv.REQUEST_ENCODING_FORMATS] = (encoding_format,)
            dimensions = kwargs.get("dimensions")
            if type(dimensions) is int:
                attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = dimensions
        except Exception:
            report_internal_error("reading an openai embeddings request")
            return None
        return start_call(self.tracer, semconv.OP_EMBEDDINGS, endpoint.provider, model, attributes)

    # -- finishing a call

    def _parsed(self, result: Any, stream: bool) -> Any:
        """The response model inside `result`, or None when reading it would change the call."""
        if hasattr(result, "choices") or hasattr(result, "data"):
            return result
        # `with_raw_response`: parse() is cached, so the user's own parse() gets this same
        # object. A raw stream or a `with_streaming_response` body is left untouched.
        if (
            not stream
            and self._legacy_response_cls is not None
            and isinstance(result, self._legacy_response_cls)
        ):
            return result.parse()
        return None

    def _finish_chat(
        self, call: LLMCall, result: Any, kwargs: Mapping[str, Any], sync: bool
    ) -> Any:
        try:
            stream = kwargs.get("stream") is True
            if stream:
                proxy_cls = SyncStreamProxy if sync else AsyncStreamProxy
                stream_cls = self._stream_cls if sync else self._async_stream_cls
                if isinstance(result, stream_cls):
                    accumulator = _ChatStreamAccumulator(
                        _request_model(kwargs), self.capture_content
                    )
                    return proxy_cls(result, call, accumulator)
            response = self._parsed(result, stream)
            if response is None:
                call.end()
            else:
                call.end(
                    _chat_response_attributes(
                        call, response, _request_model(kwargs), self.capture_content
                    )
                )
        except Exception:
            report_internal_error("reading an openai chat response")
            call.end()
        return result

    def _finish_embeddings(self, call: LLMCall, result: Any, kwargs: Mapping[str, Any]) -> Any:
        try:
            response = self._parsed(result, stream=False)
            if response is None:
                call.end()
            else:
                dimensions_known = type(kwargs.get("dimensions")) is int
                call.end(
                    _embeddings_response_attributes(
                        call, response, _request_model(kwargs), dimensions_known
                    )
                )
        except Exception:
            report_internal_error("reading an openai embeddings response")
            call.end()
        return result

    # -- the wrappers themselves: the user's call runs exactly once, outside Assay's try blocks

    def chat(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self._start_chat(instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.detach(token)
        return self._finish_chat(call, result, kwargs, sync=True)

    async def async_chat(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self._start_chat(instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.detach(token)
        return self._finish_chat(call, result, kwargs, sync=False)

    def embeddings(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self._start_embeddings(instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.detach(token)
        return self._finish_embeddings(call, result, kwargs)

    async def async_embeddings(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self._start_embeddings(instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.detach(token)
        return self._finish_embeddings(call, result, kwargs)


# --- the instrumentor --------------------------------------------------------------------------


def _tracer_version() -> str:
    try:
        from importlib.metadata import version

        return version("assay")
    except Exception:
        return "0"


class OpenAIInstrumentor(BaseInstrumentor):
    """Spans for the `openai` client (1.40 and later).

    `instrument(tracer_provider=..., capture_content=...)`: without a provider the global
    one is used; `capture_content` defaults to `ASSAY_CAPTURE_CONTENT` (true).
    """

    def __init__(self) -> None:
        # BaseInstrumentor is a singleton whose __init__ runs on every construction.
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[type, str]] = []
            self._wrappers: _OpenAIWrappers | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return OPENAI_INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        import openai

        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            "assay.instrumentation.openai",
            _tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        wrappers = _OpenAIWrappers(tracer, bool(capture), openai)
        self._wrappers = wrappers
        for module_name, class_name, method, kind in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            cls = getattr(module, class_name, None)
            # A class re-exported under a second path is patched once.
            if cls is None or method not in vars(cls) or (cls, method) in self._patched:
                continue
            wrapt.wrap_function_wrapper(cls, method, wrappers.by_kind(kind))
            self._patched.append((cls, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._wrappers is not None:
            self._wrappers.enabled = False
            self._wrappers = None
        for cls, method in reversed(self._patched):
            unwrap(cls, method)
        self._patched.clear()
