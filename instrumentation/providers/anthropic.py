"""Anthropic client instrumentation: messages, sync and async, plain and streamed.

`AnthropicInstrumentor` patches, with wrapt, `messages.create` (plain and `stream=True`),
`messages.parse` and the `messages.stream(...)` context manager, on the sync and async
resource classes and their `beta` twins. Each call becomes one CLIENT span built by
`_spans`; streams are wrapped by `_streams`, so the span ends exactly once however the
user reads the stream (events, `text_stream`, `get_final_message()`) or leaves it.

Anthropic counts cached prompt tokens apart from `input_tokens`; the span's
`gen_ai.usage.input_tokens` is their sum, as the GenAI conventions say, and the cost
prices cache reads and cache writes at their own rates.

Recent `anthropic` releases trace their own API calls when a global tracer provider
is set; inside an Assay span that second LLM span is suppressed, so one call is one
span. The `anthropic` package is imported only when instrumenting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import wrapt
from opentelemetry import trace

from assay.instrumentation import semconv
from assay.instrumentation._spans import (
    Attributes,
    LLMCall,
    in_llm_call,
    report_internal_error,
    to_json,
)
from assay.instrumentation._streams import AsyncStreamProxy, SyncStreamProxy
from assay.instrumentation.providers._common import (
    Endpoint,
    ProviderInstrumentor,
    ProviderWrappers,
    Target,
    field,
    int_or_none,
    output_message,
    request_model,
    response_identity,
    run,
    run_async,
    server_attributes,
)
from assay.instrumentation.providers.package import ANTHROPIC_INSTRUMENTS


def _messages_targets(module: str) -> tuple[Target, ...]:
    return (
        (module, "Messages", "create", "create"),
        (module, "AsyncMessages", "create", "async_create"),
        (module, "Messages", "parse", "create"),
        (module, "AsyncMessages", "parse", "async_create"),
        (module, "Messages", "stream", "stream"),
        (module, "AsyncMessages", "stream", "async_stream"),
    )


_TARGETS: tuple[Target, ...] = (
    *_messages_targets("anthropic.resources.messages.messages"),
    *_messages_targets("anthropic.resources.messages"),  # before the resource became a package
    *_messages_targets("anthropic.resources.beta.messages.messages"),
    *_messages_targets("anthropic.resources.beta.messages"),
    # The client's own span of an API call: not started inside an Assay LLM span.
    ("anthropic._base_client", "", "start_api_call_span", "sdk_span"),
)

_CLOUD_CLIENTS = {
    "AnthropicBedrock": semconv.PROVIDER_AWS_BEDROCK,
    "AsyncAnthropicBedrock": semconv.PROVIDER_AWS_BEDROCK,
    "AnthropicVertex": semconv.PROVIDER_GCP_VERTEX_AI,
    "AsyncAnthropicVertex": semconv.PROVIDER_GCP_VERTEX_AI,
}

_NUMBER_PARAMS = (
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("top_p", semconv.REQUEST_TOP_P),
)
_NUMBER = (int, float)


def _detect_endpoint(client: Any, base_url: object) -> Endpoint:
    provider = semconv.PROVIDER_ANTHROPIC
    for cls in type(client).__mro__:
        cloud = _CLOUD_CLIENTS.get(cls.__name__)
        if cloud is not None:
            provider = cloud
            break
    _, attributes = server_attributes(base_url)
    attributes[semconv.PROVIDER_NAME] = provider
    return Endpoint(base_url, provider, attributes)


# --- content blocks in the GenAI JSON shape ----------------------------------------------------


def _source_part(block: Any, modality: str) -> dict[str, Any]:
    source = field(block, "source")
    kind = field(source, "type")
    if kind == "url":
        return {"type": "uri", "modality": modality, "uri": field(source, "url")}
    if kind == "file":
        return {"type": "file", "modality": modality, "file_id": field(source, "file_id")}
    if kind == "text":  # a plain-text document
        return {"type": "text", "content": field(source, "data")}
    # Inline base64 can be megabytes: keep its type, not its bytes.
    return {"type": "blob", "modality": modality, "mime_type": field(source, "media_type")}


def _tool_result_text(content: Any) -> Any:
    if isinstance(content, (list, tuple)):
        return "".join(str(field(part, "text") or "") for part in content)
    return content


def _part(block: Any) -> dict[str, Any]:
    """One content block (request dict or response model) as a GenAI message part."""
    if isinstance(block, str):
        return {"type": "text", "content": block}
    kind = field(block, "type")
    if kind == "text":
        return {"type": "text", "content": field(block, "text")}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": field(block, "id"),
            "name": field(block, "name"),
            "arguments": field(block, "input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": field(block, "tool_use_id"),
            "response": _tool_result_text(field(block, "content")),
        }
    if kind == "thinking":
        return {"type": "reasoning", "content": field(block, "thinking")}
    if kind == "redacted_thinking":
        return {"type": "reasoning"}
    if kind == "image":
        return _source_part(block, "image")
    if kind == "document":
        return _source_part(block, "document")
    if kind in ("server_tool_use", "mcp_tool_use"):
        return {
            "type": "server_tool_call",
            "id": field(block, "id"),
            "name": field(block, "name"),
            "server_tool_call": {"type": field(block, "name"), "input": field(block, "input")},
        }
    if isinstance(kind, str) and kind.endswith("_tool_result"):
        return {
            "type": "server_tool_call_response",
            "id": field(block, "tool_use_id"),
            "server_tool_call_response": {"type": kind},
        }
    return {"type": str(kind)}


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, (list, tuple)):
        return [{"type": "text", "content": str(content)}]
    return [_part(block) for block in content]


def _input_messages(messages: Any) -> list[dict[str, Any]] | None:
    # Only a list or tuple is read: iterating a generator would consume the user's request.
    if not isinstance(messages, (list, tuple)):
        return None
    converted = []
    for message in messages:
        parts = _parts(field(message, "content"))
        role = field(message, "role")
        # Anthropic sends tool results in a user turn; the conventions give them role "tool".
        if role == "user" and parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"
        converted.append({"role": role, "parts": parts})
    return converted


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        schema = field(tool, "input_schema")
        if schema is None:  # a server tool (web search, code execution, ...): as given
            definitions.append({"type": field(tool, "type"), "name": field(tool, "name")})
            continue
        definition = {"type": "function", "name": field(tool, "name")}
        description = field(tool, "description")
        if description:
            definition["description"] = description
        definition["parameters"] = schema
        definitions.append(definition)
    return definitions


# --- request and response attributes -----------------------------------------------------------


def _request_attributes(kwargs: Mapping[str, Any], attributes: Attributes, capture: bool) -> None:
    # Keyword values may be the client's `omit`/`NOT_GIVEN` sentinels: the type checks skip them.
    # Clients from 2.0 on take sampling parameters only through `extra_body`.
    extra = kwargs.get("extra_body")
    sampling = extra if isinstance(extra, dict) else kwargs
    for key, name in _NUMBER_PARAMS:
        value = kwargs.get(key, sampling.get(key))
        if type(value) in _NUMBER:
            attributes[name] = value
    top_k = kwargs.get("top_k", sampling.get("top_k"))
    if type(top_k) is int:
        attributes[semconv.REQUEST_TOP_K] = top_k
    max_tokens = kwargs.get("max_tokens")
    if type(max_tokens) is int:
        attributes[semconv.REQUEST_MAX_TOKENS] = max_tokens
    stop = kwargs.get("stop_sequences")
    if isinstance(stop, (list, tuple)):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    if capture:
        # Content is the most varied input: a failure here loses the content, not the span.
        try:
            system = kwargs.get("system")
            if isinstance(system, (str, list, tuple)):
                attributes[semconv.SYSTEM_INSTRUCTIONS] = to_json(_parts(system))
            messages = _input_messages(kwargs.get("messages"))
            if messages is not None:
                attributes[semconv.INPUT_MESSAGES] = to_json(messages)
            tools = _tool_definitions(kwargs.get("tools"))
            if tools:
                attributes[semconv.TOOL_DEFINITIONS] = to_json(tools)
        except Exception:
            report_internal_error("converting anthropic input messages")


def _add_usage(
    call: LLMCall,
    attributes: Attributes,
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read: int | None,
    cache_creation: int | None,
    thinking_tokens: int | None,
) -> None:
    # Anthropic's input_tokens leaves the cached ones out; the conventions count them in.
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


def _response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    model = response_identity(response, attributes)
    stop_reason = getattr(response, "stop_reason", None)
    if isinstance(stop_reason, str):
        attributes[semconv.RESPONSE_FINISH_REASONS] = (stop_reason,)
    else:
        stop_reason = None
    if capture:
        try:
            parts = _parts(getattr(response, "content", None))
            attributes[semconv.OUTPUT_MESSAGES] = to_json([output_message(parts, stop_reason)])
        except Exception:
            report_internal_error("converting anthropic output messages")
    usage = getattr(response, "usage", None)
    _add_usage(
        call,
        attributes,
        model or request_model,
        int_or_none(getattr(usage, "input_tokens", None)),
        int_or_none(getattr(usage, "output_tokens", None)),
        int_or_none(getattr(usage, "cache_read_input_tokens", None)),
        int_or_none(getattr(usage, "cache_creation_input_tokens", None)),
        int_or_none(
            getattr(getattr(usage, "output_tokens_details", None), "thinking_tokens", None)
        ),
    )
    return attributes


class _Block:
    __slots__ = ("id", "input", "kind", "name", "text")

    def __init__(self, block: Any) -> None:
        self.kind = getattr(block, "type", None)
        self.id = getattr(block, "id", None)
        self.name = getattr(block, "name", None)
        self.text: list[str] = []  # text, thinking, or a tool call's JSON input fragments
        self.input = getattr(block, "input", None)

    def part(self) -> dict[str, Any]:
        if self.kind == "text":
            return {"type": "text", "content": "".join(self.text)}
        if self.kind == "thinking":
            return {"type": "reasoning", "content": "".join(self.text)}
        if self.kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            arguments: Any = self.input
            if self.text:
                joined = "".join(self.text)
                try:
                    arguments = json.loads(joined)
                except ValueError:  # cut short (stream closed early): keep what came
                    arguments = joined
            if self.kind != "tool_use":
                return {
                    "type": "server_tool_call",
                    "id": self.id,
                    "name": self.name,
                    "server_tool_call": {"type": self.name, "input": arguments},
                }
            return {"type": "tool_call", "id": self.id, "name": self.name, "arguments": arguments}
        return {"type": str(self.kind)}


class _MessageStreamAccumulator:
    """What a message stream's span needs, gathered event by event without copying events."""

    __slots__ = (
        "_blocks",
        "_cache_creation",
        "_cache_read",
        "_capture",
        "_input_tokens",
        "_model",
        "_output_tokens",
        "_request_model",
        "_response_id",
        "_stop_reason",
        "_thinking_tokens",
    )

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._model: str | None = None
        self._stop_reason: str | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self._cache_read: int | None = None
        self._cache_creation: int | None = None
        self._thinking_tokens: int | None = None
        self._blocks: dict[int, _Block] = {}

    def _take_usage(self, usage: Any) -> None:
        # message_start carries the input side; message_delta the cumulative output side
        # (and, from 2025 on, the input side again).
        if usage is None:
            return
        value = getattr(usage, "input_tokens", None)
        if value is not None:
            self._input_tokens = value
        value = getattr(usage, "output_tokens", None)
        if value is not None:
            self._output_tokens = value
        value = getattr(usage, "cache_read_input_tokens", None)
        if value is not None:
            self._cache_read = value
        value = getattr(usage, "cache_creation_input_tokens", None)
        if value is not None:
            self._cache_creation = value
        details = getattr(usage, "output_tokens_details", None)
        if details is not None:
            self._thinking_tokens = getattr(details, "thinking_tokens", None)

    def add(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            if not self._capture:
                return
            block = self._blocks.get(event.index)
            if block is None:
                return
            delta = event.delta
            delta_kind = delta.type
            if delta_kind == "text_delta":
                block.text.append(delta.text)
            elif delta_kind == "input_json_delta":
                block.text.append(delta.partial_json)
            elif delta_kind == "thinking_delta":
                block.text.append(delta.thinking)
        elif kind == "content_block_start":
            if self._capture:
                self._blocks[event.index] = _Block(event.content_block)
        elif kind == "message_start":
            message = event.message
            self._response_id = message.id
            self._model = message.model
            self._take_usage(message.usage)
        elif kind == "message_delta":
            stop_reason = event.delta.stop_reason
            if stop_reason:
                self._stop_reason = stop_reason
            self._take_usage(event.usage)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        if self._response_id:
            attributes[semconv.RESPONSE_ID] = self._response_id
        if self._model:
            attributes[semconv.RESPONSE_MODEL] = self._model
        if self._stop_reason:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (self._stop_reason,)
        if self._capture:
            try:
                parts = [self._blocks[index].part() for index in sorted(self._blocks)]
                attributes[semconv.OUTPUT_MESSAGES] = to_json(
                    [output_message(parts, self._stop_reason)]
                )
            except Exception:
                report_internal_error("converting anthropic streamed messages")
        # The output count of message_start is a placeholder; without a message_delta the
        # call did not finish and its usage is unknown.
        finished = self._stop_reason is not None
        _add_usage(
            call,
            attributes,
            self._model or self._request_model,
            self._input_tokens if finished else None,
            self._output_tokens if finished else None,
            self._cache_read,
            self._cache_creation,
            self._thinking_tokens,
        )
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


class _StreamManagerProxy(wrapt.ObjectProxy):
    """`messages.stream(...)`: the request, and so the span, starts on entering the manager."""

    def __init__(self, manager: Any, wrappers: _AnthropicWrappers, resource: Any, kwargs: Any):
        super().__init__(manager)
        self._self_wrappers = wrappers
        self._self_resource = resource
        self._self_kwargs = kwargs


class _SyncStreamManagerProxy(_StreamManagerProxy):
    def __enter__(self) -> Any:
        wrappers = self._self_wrappers
        call = wrappers.start_messages(self._self_resource, self._self_kwargs, stream=True)
        if call is None:
            return self.__wrapped__.__enter__()
        message_stream = run(call, self.__wrapped__.__enter__, (), {})
        wrappers.watch_message_stream(message_stream, call, self._self_kwargs, SyncStreamProxy)
        return message_stream

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)


class _AsyncStreamManagerProxy(_StreamManagerProxy):
    def __enter__(self) -> Any:
        # wrapt forwards `with` to the manager; an async one has no __enter__, and a plain
        # `with` must fail exactly as it does without Assay.
        wrapped = self.__wrapped__
        if hasattr(type(wrapped), "__enter__"):
            return wrapped.__enter__()
        with wrapped:  # raises the interpreter's own TypeError for it
            pass
        return None

    async def __aenter__(self) -> Any:
        wrappers = self._self_wrappers
        call = wrappers.start_messages(self._self_resource, self._self_kwargs, stream=True)
        if call is None:
            return await self.__wrapped__.__aenter__()
        message_stream = await run_async(call, self.__wrapped__.__aenter__, (), {})
        wrappers.watch_message_stream(message_stream, call, self._self_kwargs, AsyncStreamProxy)
        return message_stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


class _AnthropicWrappers(ProviderWrappers):
    """The wrapt wrappers, bound to one tracer and capture setting."""

    label = "an anthropic"

    def __init__(self, tracer: trace.Tracer, capture_content: bool, anthropic_module: Any) -> None:
        super().__init__(tracer, capture_content, _detect_endpoint)
        self._stream_cls: type = anthropic_module.Stream
        self._async_stream_cls: type = anthropic_module.AsyncStream
        # Messages (and beta messages) are the client's models; raw responses are not.
        self._model_cls: type = anthropic_module.BaseModel

    def start_messages(
        self, resource: Any, kwargs: Mapping[str, Any], stream: bool
    ) -> LLMCall | None:
        return self.start(resource, kwargs, semconv.OP_CHAT, stream, _request_attributes)

    def _finish(self, call: LLMCall, result: Any, kwargs: Mapping[str, Any], sync: bool) -> Any:
        try:
            if kwargs.get("stream") is True:
                stream_cls = self._stream_cls if sync else self._async_stream_cls
                if isinstance(result, stream_cls):
                    proxy_cls = SyncStreamProxy if sync else AsyncStreamProxy
                    accumulator = _MessageStreamAccumulator(
                        request_model(kwargs), self.capture_content
                    )
                    return proxy_cls(result, call, accumulator)
                call.end()  # a raw or streaming-response body: left untouched
                return result
            if isinstance(result, self._model_cls):
                call.end(
                    _response_attributes(call, result, request_model(kwargs), self.capture_content)
                )
            else:  # `with_raw_response` / `with_streaming_response`: not read, not consumed
                call.end()
        except Exception:
            report_internal_error("reading an anthropic messages response")
            call.end()
        return result

    def watch_message_stream(
        self, message_stream: Any, call: LLMCall, kwargs: Mapping[str, Any], proxy_cls: type
    ) -> None:
        """Route the helper's raw event stream through a stream proxy that ends the span."""
        try:
            raw = message_stream._raw_stream
            accumulator = _MessageStreamAccumulator(request_model(kwargs), self.capture_content)
            message_stream._raw_stream = proxy_cls(raw, call, accumulator)
        except Exception:
            report_internal_error("watching an anthropic message stream")
            call.end()

    # -- the wrappers themselves: the user's call runs exactly once, outside Assay's try blocks

    def create(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start_messages(instance, kwargs, stream=kwargs.get("stream") is True)
        if call is None:
            return wrapped(*args, **kwargs)
        result = run(call, wrapped, args, kwargs)
        return self._finish(call, result, kwargs, sync=True)

    async def async_create(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start_messages(instance, kwargs, stream=kwargs.get("stream") is True)
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await run_async(call, wrapped, args, kwargs)
        return self._finish(call, result, kwargs, sync=False)

    def stream(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        manager = wrapped(*args, **kwargs)  # builds the manager; the request starts on enter
        if not self.enabled:
            return manager
        try:
            return _SyncStreamManagerProxy(manager, self, instance, kwargs)
        except Exception:
            report_internal_error("wrapping an anthropic message stream")
            return manager

    def async_stream(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        manager = wrapped(*args, **kwargs)
        if not self.enabled:
            return manager
        try:
            return _AsyncStreamManagerProxy(manager, self, instance, kwargs)
        except Exception:
            report_internal_error("wrapping an anthropic message stream")
            return manager

    def sdk_span(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        # The client's own span would be a second LLM span of the same call: Assay's span
        # covers it. Outside an Assay call (count_tokens, batches, ...) it is left alone.
        if self.enabled and in_llm_call():
            return None
        return wrapped(*args, **kwargs)


# --- the instrumentor --------------------------------------------------------------------------


class AnthropicInstrumentor(ProviderInstrumentor):
    """Spans for the `anthropic` client (0.40 and later)."""

    library = "anthropic"
    instruments = ANTHROPIC_INSTRUMENTS
    targets = _TARGETS

    def make_wrappers(self, tracer: trace.Tracer, capture_content: bool, module: Any) -> Any:
        return _AnthropicWrappers(tracer, capture_content, module)
