"""One call lifecycle for every provider: describe → start → run → response or stream proxy.

A provider subclasses `CallWrappers` and only declares and translates: which functions
to patch (`targets`), `describe` (a request → `CallStart`, or None: not an LLM call, no
span), `response_attributes` (a plain response) and `accumulator` (a stream, chunk by
chunk); the last two may be given as readers that need only the request's model and the
capture setting (`response_reader`, `stream_reader`). This module opens
the span, runs the user's call exactly once inside it, ends the span on the response,
the error or the end of the stream, and keeps every Assay failure out of the user's way:
a failing hook is logged once (`report_internal_error`) and the call proceeds untouched,
return value and exceptions included.

The shape follows opentelemetry-util-genai's handler (`start_inference` → `stop` / `fail`)
and stream wrapper, and the botocore instrumentation's per-service hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry import trace

from assay.instrumentation import semconv
from assay.instrumentation._spans import (
    Attributes,
    LLMCall,
    report_internal_error,
    should_trace,
    start_call,
    to_json,
)
from assay.instrumentation._streams import AsyncStreamProxy, StreamAccumulator, SyncStreamProxy
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._request import Endpoint, EndpointCache

if TYPE_CHECKING:
    from assay.instrumentation.providers._instrumentor import Target

Wrapper = Callable[..., Any]


@dataclass(slots=True)
class CallStart:
    """What a provider read from one request: enough to open the span and to read the answer."""

    kind: str  # the target's kind: which request and response readers apply
    operation: str
    provider: str
    model: str | None
    attributes: Attributes
    stream: bool = False  # the result is a stream of chunks to wrap
    details: Any = None  # what the provider needs again when the call ends
    # The keyword arguments actually sent, when Assay asked the API for more than the
    # application did (usage on a stream); None when the application's own are sent.
    amended_kwargs: dict[str, Any] | None = None


def opening(
    operation: str,
    provider: str,
    model: str | None,
    stream: bool | None = None,
    server: Mapping[str, Any] | None = None,
) -> Attributes:
    """The attributes every call's span opens with (`server`: `server_attributes(url)`)."""
    attributes: Attributes = {semconv.OPERATION_NAME: operation, semconv.PROVIDER_NAME: provider}
    if model:
        attributes[semconv.REQUEST_MODEL] = model
    if stream is not None:
        attributes[semconv.REQUEST_STREAM] = stream
    if server:
        attributes.update(server)
    return attributes


def response_basics(
    attributes: Attributes, response_id: Any, model: Any, finish_reasons: tuple[str, ...] | None
) -> None:
    """The response's id, model and finish reasons, those that are set."""
    if isinstance(response_id, str) and response_id:
        attributes[semconv.RESPONSE_ID] = response_id
    if isinstance(model, str) and model:
        attributes[semconv.RESPONSE_MODEL] = model
    if finish_reasons:
        attributes[semconv.RESPONSE_FINISH_REASONS] = finish_reasons


def response_identity(response: Any, attributes: Attributes) -> str | None:
    """Put the response's `id` and `model` on `attributes`; returns the model if it is one."""
    model = msg.field(response, "model")
    response_basics(attributes, msg.field(response, "id"), model, None)
    return model if isinstance(model, str) and model else None


def attach(call: LLMCall) -> object | None:
    """Make the call's span current; None (logged) if that fails, and the call goes on."""
    try:
        return call.attach()
    except Exception:
        report_internal_error("making the span current")
        return None


def detach(token: object | None) -> None:
    if token is None:
        return
    try:
        LLMCall.detach(token)
    except Exception:
        report_internal_error("restoring the context")


class CallWrappers:
    """Runs a client's calls inside their spans; subclasses say what the spans hold.

    `enabled` is the one off switch: bound methods taken before `uninstrument` (e.g. by
    `with_raw_response`) keep calling the wrappers, which then pass the call through.
    """

    # Names the tracer, the failures ("reading a cohere request") and the supported versions
    # (`package.SUPPORTED`).
    library: ClassVar[str]
    targets: ClassVar[tuple[Target, ...]]  # the functions to patch
    # `response_reader(call, response, request_model, capture)` → attributes, and
    # `stream_reader(request_model, capture)` → accumulator, where they are all it takes.
    response_reader: ClassVar[Any] = None
    stream_reader: ClassVar[Any] = None
    # `detect_endpoint(client, base_url)` → `Endpoint`, for clients whose resources hold
    # `_client` with a `base_url`: worked out once per client (see `endpoint`).
    detect_endpoint: ClassVar[Any] = None

    def __init__(self, tracer: trace.Tracer, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.enabled = True
        self._endpoints = EndpointCache(self.detect_endpoint) if self.detect_endpoint else None

    def endpoint(self, resource: Any) -> Endpoint:
        """The provider and server of the client behind an API resource."""
        assert self._endpoints is not None, "a provider with endpoints names detect_endpoint"
        return self._endpoints.get(resource)

    # -- what a provider says ---------------------------------------------------------------

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart | None:
        """The request of one call, or None for a call that is not traced."""
        raise NotImplementedError

    def response_attributes(self, call: LLMCall, start: CallStart, response: Any) -> Attributes:
        """The span's attributes from a plain response (usage through `call.add_usage`)."""
        return self.response_reader(call, response, start.model, self.capture_content)

    def accumulator(self, call: LLMCall, start: CallStart) -> StreamAccumulator:
        """The reader of a streamed answer's chunks."""
        return self.stream_reader(start.model, self.capture_content)

    def finish(self, call: LLMCall, start: CallStart, result: Any) -> Any:
        """End the call on its result; returns what the application gets (a stream, wrapped)."""
        if start.stream:
            return self.stream(call, start, result)
        call.end(self.response_attributes(call, start, result))
        return result

    def error_attributes(self, error: BaseException) -> Attributes | None:
        """Attributes of a failed call beyond the error itself (a provider's error code)."""
        return None

    def refused(self, start: CallStart, error: Exception) -> bool:
        """Whether the API refused what Assay added to the request (`amended_kwargs`)."""
        return False

    def answer_of(self, start: CallStart, error: BaseException) -> Any:
        """The provider's whole answer that `error` carries, when the client raised after the
        call completed (the provider billed it); None for a call that failed."""
        return None

    # -- helpers for the hooks --------------------------------------------------------------

    def stream(
        self,
        call: LLMCall,
        start: CallStart,
        stream: Any,
        hide: Callable[[Any], bool] | None = None,
        is_async: bool | None = None,
    ) -> Any:
        """`stream` wrapped so that the span ends with it; async or not, as the client's is
        (`is_async` says which for a stream that is both)."""
        accumulator = self.accumulator(call, start)
        if is_async if is_async is not None else hasattr(stream, "__anext__"):
            return AsyncStreamProxy(stream, call, accumulator, hide)
        return SyncStreamProxy(stream, call, accumulator, hide)

    def add_content(self, attributes: Attributes, content: Callable[[], Mapping[str, Any]]) -> None:
        """With content capture on, the request's content (attribute name → value) as JSON.

        Content is the most varied input: a failure to convert it loses the content, not
        the span. Empty values are left out.
        """
        if not self.capture_content:
            return
        try:
            for name, value in content().items():
                if value:
                    attributes[name] = to_json(value)
        except Exception:
            report_internal_error(f"converting {self.library} input messages")

    def add_output(self, attributes: Attributes, build: Callable[[], Any]) -> None:
        """With content capture on, the output messages `build` returns, as JSON."""
        if not self.capture_content:
            return
        try:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(build())
        except Exception:
            report_internal_error(f"converting {self.library} output messages")

    # -- the lifecycle ----------------------------------------------------------------------

    def begin(
        self, kind: str, instance: Any, args: Any, kwargs: Any
    ) -> tuple[LLMCall, CallStart] | None:
        """Describe the call and open its span; None (nothing traced) when off or failing."""
        try:
            if not (self.enabled and should_trace()):
                return None
            start = self.describe(kind, instance, args, kwargs)
        except Exception:
            report_internal_error(f"reading a {self.library} request")
            return None
        if start is None:
            return None
        call = start_call(
            self.tracer, start.operation, start.provider, start.model, start.attributes
        )
        return None if call is None else (call, start)

    def _failed(self, call: LLMCall, start: CallStart, error: BaseException) -> None:
        try:
            attributes = self.error_attributes(error)
            answer = self.answer_of(start, error)
            if answer is not None:  # its usage, reply and finish reason, as a call that passed
                attributes = {**self.response_attributes(call, start, answer), **(attributes or {})}
        except Exception:
            report_internal_error(f"reading a {self.library} error")
            attributes = None
        call.end(attributes, error)

    def run(self, call: LLMCall, start: CallStart, wrapped: Any, args: Any, kwargs: Any) -> Any:
        """Run the user's call inside the span; its exception ends the span and is raised.

        With `amended_kwargs` the amended request goes first; if the API refuses what Assay
        added, the application's own request is sent instead, so the application gets what
        it would have got without Assay.
        """
        token = attach(call)
        try:
            amended = start.amended_kwargs
            if amended is not None:
                try:
                    return wrapped(*args, **amended)
                except Exception as error:
                    if not self._refused(start, error):
                        raise
                    start.amended_kwargs = None
            return wrapped(*args, **kwargs)
        except BaseException as error:
            self._failed(call, start, error)
            raise
        finally:
            detach(token)

    async def run_async(
        self, call: LLMCall, start: CallStart, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        token = attach(call)
        try:
            amended = start.amended_kwargs
            if amended is not None:
                try:
                    return await wrapped(*args, **amended)
                except Exception as error:
                    if not self._refused(start, error):
                        raise
                    start.amended_kwargs = None
            return await wrapped(*args, **kwargs)
        except BaseException as error:
            self._failed(call, start, error)
            raise
        finally:
            detach(token)

    def _refused(self, start: CallStart, error: Exception) -> bool:
        try:
            return self.refused(start, error)
        except Exception:
            report_internal_error(f"reading a {self.library} error")
            return False

    def end(self, call: LLMCall, start: CallStart, result: Any) -> Any:
        """Finish the call on its result; on an Assay failure the result is returned as it is."""
        try:
            return self.finish(call, start, result)
        except Exception:
            report_internal_error(f"reading a {self.library} response")
            call.end()
            return result

    def wrapper(self, kind: str, is_async: bool) -> Wrapper:
        """The wrapt wrapper of one patched function. The user's call runs outside Assay's try."""
        if is_async:

            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                started = self.begin(kind, instance, args, kwargs)
                if started is None:
                    return await wrapped(*args, **kwargs)
                call, start = started
                result = await self.run_async(call, start, wrapped, args, kwargs)
                return self.end(call, start, result)

            return async_wrapper

        def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            started = self.begin(kind, instance, args, kwargs)
            if started is None:
                return wrapped(*args, **kwargs)
            call, start = started
            result = self.run(call, start, wrapped, args, kwargs)
            return self.end(call, start, result)

        return sync_wrapper
