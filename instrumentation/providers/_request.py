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


def _value(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


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
        for key, name in self.numbers.items():
            value = _value(source, key)
            if type(value) is int or type(value) is float:
                attributes[name] = value
        for key, name in self.integers.items():
            value = _value(source, key)
            if type(value) is int:
                attributes[name] = value
        stop = next((v for v in (_value(source, key) for key in self.stop) if v), None)
        _stop_sequences(attributes, stop)
        choices = next((v for v in (_value(source, key) for key in self.choices) if v), None)
        if type(choices) is int and choices != 1:
            attributes[semconv.REQUEST_CHOICE_COUNT] = choices


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
            reference = weakref.ref(client, functools.partial(self._forget, key))
        except TypeError:  # a client that cannot be weakly referenced: detect every time
            return endpoint
        self._by_client[key] = (reference, endpoint)
        return endpoint

    def _forget(self, key: int, _: object) -> None:
        self._by_client.pop(key, None)
