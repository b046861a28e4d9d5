"""Bearer-token checks for the OTLP receivers and the API, and the API's guard middleware."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Paths the API guard leaves alone: OTLP checks its own tokens (they differ from the API's),
# and load balancers probe health without credentials (it then answers the status only).
OTLP_PATH_PREFIX = "/v1/"
OPEN_PATHS = frozenset({"/api/health"})
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


def is_api_path(path: str) -> bool:
    """Whether the API token guards `path`: everything on the HTTP port but OTLP and health."""
    return not path.startswith(OTLP_PATH_PREFIX) and path not in OPEN_PATHS


class ApiAuthMiddleware:
    """Answers 401 to API and UI requests without a valid bearer token (plain ASGI, so the
    check costs one header lookup and never buffers a body)."""

    def __init__(self, app: ASGIApp, check: TokenCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.check.enabled and is_api_path(scope["path"]):
            reason = self.check.refusal(Headers(scope=scope).get("authorization"))
            if reason is not None:
                response = JSONResponse({"error": reason}, 401, headers=challenge_headers())
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def challenge_headers() -> dict[str, str]:
    """Headers of a 401 answer (RFC 6750)."""
    return dict(_CHALLENGE)
