"""Reading a request: its model, its parameters, and the server it goes to.

Keyword values may be a client's "not given" sentinels (`NOT_GIVEN`, `omit`, `UNSET`,
`OMIT`) or None: the type checks here skip them, so a parameter the caller did not pass
never reaches a span.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any
from urllib.parse import urlsplit

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes

_NUMBER = (int, float)


# The header the Stainless-built clients (openai, anthropic) set on the requests of
# `with_raw_response` ("raw") and `with_streaming_response` ("stream").
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def raw_response_kind(kwargs: Mapping[str, Any]) -> str | None:
    """ "raw" for `with_raw_response`, "stream" for `with_streaming_response`, else None."""
    headers = kwargs.get("extra_headers")
    return headers.get(_RAW_RESPONSE_HEADER) if isinstance(headers, dict) else None


def request_model(kwargs: Mapping[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else None


def _first_set(get: Callable[[str], Any], keys: tuple[str, ...]) -> Any:
    """The first of `keys` whose value is set (truthy), else None."""
    for key in keys:
        value = get(key)
        if value:
            return value
    return None


def _stop_sequences(attributes: Attributes, value: Any) -> None:
    if isinstance(value, str):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = (value,)
    elif isinstance(value, (list, tuple)) and value:
        attributes[semconv.REQUEST_STOP_SEQUENCES] = tuple(str(item) for item in value)


@dataclass(frozen=True)
class Parameters:
    """A provider's names for the request parameters the conventions record.

    `numbers` (ints or floats) and `integers` map a parameter name to its attribute;
    `stop` and `choices` name the stop sequences and the choice count, the first name
    that is set winning. The choice count is recorded only when it is not one.
    """

    numbers: Mapping[str, str]
    integers: Mapping[str, str] = dataclass_field(default_factory=dict)
    stop: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    def read(self, source: Any, attributes: Attributes) -> None:
        """Record the parameters `source` holds: keyword arguments, a body, a config object."""
        if source is None:
            return
        # Keyword arguments (a dict) are read with their own `get`, not a helper per name.
        get: Callable[[str], Any] = (
            source.get if isinstance(source, dict) else functools.partial(_attribute, source)
        )
        for key, name in self.numbers.items():
            value = get(key)
            if type(value) is int or type(value) is float:
                attributes[name] = value
        for key, name in self.integers.items():
            value = get(key)
            if type(value) is int:
                attributes[name] = value
        _stop_sequences(attributes, _first_set(get, self.stop))
        choices = _first_set(get, self.choices)
        if type(choices) is int and choices != 1:
            attributes[semconv.REQUEST_CHOICE_COUNT] = choices


def _attribute(source: Any, name: str) -> Any:
    return getattr(source, name, None)


@functools.lru_cache(maxsize=256)
def _server(url: str) -> tuple[tuple[str, Any], ...]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        return ()
    try:
        port = parts.port
    except ValueError:  # a port out of range: the address alone
        return ((semconv.SERVER_ADDRESS, host),)
    port = port or (443 if parts.scheme == "https" else 80)
    return ((semconv.SERVER_ADDRESS, host), (semconv.SERVER_PORT, port))


def server_attributes(base_url: object) -> dict[str, Any]:
    """`server.address` and `server.port` of a client's base URL (parsed once per URL)."""
    if not base_url:
        return {}
    return dict(_server(str(base_url)))


@dataclass(frozen=True)
class Endpoint:
    base_url: object  # the client's URL object, compared by identity to notice a change
    provider: str
    server: Mapping[str, Any]  # `server_attributes(base_url)`


class EndpointCache:
    """Provider and server attributes per client, recomputed only when its base_url changes.

    `detect(client, base_url)` works them out once per client; `get(resource)` finds the
    client of an API resource (its `_client`, as the openai and anthropic clients hold it).
    A change of the client's URL is noticed by the identity of the URL object.
    """

    def __init__(self, detect: Callable[[Any, object], Endpoint]) -> None:
        self._detect = detect
        # Keyed by id(client) with a weak reference to check identity: cheaper per call than a
        # WeakKeyDictionary, which builds a new weak reference for every lookup.
        self._by_client: dict[int, tuple[weakref.ref[Any], Endpoint]] = {}

    def get(self, resource: Any) -> Endpoint:
        client = getattr(resource, "_client", None)
        # The Stainless-built clients keep the URL their `base_url` property returns in
        # `_base_url`: openai's property imports a module on every read (about 14k instructions).
        base_url = getattr(client, "_base_url", None)
        if base_url is None:
            base_url = getattr(client, "base_url", None)
        key = id(client)
        cached = self._by_client.get(key)
        if cached is not None and cached[0]() is client and cached[1].base_url is base_url:
            return cached[1]
        endpoint = self._detect(client, base_url)
        try:
            reference = weakref.ref(client, functools.partial(self._forget, key))
        except TypeError:  # a client that cannot be weakly referenced: detect every time
            return endpoint
        self._by_client[key] = (reference, endpoint)
        return endpoint

    def _forget(self, key: int, _: object) -> None:
        self._by_client.pop(key, None)
