"""Who is at the browser: login with the API token, the reviewer's name, and CSRF protection.

Logging in opens a login session (collector/login_sessions.py): a random id in the
`assay_session` cookie, which lasts `ui_session_hours` and ends at logout. Every form that
changes something carries a CSRF token: the session's own when logged in, else (the login form,
a collector without tokens) one that must equal the `assay_csrf` cookie (double submit: a page
on another site can neither read nor set that cookie). A request whose Origin, or without one
its Referer, names another host is refused outright. Cookies are SameSite=Strict, HttpOnly (but
the CSRF one), and Secure when the collector serves TLS."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from assay.collector.auth import LOGIN_SESSION_KEY, SESSION_COOKIE
from assay.collector.http_guard import sent_from
from assay.collector.login_sessions import LoginSession, LoginSessions

CSRF_COOKIE = "assay_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
REVIEWER_COOKIE = "assay_reviewer"
MAX_REVIEWER_CHARS = 100
_YEAR = 365 * 24 * 3600


class CsrfRefused(Exception):
    """A state-changing request that did not prove it came from this UI's own pages."""


def login_session(request: Request) -> LoginSession | None:
    """The session the guard found for this request (None without tokens, or on /login)."""
    found: LoginSession | None = getattr(request.state, LOGIN_SESSION_KEY, None)
    return found


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry: its session's, else its CSRF cookie's, or a new
    one (set on the response by `remember_csrf`)."""
    logged_in = login_session(request)
    if logged_in is not None:
        return logged_in.csrf
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
    source = sent_from(request.headers)
    if source is not None and source != request.headers.get("host", "").lower():
        raise CsrfRefused(f"cross-site request from {source or 'an opaque origin'} refused")
    logged_in = login_session(request)
    expected = logged_in.csrf if logged_in is not None else request.cookies.get(CSRF_COOKIE, "")
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRefused("missing or wrong CSRF token: reload the page and try again")


def reviewer(request: Request) -> str:
    return request.cookies.get(REVIEWER_COOKIE, "").strip()[:MAX_REVIEWER_CHARS]


def _set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    http_only: bool = True,
    max_age: int = _YEAR,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
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


def sign_in(request: Request, token: str, name: str) -> Response | str:
    """The response that logs the browser in (a new session each time), or why it cannot.
    Blocking: it writes the session to the store."""
    sessions: LoginSessions = request.app.state.login_sessions
    opened = sessions.open(token) if sessions.check.enabled else None
    if sessions.check.enabled and opened is None:
        return "that token is not accepted"
    response = RedirectResponse(safe_next(request.query_params.get("next")), 303)
    if opened is not None:
        left = opened.seconds_left(sessions.clock())
        _set_cookie(request, response, SESSION_COOKIE, opened.id, max_age=left)
    if name:
        _set_cookie(request, response, REVIEWER_COOKIE, name[:MAX_REVIEWER_CHARS])
    return response


def set_reviewer(request: Request, name: str, target: str) -> Response:
    response = RedirectResponse(safe_next(target), 303)
    _set_cookie(request, response, REVIEWER_COOKIE, name.strip()[:MAX_REVIEWER_CHARS])
    return response


def sign_out(request: Request) -> Response:
    """End the request's session (for every collector on the store) and drop its cookie.
    Blocking: it writes to the store."""
    logged_in = login_session(request)
    if logged_in is not None:
        request.app.state.login_sessions.close(logged_in)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
