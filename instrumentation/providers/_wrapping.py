"""What the google-genai, mistralai, cohere and ollama instrumentations share.

Each provider module says what its spans hold (a `ClientWrappers` subclass: `describe` the
request, `response_attributes` of a plain response, an `accumulator` for a stream) and
which methods to patch (`Target`s of a `ClientInstrumentor`). This module runs the user's
call exactly once around them, keeps every Assay failure out of the user's way, and patches
with wrapt when the application imports the library. It also builds the GenAI message parts
the providers put on spans.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

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
from assay.instrumentation._streams import AsyncStreamProxy, StreamAccumulator, SyncStreamProxy
from assay.instrumentation.providers._common import (
    field,
    run,
    run_async,
    tracer_version,
)
from assay.instrumentation.providers._common import (
    server_attributes as endpoint_server_attributes,
)

__all__ = [
    "CallStart",
    "ClientInstrumentor",
    "ClientWrappers",
    "Target",
    "add_stop_sequences",
    "append_part",
    "field",
    "function_tool_definitions",
    "number_attributes",
    "output_json",
    "output_message",
    "response_basics",
    "server_attributes",
    "text_part",
    "tool_call_part",
    "tool_response_part",
]


@dataclass(frozen=True)
class Target:
    """A client method to patch: the first of `methods` that `module.cls` defines itself."""

    module: str
    cls: str
    methods: tuple[str, ...]
    kind: str  # handed to `describe` and `finish`
    is_async: bool  # a coroutine function (an async generator function is not one)


@dataclass
class CallStart:
    """What opens a call's span."""

    operation: str
    provider: str
    model: str | None
    attributes: Attributes


# --- reading requests --------------------------------------------------------------------------


def number_attributes(
    source: Any, names: Mapping[str, str], attributes: Attributes, integer: bool = False
) -> None:
    """Copy the numbers `source` holds under `names` (field → attribute) into `attributes`.

    Unset values are the clients' sentinels (`UNSET`, `OMIT`) or None: the type check skips them.
    """
    if source is None:
        return
    for key, name in names.items():
        value = field(source, key)
        if type(value) is int or (not integer and type(value) is float):
            attributes[name] = value


def add_stop_sequences(attributes: Attributes, value: Any) -> None:
    if isinstance(value, str):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = (value,)
    elif isinstance(value, (list, tuple)) and value:
        attributes[semconv.REQUEST_STOP_SEQUENCES] = tuple(str(item) for item in value)


@functools.lru_cache(maxsize=64)
def _server(base_url: str) -> tuple[tuple[str, Any], ...]:
    return tuple(endpoint_server_attributes(base_url)[1].items())


def server_attributes(base_url: Any, attributes: Attributes) -> None:
    """`server.address` and `server.port` of a client's base URL (parsed once per URL)."""
    if base_url:
        attributes.update(_server(str(base_url)))


# --- GenAI message parts -----------------------------------------------------------------------


def text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


_MERGEABLE = frozenset({"text", "reasoning"})


def append_part(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    """Add a streamed part: text after text (or reasoning after reasoning) extends it."""
    last = parts[-1] if parts else None
    if last is not None and last["type"] == part["type"] and part["type"] in _MERGEABLE:
        last["content"] = (last["content"] or "") + (part["content"] or "")
    else:
        parts.append(part)


def function_tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Tool definitions in the chat-completions shape (`{"type": "function", "function": ...}`)."""
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        function = field(tool, "function")
        definition: dict[str, Any] = {"type": "function", "name": field(function, "name")}
        description = field(function, "description")
        if isinstance(description, str) and description:
            definition["description"] = description
        parameters = field(function, "parameters")
        if parameters is not None:
            dump = getattr(parameters, "model_dump", None)  # a client's own schema model
            definition["parameters"] = dump(exclude_none=True) if callable(dump) else parameters
        definitions.append(definition)
    return definitions


def output_message(role: Any, parts: list[dict[str, Any]], finish_reason: Any) -> dict[str, Any]:
    """One output message in the GenAI shape."""
    message: dict[str, Any] = {"role": role or "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return message


def output_json(attributes: Attributes, build: Callable[[], Any], library: str) -> None:
    """The output messages `build` returns, as JSON; a failure loses them, not the span."""
    try:
        attributes[semconv.OUTPUT_MESSAGES] = to_json(build())
    except Exception:
        report_internal_error(f"converting {library} output messages")


def response_basics(
    attributes: Attributes,
    response_id: Any,
    model: Any,
    finish_reasons: tuple[str, ...] | None,
) -> None:
    if response_id:
        attributes[semconv.RESPONSE_ID] = response_id
    if model:
        attributes[semconv.RESPONSE_MODEL] = model
    if finish_reasons:
        attributes[semconv.RESPONSE_FINISH_REASONS] = finish_reasons


def tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": response}


# --- the wrappers ------------------------------------------------------------------------------


class ClientWrappers:
    """Runs a client call inside its span; subclasses say what the span holds.

    `describe` returns the `CallStart` of a call (or None: no span). A plain call ends with
    `response_attributes`; a streamed one (`is_stream`) returns the client's stream wrapped
    with the subclass's `accumulator`. Any of them may raise: the failure is logged once and
    the user's call goes on untouched.
    """

    library: ClassVar[str] = "client"

    def __init__(self, tracer: trace.Tracer, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        # Bound methods taken before `uninstrument` keep calling the wrapper: this switch
        # turns it into a pass-through.
        self.enabled = True

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart | None:
        raise NotImplementedError

    def is_stream(self, kind: str, kwargs: Any) -> bool:
        return kind == "stream"

    def accumulator(self, kind: str, args: Any, kwargs: Any) -> StreamAccumulator:
        raise NotImplementedError

    def response_attributes(
        self, kind: str, call: LLMCall, response: Any, args: Any, kwargs: Any
    ) -> Attributes:
        raise NotImplementedError

    def finish(self, kind: str, call: LLMCall, result: Any, args: Any, kwargs: Any) -> Any:
        if self.is_stream(kind, kwargs):
            return self.stream(call, result, self.accumulator(kind, args, kwargs))
        call.end(self.response_attributes(kind, call, result, args, kwargs))
        return result

    @staticmethod
    def opening(operation: str, provider: str, model: str | None, stream: bool) -> Attributes:
        """The attributes every call's span opens with."""
        attributes: Attributes = {
            semconv.OPERATION_NAME: operation,
            semconv.PROVIDER_NAME: provider,
            semconv.REQUEST_STREAM: stream,
        }
        if model:
            attributes[semconv.REQUEST_MODEL] = model
        return attributes

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

    @staticmethod
    def stream(call: LLMCall, stream: Any, accumulator: StreamAccumulator) -> Any:
        """The client's stream wrapped so that the span ends with it; async or not, as it is."""
        if hasattr(stream, "__anext__"):
            return AsyncStreamProxy(stream, call, accumulator)
        return SyncStreamProxy(stream, call, accumulator)

    def _start(self, kind: str, instance: Any, args: Any, kwargs: Any) -> LLMCall | None:
        try:
            if not (self.enabled and should_trace()):
                return None
            start = self.describe(kind, instance, args, kwargs)
        except Exception:
            report_internal_error(f"reading a {self.library} request")
            return None
        if start is None:
            return None
        return start_call(
            self.tracer, start.operation, start.provider, start.model, start.attributes
        )

    def _finish(self, kind: str, call: LLMCall, result: Any, args: Any, kwargs: Any) -> Any:
        try:
            return self.finish(kind, call, result, args, kwargs)
        except Exception:
            report_internal_error(f"reading a {self.library} response")
            call.end()
            return result

    def wrapper(self, kind: str, is_async: bool) -> Callable[..., Any]:
        """The wrapt wrapper of one patched method. The user's call runs outside Assay's try."""
        if is_async:

            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                call = self._start(kind, instance, args, kwargs)
                if call is None:
                    return await wrapped(*args, **kwargs)
                result = await run_async(call, wrapped, args, kwargs)
                return self._finish(kind, call, result, args, kwargs)

            return async_wrapper

        def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call = self._start(kind, instance, args, kwargs)
            if call is None:
                return wrapped(*args, **kwargs)
            result = run(call, wrapped, args, kwargs)
            return self._finish(kind, call, result, args, kwargs)

        return sync_wrapper


# --- the instrumentor --------------------------------------------------------------------------


class ClientInstrumentor(BaseInstrumentor):
    """Patches a client library's `targets` with its `wrappers`.

    `instrument(tracer_provider=..., capture_content=...)`: without a provider the global
    one is used; `capture_content` defaults to `ASSAY_CAPTURE_CONTENT` (true).
    """

    library: ClassVar[str]  # the import name; patched once the application imports it
    targets: ClassVar[tuple[Target, ...]]
    instruments: ClassVar[tuple[str, ...]]
    wrappers: ClassVar[type[ClientWrappers]]

    def __init__(self) -> None:
        # BaseInstrumentor is a singleton whose __init__ runs on every construction.
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[type, str]] = []
            self._wrappers: ClientWrappers | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def after_patching(self, library: Any) -> None:
        """Hook for what plain patching misses (aliases bound at the library's import)."""

    def after_unpatching(self, library: Any) -> None:
        """Undoes `after_patching`."""

    def _instrument(self, **kwargs: Any) -> None:
        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            f"assay.instrumentation.{self.library}",
            tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        wrappers = self.wrappers(tracer, bool(capture))
        self._wrappers = wrappers
        # Patched when the application imports the library (at once if it already has):
        # `instrument()` neither pays for importing every client installed nor loads what
        # the application never uses.
        wrapt.register_post_import_hook(functools.partial(self._on_import, wrappers), self.library)

    def _on_import(self, wrappers: ClientWrappers, library: Any) -> None:
        # The hook of an `instrument()` undone since stays registered: it does nothing. It runs
        # inside the application's import statement, which must never fail because of Assay.
        if self._wrappers is not wrappers:
            return
        try:
            self._patch(wrappers, library)
        except Exception:
            report_internal_error(f"patching {self.library}")

    def _patch(self, wrappers: ClientWrappers, library: Any) -> None:
        for target in self.targets:
            try:
                module = importlib.import_module(target.module)
            except ImportError:
                continue
            cls = getattr(module, target.cls, None)
            if cls is None:
                continue
            method = next((name for name in target.methods if name in vars(cls)), None)
            if method is None or (cls, method) in self._patched:
                continue
            wrapt.wrap_function_wrapper(cls, method, wrappers.wrapper(target.kind, target.is_async))
            self._patched.append((cls, method))
        self.after_patching(library)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._wrappers is not None:
            self._wrappers.enabled = False
            self._wrappers = None
        for cls, method in reversed(self._patched):
            unwrap(cls, method)
        self._patched.clear()
        library = sys.modules.get(self.library)
        if library is not None:
            self.after_unpatching(library)
