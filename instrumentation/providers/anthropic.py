"""Anthropic client instrumentation: messages, sync and async, plain and streamed.

`AnthropicInstrumentor` patches `messages.create` (plain and `stream=True`),
`messages.parse` and the `messages.stream(...)` context manager, on the sync and async
resource classes and their `beta` twins. Streams are wrapped so that the span ends
exactly once however the user reads the stream (events, `text_stream`,
`get_final_message()`) or leaves it. `with_raw_response` calls are read from the raw
response's JSON, which the client has already read, leaving the response untouched.

Recent `anthropic` releases trace their own API calls when a global tracer provider
is set; inside an Assay span that second LLM span is suppressed, so one call is one
span.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import wrapt

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, in_llm_call, report_internal_error
from assay.instrumentation.providers import _anthropic_blocks as blocks
from assay.instrumentation.providers import _raw_responses as raw
from assay.instrumentation.providers._call import CallStart, CallWrappers, Wrapper, opening
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import (
    Endpoint,
    raw_response_kind,
    request_model,
    server_attributes,
)

_MESSAGES_MODULES = (
    "anthropic.resources.messages.messages",
    "anthropic.resources.messages",  # before the resource became a package
    "anthropic.resources.beta.messages.messages",
    "anthropic.resources.beta.messages",
    # The Vertex and Bedrock clients' beta messages: classes whose `create = Messages.create`
    # took the beta function as the library was imported, before a patch could reach it.
    "anthropic.lib.vertex._beta_messages",
    "anthropic.lib.bedrock._beta_messages",
)
_TARGETS = (
    *(
        Target(module, prefix + "Messages", (method,), kind, is_async)
        for module in _MESSAGES_MODULES
        for prefix in ("", "Async")
        for method, kind, is_async in (
            ("create", "create", prefix == "Async"),
            ("parse", "create", prefix == "Async"),
            # `stream()` only builds a manager (a plain function either way): the request,
            # and so the span, starts when the manager is entered.
            ("stream", "stream_manager", False),
        )
    ),
    # The client's own span of an API call: not started inside an Assay LLM span.
    Target("anthropic._base_client", "", ("start_api_call_span",), "sdk_span"),
    *raw.targets("anthropic"),
)

_CLOUD_CLIENTS = {
    "AnthropicBedrock": semconv.PROVIDER_AWS_BEDROCK,
    "AsyncAnthropicBedrock": semconv.PROVIDER_AWS_BEDROCK,
    "AnthropicVertex": semconv.PROVIDER_GCP_VERTEX_AI,
    "AsyncAnthropicVertex": semconv.PROVIDER_GCP_VERTEX_AI,
}


def detect_endpoint(client: Any, base_url: object) -> Endpoint:
    """The provider (Anthropic, or the cloud behind a Bedrock or Vertex client) and server."""
    provider = semconv.PROVIDER_ANTHROPIC
    for cls in type(client).__mro__:
        cloud = _CLOUD_CLIENTS.get(cls.__name__)
        if cloud is not None:
            provider = cloud
            break
    return Endpoint(base_url, provider, server_attributes(base_url))


class AnthropicWrappers(CallWrappers):
    """Spans for the anthropic client's messages calls and message streams."""

    library = "anthropic"
    targets = _TARGETS
    detect_endpoint = staticmethod(detect_endpoint)
    response_reader = staticmethod(blocks.response_attributes)
    stream_reader = blocks.MessageEvents

    def __init__(self, tracer: Any, capture_content: bool) -> None:
        super().__init__(tracer, capture_content)
        self.raw_responses = raw.RawResponses(self)

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        endpoint = self.endpoint(instance)
        model = request_model(kwargs)
        stream = kind == "stream" or kwargs.get("stream") is True
        attributes = opening(semconv.OP_CHAT, endpoint.provider, model, stream, endpoint.server)
        blocks.request_attributes(kwargs, attributes)
        self.add_content(attributes, lambda: blocks.request_content(kwargs))
        return CallStart(
            kind,
            semconv.OP_CHAT,
            endpoint.provider,
            model,
            attributes,
            stream,
            details=raw_response_kind(kwargs),
        )

    def finish(self, call: LLMCall, start: CallStart, result: Any) -> Any:
        if start.kind == "stream":  # the helper's MessageStream: read its raw event stream
            result._raw_stream = self.stream(call, start, result._raw_stream)
            return result
        library = sys.modules["anthropic"]
        if start.stream:
            if isinstance(result, (library.Stream, library.AsyncStream)):
                return self.stream(call, start, result)
        elif isinstance(result, library.BaseModel):
            call.end(self.response_attributes(call, start, result))
            return result
        elif start.details == "raw":
            # `with_raw_response`: the client read the body with the response; its JSON is
            # read here and the response object is left as it was.
            body = json.loads(result.http_response.content)
            call.end(self.response_attributes(call, start, body))
            return result
        if raw.is_raw_response(result):
            # A body the application reads itself (`with_streaming_response`, a raw stream):
            # the span waits for its parse().
            return self.raw_responses.defer(call, start, result)
        attributes: Attributes = {}
        call.add_usage(attributes, start.model, None, None)
        call.end(attributes)
        return result

    def wrapper(self, kind: str, is_async: bool) -> Wrapper:
        if kind == "stream_manager":
            return self._stream_manager
        if kind == "sdk_span":
            return self._sdk_span
        if kind in (raw.PARSE, raw.CLOSE):
            return self.raw_responses.wrapper(kind, is_async)
        return super().wrapper(kind, is_async)

    def _stream_manager(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        manager = wrapped(*args, **kwargs)  # builds the manager; the request starts on enter
        if not self.enabled:
            return manager
        try:
            if hasattr(type(manager), "__aenter__"):
                return _AsyncStreamManagerProxy(manager, self, instance, kwargs)
            return _SyncStreamManagerProxy(manager, self, instance, kwargs)
        except Exception:
            report_internal_error("wrapping an anthropic message stream")
            return manager

    def _sdk_span(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        # The client's own span would be a second LLM span of the same call: Assay's span
        # covers it. Outside an Assay call (count_tokens, batches, ...) it is left alone.
        if self.enabled and in_llm_call():
            return None
        return wrapped(*args, **kwargs)


class _StreamManagerProxy(wrapt.ObjectProxy):
    """`messages.stream(...)`: the call runs when the manager is entered."""

    def __init__(
        self, manager: Any, wrappers: AnthropicWrappers, resource: Any, kwargs: Any
    ) -> None:
        super().__init__(manager)
        self._self_wrappers = wrappers
        self._self_resource = resource
        self._self_kwargs = kwargs


class _SyncStreamManagerProxy(_StreamManagerProxy):
    def __enter__(self) -> Any:
        wrappers = self._self_wrappers
        started = wrappers.begin("stream", self._self_resource, (), self._self_kwargs)
        if started is None:
            return self.__wrapped__.__enter__()
        call, start = started
        message_stream = wrappers.run(call, start, self.__wrapped__.__enter__, (), {})
        return wrappers.end(call, start, message_stream)

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)


class _AsyncStreamManagerProxy(_StreamManagerProxy):
    def __enter__(self) -> Any:
        # wrapt forwards `with` to the manager; an async one has no __enter__, and a plain
        # `with` must fail exactly as it does without Assay.
        with self.__wrapped__:  # raises the interpreter's own TypeError for it
            pass
        return None

    async def __aenter__(self) -> Any:
        wrappers = self._self_wrappers
        started = wrappers.begin("stream", self._self_resource, (), self._self_kwargs)
        if started is None:
            return await self.__wrapped__.__aenter__()
        call, start = started
        message_stream = await wrappers.run_async(call, start, self.__wrapped__.__aenter__, (), {})
        return wrappers.end(call, start, message_stream)

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


class AnthropicInstrumentor(ClientInstrumentor):
    """Spans for the `anthropic` client (0.40 and later)."""

    wrappers = AnthropicWrappers
