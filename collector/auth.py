"""Bearer-token checks for the OTLP receivers and the API, and the guard middleware of the API
and the UI (whose browsers present a login session cookie instead: collector/login_sessions.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from assay.collector.store.base import StoreError
from assay.collector.token_guesses import TokenGuesses

if TYPE_CHECKING:
    from assay.collector.login_sessions import LoginSessions

# Paths the API guard leaves alone: OTLP checks its own tokens (they differ from the API's),
# and load balancers probe health without credentials (it then answers the status only).
OTLP_PATH_PREFIX = "/v1/"
OPEN_PATHS = frozenset(
    {"/api/health", "/login", "/favicon.ico"}
)  # the login page asks for the icon too
API_PATH_PREFIX = "/api/"
STATIC_PATH_PREFIX = "/static/"  # the UI's CSS and script: nothing secret, needed by /login
SESSION_COOKIE = "assay_session"
LOGIN_SESSION_KEY = "login_session"  # where the guard leaves the request's session (scope state)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="assay"'}


class TokenCheck:
    """The bearer tokens one listener accepts; none configured means the listener is open."""

    def __init__(self, tokens: Iterable[str], what: str) -> None:
        self._tokens = [t.encode() for t in tokens if t]
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

    def binding(self, token: str, session_id: str) -> str | None:
        """A keyed hash tying a login session to the token that opened it (the token is the
        key, so the stored value says nothing about it), or None when the token is refused."""
        if not self.allows(f"Bearer {token}"):
            return None
        return _bind(token.strip().encode(), session_id)

    def holds(self, session_id: str, binding: str) -> bool:
        """Whether the token that opened the session is still one of these."""
        presented = binding.encode()
        matched = False
        for accepted in self._tokens:
            matched |= hmac.compare_digest(_bind(accepted, session_id).encode(), presented)
        return matched


def _bind(token: bytes, session_id: str) -> str:
    return hmac.new(token, session_id.encode(), hashlib.sha256).hexdigest()


def client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def token_refusal(
    check: TokenCheck, guesses: TokenGuesses, address: str | None, authorization: str | None
) -> tuple[str, int | None] | None:
    """None when `authorization` is acceptable; else why not, with the seconds to wait when
    `address` has guessed too often (the token is then not even checked). A wrong token is
    counted against the address; a request that presents none is no guess."""
    if not check.enabled:
        return None
    if authorization is not None:
        wait = guesses.retry_after(address)
        if wait is not None:
            return too_many_guesses(wait), wait
    reason = check.refusal(authorization)
    if reason is None:
        return None
    if authorization is not None:
        guesses.failed(address)
    return reason, None


def too_many_guesses(wait: int) -> str:
    return f"too many wrong tokens from this address: try again in {wait} s"


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
    one or a valid login session to the login page (plain ASGI, so the check never buffers a
    body). The API takes bearer tokens only: a cookie, which a browser attaches by itself,
    never authorises an API call. A UI request's session is left in the scope's state for the
    pages (its CSRF token)."""

    def __init__(
        self, app: ASGIApp, check: TokenCheck, sessions: LoginSessions, guesses: TokenGuesses
    ) -> None:
        self.app = app
        self.check = check
        self.sessions = sessions
        self.guesses = guesses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.check.enabled and is_api_path(scope["path"]):
            headers = Headers(scope=scope)
            refused = token_refusal(
                self.check, self.guesses, client_address(scope), headers.get("authorization")
            )
            if refused is not None and refused[1] is not None:
                wait = refused[1]
                response = JSONResponse({"error": refused[0]}, 429, {"Retry-After": str(wait)})
                await response(scope, receive, send)
                return
            reason = refused[0] if refused is not None else None
            path: str = scope["path"]
            if reason is not None and not path.startswith(API_PATH_PREFIX):
                try:
                    found = await self.sessions.find(request_cookie(headers, SESSION_COOKIE))
                except StoreError as exc:
                    message = f"the store did not answer, so the login cannot be checked: {exc}"
                    await JSONResponse({"error": message}, 503)(scope, receive, send)
                    return
                if found is not None:
                    scope.setdefault("state", {})[LOGIN_SESSION_KEY] = found
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
