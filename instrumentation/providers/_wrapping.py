"""What the google-genai, mistralai, cohere and ollama instrumentations share.

Each provider module describes its calls (`ClientWrappers.describe`: the span's opening
attributes; `ClientWrappers.finish`: the response's attributes, or a stream proxy) and
lists the methods to patch (`Target`); this module runs the user's call exactly once
around them, keeps every Assay failure out of the user's way, and patches and unpatches
with wrapt. It also builds the GenAI message parts the providers put on spans.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
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
)
from assay.instrumentation._streams import AsyncStreamProxy, StreamAccumulator, SyncStreamProxy

__all__ = [
    "CallStart",
    "ClientInstrumentor",
    "ClientWrappers",
    "Target",
    "append_part",
    "field",
    "number_attributes",
    "server_attributes",
    "stop_sequences",
    "text_part",
    "tool_call_part",
    "tool_response_part",
]

_NUMBER = (int, float)


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


def field(obj: Any, name: str) -> Any:
    """`obj[name]` of a request dict (TypedDict), or `obj.name` of a request/response model."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


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


def stop_sequences(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and value:
        return tuple(str(item) for item in value)
    return None


@functools.lru_cache(maxsize=64)
def _server(base_url: str) -> tuple[tuple[str, Any], ...]:
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host = parts.hostname
    if not host:
        return ()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ((semconv.SERVER_ADDRESS, host), (semconv.SERVER_PORT, port))


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


def tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": response}


# --- the wrappers ------------------------------------------------------------------------------


class ClientWrappers:
    """Runs a client call inside its span; subclasses say what the span holds.

    `describe(kind, instance, args, kwargs)` returns the `CallStart` (or None: not an LLM
    call worth a span). `finish(kind, call, result, args, kwargs)` ends the call with the
    response's attributes and returns the result, or returns a stream proxy that ends it.
    Both may raise: the failure is logged once and the user's call goes on untouched.
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

    def finish(self, kind: str, call: LLMCall, result: Any, args: Any, kwargs: Any) -> Any:
        raise NotImplementedError

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
                token = call.attach()
                try:
                    result = await wrapped(*args, **kwargs)
                except BaseException as error:
                    call.end(error=error)
                    raise
                finally:
                    call.detach(token)
                return self._finish(kind, call, result, args, kwargs)

            return async_wrapper

        def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call = self._start(kind, instance, args, kwargs)
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
            return self._finish(kind, call, result, args, kwargs)

        return sync_wrapper


# --- the instrumentor --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tracer_version() -> str:
    try:
        from importlib.metadata import version

        return version("assay")
    except Exception:
        return "0"


class ClientInstrumentor(BaseInstrumentor):
    """Patches a client library's `targets` with the wrappers `make_wrappers` returns.

    `instrument(tracer_provider=..., capture_content=...)`: without a provider the global
    one is used; `capture_content` defaults to `ASSAY_CAPTURE_CONTENT` (true).
    """

    library: ClassVar[str]  # the import name, imported only when instrumenting
    targets: ClassVar[tuple[Target, ...]]
    instruments: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        # BaseInstrumentor is a singleton whose __init__ runs on every construction.
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[type, str]] = []
            self._wrappers: ClientWrappers | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def make_wrappers(self, tracer: trace.Tracer, capture_content: bool) -> ClientWrappers:
        raise NotImplementedError

    def after_patching(self, library: Any) -> None:
        """Hook for what plain patching misses (aliases bound at the library's import)."""

    def after_unpatching(self, library: Any) -> None:
        """Undoes `after_patching`."""

    def _instrument(self, **kwargs: Any) -> None:
        library = importlib.import_module(self.library)
        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            f"assay.instrumentation.{self.library}",
            _tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        wrappers = self.make_wrappers(tracer, bool(capture))
        self._wrappers = wrappers
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
        with contextlib.suppress(ImportError):
            self.after_unpatching(importlib.import_module(self.library))
