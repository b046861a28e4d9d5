"""Guards of the HTTP port against web pages: the Host allow-list (DNS rebinding) and JSON-only,
same-origin API writes (cross-site forms and fetches).

A page on another site can make a person's browser send requests to the collector: forms post
`text/plain` or form bodies without asking, and a page whose DNS name is rebound to 127.0.0.1
is, to the browser, the same origin as the collector. So:
- a request must name the collector in its `Host` header: an IP address, `localhost`, the
  address the collector binds, this machine's name, or a name in `allowed_hosts`. A rebound
  page names the attacker's domain there. OTLP (`/v1/*`) and `/api/health` are exempt: exporters
  and load balancers use whatever name the network gives the collector, and neither returns
  stored data;
- a state-changing API request must carry `Content-Type: application/json`, which a browser
  sends cross-site only after a CORS preflight that this server never grants, and must not come
  from a page of another origin (its `Origin` header, or without one its `Referer`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from assay.collector.auth import API_PATH_PREFIX, OTLP_PATH_PREFIX

HOST_CHECK_EXEMPT = ("/api/health",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE = "application/json"


def _hostname(host_header: str) -> str:
    """`Example.com:4318` → `example.com`; `[::1]:4318` → `::1`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostNames:
    """The names this collector answers to (see the module docstring). An entry `*.example.com`
    takes every subdomain of example.com; `*` takes any name (no DNS-rebinding protection)."""

    def __init__(self, allowed: Iterable[str], bind_hosts: Iterable[str]) -> None:
        names = {_hostname(n) for n in (*allowed, *bind_hosts, socket.gethostname()) if n}
        self.any = "*" in names
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self.exact = frozenset(n for n in names if not n.startswith("*"))

    def allows(self, host_header: str | None) -> bool:
        if self.any or host_header is None:  # no Host at all: HTTP/1.0, not a browser
            return True
        host = _hostname(host_header)
        return (
            _is_ip(host)
            or host == "localhost"
            or host.endswith(".localhost")  # browsers resolve these to loopback themselves
            or host in self.exact
            or host.endswith(self.suffixes)
        )


class HostAllowList:
    """Answers 400 to a request whose `Host` the collector does not answer to."""

    def __init__(self, app: ASGIApp, names: HostNames) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _exempt(scope["path"]):
            host = Headers(scope=scope).get("host")
            if not self.names.allows(host):
                message = (
                    f"this collector does not answer to the host name {host!r}: add it to "
                    "allowed_hosts (ASSAY_ALLOWED_HOSTS) if that is how you reach it "
                    "(the check stops web pages that rebind their DNS name to the collector)"
                )
                await JSONResponse({"error": message}, 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _exempt(path: str) -> bool:
    return path.startswith(OTLP_PATH_PREFIX) or path in HOST_CHECK_EXEMPT


class JsonApiWrites:
    """Answers 415 to a state-changing API request that is not JSON, and 403 to one sent by a
    page of another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and scope["path"].startswith(API_PATH_PREFIX)
        ):
            refusal = _refusal(Headers(scope=scope))
            if refusal is not None:
                status, message = refusal
                await JSONResponse({"error": message}, status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def sent_from(headers: Headers) -> str | None:
    """The host[:port] of the page a request says it was sent from: its Origin's, else its
    Referer's (a browser may leave Origin out); "" for an opaque origin ("null"); None when the
    request names none (a client that is not a browser)."""
    origin = headers.get("origin")
    if origin is not None:
        return "" if origin.strip() == "null" else urlsplit(origin.strip().lower()).netloc
    referer = headers.get("referer")
    return urlsplit(referer.strip().lower()).netloc if referer else None


def _refusal(headers: Headers) -> tuple[int, str] | None:
    source = sent_from(headers)
    if source is not None and source != headers.get("host", "").lower():
        sender = headers.get("origin") or headers.get("referer")
        return 403, f"cross-site request from {sender} refused: the API takes no orders from pages"
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        return 415, f"send JSON (Content-Type: {JSON_MEDIA_TYPE}), not {media_type or 'nothing'}"
    return None
