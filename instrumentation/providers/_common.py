"""What every provider instrumentation shares: reading params, endpoints per client, patching."""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from assay.instrumentation import semconv
from assay.instrumentation._spans import LLMCall, report_internal_error

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
