"""Who is at the browser: login with the API token, the reviewer's name, and CSRF protection.

Every form that changes something carries a CSRF token that must equal the `assay_csrf`
cookie (double submit: a page on another site can neither read nor set that cookie), and a
request whose Origin names another host is refused outright. Cookies are SameSite=Strict,
HttpOnly (but the CSRF one, which the page's script sends back in a header), and Secure when
the collector serves TLS."""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from assay.collector.auth import SESSION_COOKIE, TokenCheck

CSRF_COOKIE = "assay_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
REVIEWER_COOKIE = "assay_reviewer"
MAX_REVIEWER_CHARS = 100
_YEAR = 365 * 24 * 3600


class CsrfRefused(Exception):
    """A state-changing request that did not prove it came from this UI's own pages."""


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: its cookie, or a new one (set on the response by `remember`)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request created the token."""
    new = getattr(request.state, "new_csrf", None)
    if new:
        _set_cookie(request, response, CSRF_COOKIE, new, http_only=False)


def check_csrf(request: Request, form: Any) -> None:
    """Raise CsrfRefused unless the request comes from this UI (same origin, matching token)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if urlsplit(origin).netloc != request.headers.get("host", ""):
            raise CsrfRefused(f"cross-site request from {origin} refused")
    elif origin == "null":
        raise CsrfRefused("request from an opaque origin refused")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CsrfRefused("missing or wrong CSRF token: reload the page and try again")


def reviewer(request: Request) -> str:
    return request.cookies.get(REVIEWER_COOKIE, "").strip()[:MAX_REVIEWER_CHARS]


def _set_cookie(
    request: Request, response: Response, name: str, value: str, http_only: bool = True
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=_YEAR,
        path="/",
        httponly=http_only,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def safe_next(target: str | None) -> str:
    """A local path to go back to (never another site: `//host` and `/\\host` are refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def sign_in(request: Request, check: TokenCheck, token: str, name: str) -> Response | str:
    """The response that logs the browser in, or why it cannot."""
    session = check.session_for(token) if check.enabled else ""
    if session is None:
        return "that token is not accepted"
    response = RedirectResponse(safe_next(request.query_params.get("next")), 303)
    if session:
        _set_cookie(request, response, SESSION_COOKIE, session)
    if name:
        _set_cookie(request, response, REVIEWER_COOKIE, name[:MAX_REVIEWER_CHARS])
    return response


def set_reviewer(request: Request, name: str, target: str) -> Response:
    response = RedirectResponse(safe_next(target), 303)
    _set_cookie(request, response, REVIEWER_COOKIE, name.strip()[:MAX_REVIEWER_CHARS])
    return response


def sign_out() -> Response:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
