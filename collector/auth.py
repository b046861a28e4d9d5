"""Bearer-token checks for the OTLP receivers and the API, and the guard middleware of the API
and the UI (whose browsers present a session cookie derived from a token instead)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Paths the API guard leaves alone: OTLP checks its own tokens (they differ from the API's),
# and load balancers probe health without credentials (it then answers the status only).
OTLP_PATH_PREFIX = "/v1/"
OPEN_PATHS = frozenset({"/api/health", "/login"})
API_PATH_PREFIX = "/api/"
STATIC_PATH_PREFIX = "/static/"  # the UI's CSS and script: nothing secret, needed by /login
SESSION_COOKIE = "assay_session"
_SESSION_CONTEXT = b"assay-ui-session-v1"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="assay"'}


def _session_value(token: bytes) -> str:
    return hmac.new(token, _SESSION_CONTEXT, hashlib.sha256).hexdigest()


class TokenCheck:
    """The bearer tokens one listener accepts; none configured means the listener is open."""

    def __init__(self, tokens: Iterable[str], what: str) -> None:
        self._tokens = [t.encode() for t in tokens if t]
        # The tokens are fixed: their session cookies are derived once, not per UI request.
        self._sessions = [_session_value(t).encode() for t in self._tokens]
        self.what = what  # "OTLP" or "API", for messages

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def refusal(self, authorization: str | None) -> str | None:
        """None when `authorization` (the header or metadata value) is acceptable, else why not."""
        if not self._tokens:
            return None
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return (
                f"missing {self.what} bearer token: send 'Authorization: Bearer <token>'"
                if not authorization
                else f"{self.what} credentials must be 'Bearer <token>'"
            )
        presented = token.strip().encode()
        # Compare with every token, without stopping early: the time taken says nothing about
        # which token (or how much of one) matched.
        matched = False
        for accepted in self._tokens:
            matched |= hmac.compare_digest(accepted, presented)
        return None if matched else f"invalid {self.what} bearer token"

    def allows(self, authorization: str | None) -> bool:
        return self.refusal(authorization) is None

    def session_for(self, token: str) -> str | None:
        """The UI session cookie value for a valid token (a keyed hash of it, so the cookie
        never holds the token itself), or None when the token is not accepted."""
        if not self.allows(f"Bearer {token}"):
            return None
        return _session_value(token.strip().encode())

    def allows_session(self, cookie: str | None) -> bool:
        if not self._tokens:
            return True
        if not cookie:
            return False
        presented = cookie.encode()
        matched = False
        for expected in self._sessions:
            matched |= hmac.compare_digest(expected, presented)
        return matched


def is_api_path(path: str) -> bool:
    """Whether the API token guards `path`: everything on the HTTP port but OTLP and health."""
    return not path.startswith((OTLP_PATH_PREFIX, STATIC_PATH_PREFIX)) and path not in OPEN_PATHS


def request_cookie(headers: Headers, name: str) -> str | None:
    try:
        morsel = SimpleCookie(headers.get("cookie", "")).get(name)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None


class ApiAuthMiddleware:
    """Answers 401 to API requests without a valid bearer token, and sends UI requests without
    one or a valid session cookie to the login page (plain ASGI, so the check costs one header
    lookup and never buffers a body). The API takes bearer tokens only: a cookie, which a
    browser attaches by itself, never authorises an API call."""

    def __init__(self, app: ASGIApp, check: TokenCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.check.enabled and is_api_path(scope["path"]):
            headers = Headers(scope=scope)
            reason = self.check.refusal(headers.get("authorization"))
            path: str = scope["path"]
            if reason is not None and not path.startswith(API_PATH_PREFIX):
                if self.check.allows_session(request_cookie(headers, SESSION_COOKIE)):
                    reason = None
                elif "text/html" in headers.get("accept", ""):  # a browser: to the login form
                    query = scope.get("query_string", b"").decode("latin-1")
                    target = quote(path + (f"?{query}" if query else ""), safe="")
                    await RedirectResponse(f"/login?next={target}", 303)(scope, receive, send)
                    return
            if reason is not None:
                response = JSONResponse({"error": reason}, 401, headers=challenge_headers())
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def challenge_headers() -> dict[str, str]:
    """Headers of a 401 answer (RFC 6750)."""
    return dict(_CHALLENGE)
