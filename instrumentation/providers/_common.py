"""What every provider instrumentation shares: reading params, endpoints per client, patching,
running the user's call inside its span, and the instrumentor itself."""

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
)

# (module, class, method, name of the wrapper). Missing ones (older or newer clients) are skipped.
Target = tuple[str, str, str, str]


def field(obj: Any, name: str) -> Any:
    """`obj[name]` of a request dict (TypedDict), or `obj.name` of a response model."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def image_url_part(url: Any) -> dict[str, Any]:
    """An image given by URL as a message part; a `data:` URL keeps its type, not its bytes."""
    if isinstance(url, str) and url.startswith("data:"):
        # An inline image can be megabytes of base64.
        return {"type": "blob", "modality": "image", "mime_type": url[5:].split(";", 1)[0]}
    return {"type": "uri", "modality": "image", "uri": url}


def int_or_none(value: Any) -> int | None:
    """A token count as the API gave it, or None for anything that is not an int."""
    return value if type(value) is int else None


def response_identity(response: Any, attributes: Attributes) -> str | None:
    """Put the response's id and model on `attributes`; returns the model if it is a string."""
    response_id = getattr(response, "id", None)
    if isinstance(response_id, str) and response_id:
        attributes[semconv.RESPONSE_ID] = response_id
    model = getattr(response, "model", None)
    if isinstance(model, str) and model:
        attributes[semconv.RESPONSE_MODEL] = model
        return model
    return None


def output_message(parts: list[dict[str, Any]], finish_reason: str | None) -> dict[str, Any]:
    """The model's answer as one GenAI output message."""
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return message


def request_model(kwargs: Mapping[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) else None


def tracer_version() -> str:
    try:
        from importlib.metadata import version

        return version("assay")
    except Exception:
        return "0"


@dataclass(frozen=True)
class Endpoint:
    base_url: object  # the client's URL object, compared by identity to notice a change
    provider: str
    attributes: Mapping[str, Any]


def server_attributes(base_url: object) -> tuple[str, dict[str, Any]]:
    """The host of `base_url` and its `server.address` / `server.port` attributes."""
    if base_url is None:
        return "", {}
    parts = urlsplit(str(base_url))
    host = parts.hostname or ""
    if not host:
        return "", {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, {semconv.SERVER_ADDRESS: host, semconv.SERVER_PORT: port}


class EndpointCache:
    """Provider and server attributes per client, recomputed only when its base_url changes.

    `detect(client, base_url)` computes them; the resource's `_client` is the client.
    """

    def __init__(self, detect: Callable[[Any, object], Endpoint]) -> None:
        self._detect = detect
        # Keyed by id(client) with a weak reference to check identity: cheaper per call than a
        # WeakKeyDictionary, which builds a new weak reference for every lookup.
        self._by_client: dict[int, tuple[weakref.ref[Any], Endpoint]] = {}

    def get(self, resource: Any) -> Endpoint:
        client = getattr(resource, "_client", None)
        base_url = getattr(client, "base_url", None)
        key = id(client)
        cached = self._by_client.get(key)
        if cached is not None and cached[0]() is client and cached[1].base_url is base_url:
            return cached[1]
        endpoint = self._detect(client, base_url)
        try:
            reference = weakref.ref(client, partial(self._forget, key))
        except TypeError:  # a client that cannot be weakly referenced: detect every time
            return endpoint
        self._by_client[key] = (reference, endpoint)
        return endpoint

    def _forget(self, key: int, _: object) -> None:
        self._by_client.pop(key, None)


class Patches:
    """The methods one instrumentor wrapped, to restore them on uninstrument."""

    def __init__(self) -> None:
        self._patched: list[tuple[Any, str]] = []

    def apply(self, targets: tuple[Target, ...], wrappers: object) -> None:
        for module_name, owner_name, method, wrapper_name in targets:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            owner = module if not owner_name else getattr(module, owner_name, None)
            # A class re-exported under a second path is patched once.
            if owner is None or method not in vars(owner) or (owner, method) in self._patched:
                continue
            wrapt.wrap_function_wrapper(owner, method, getattr(wrappers, wrapper_name))
            self._patched.append((owner, method))

    def undo(self) -> None:
        for owner, method in reversed(self._patched):
            unwrap(owner, method)
        self._patched.clear()


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


def run(call: LLMCall, wrapped: Any, args: Any, kwargs: Any) -> Any:
    """Run the user's call once inside the call's span; its exception ends the span, raised."""
    token = attach(call)
    try:
        return wrapped(*args, **kwargs)
    except BaseException as error:
        call.end(error=error)
        raise
    finally:
        detach(token)


async def run_async(call: LLMCall, wrapped: Any, args: Any, kwargs: Any) -> Any:
    token = attach(call)
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as error:
        call.end(error=error)
        raise
    finally:
        detach(token)


RequestReader = Callable[[Mapping[str, Any], Attributes, bool], None]


class ProviderWrappers:
    """What the wrappers of one client library share: tracer, capture setting, endpoints,
    an on/off switch, and the start of every call."""

    label = "a client"  # for the failure log: "reading an openai chat request"

    def __init__(
        self,
        tracer: trace.Tracer,
        capture_content: bool,
        detect: Callable[[Any, object], Endpoint],
    ) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        # Bound methods captured before `uninstrument` (e.g. by `with_raw_response`) keep
        # calling the wrappers; switched off, they pass the call through.
        self.enabled = True
        self._endpoints = EndpointCache(detect)

    def start(
        self,
        resource: Any,
        kwargs: Mapping[str, Any],
        operation: str,
        stream: bool | None,
        read_request: RequestReader,
    ) -> LLMCall | None:
        """The span of one call, or None (nothing traced) when off, suppressed or failing."""
        try:
            if not (self.enabled and should_trace()):
                return None
            endpoint = self._endpoints.get(resource)
            model = request_model(kwargs)
            attributes: Attributes = {semconv.OPERATION_NAME: operation, **endpoint.attributes}
            if model:
                attributes[semconv.REQUEST_MODEL] = model
            if stream is not None:
                attributes[semconv.REQUEST_STREAM] = stream
            read_request(kwargs, attributes, self.capture_content)
        except Exception:
            report_internal_error(f"reading {self.label} {operation} request")
            return None
        return start_call(self.tracer, operation, endpoint.provider, model, attributes)


class ProviderInstrumentor(BaseInstrumentor):
    """The instrumentor of one client library: patches `targets` with its wrappers.

    `instrument(tracer_provider=..., capture_content=...)`: without a provider the global
    one is used; `capture_content` defaults to `ASSAY_CAPTURE_CONTENT` (true). A subclass
    names its `library` (import name), the versions it `instruments`, its `targets` and
    how to `make_wrappers`; the wrappers object has an `enabled` switch.
    """

    library: str
    instruments: tuple[str, ...]
    targets: tuple[Target, ...]

    def __init__(self) -> None:
        # BaseInstrumentor is a singleton whose __init__ runs on every construction.
        if not hasattr(self, "_patches"):
            self._patches = Patches()
            self._wrappers: Any = None

    def make_wrappers(self, tracer: trace.Tracer, capture_content: bool, module: Any) -> Any:
        raise NotImplementedError

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def _instrument(self, **kwargs: Any) -> None:
        module = importlib.import_module(self.library)
        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            f"assay.instrumentation.{self.library}",
            tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        self._wrappers = self.make_wrappers(tracer, bool(capture), module)
        self._patches.apply(self.targets, self._wrappers)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._wrappers is not None:
            self._wrappers.enabled = False
            self._wrappers = None
        self._patches.undo()
