"""UI logins end: each login opens a new random session kept in the store, which ends at its
expiry, at logout, and when the token that opened it is taken out of the configuration; its
cookie is HttpOnly, SameSite=Strict, Secure over TLS and lives no longer than the session."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from assay.collector.auth import TokenCheck
from assay.collector.login_sessions import TABLE, LoginSessions
from assay.collector.store.embedded import EmbeddedStore
from tests.collector.test_http_guard import STATE_CHANGING
from tests.collector.test_tls import make_self_signed
from tests.conftest import RunningCollector, start_collector

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def _sessions(store: EmbeddedStore, *tokens: str, clock: Clock | None = None) -> LoginSessions:
    return LoginSessions(store, TokenCheck(tokens, "API"), 12 * HOUR, clock or Clock())


def _lookup(sessions: LoginSessions, session_id: str) -> bool:
    return sessions.lookup(session_id) is not None


# --- the sessions, on the real embedded store ----------------------------------------------------
def test_each_login_opens_a_new_random_session(embedded_store: EmbeddedStore) -> None:
    """The finding: the same cookie value at every login, derived from the token."""
    sessions = _sessions(embedded_store, "token-one")
    first, second = sessions.open("token-one"), sessions.open("token-one")
    assert first is not None and second is not None
    assert first.id != second.id and first.csrf != second.csrf
    assert len(first.id) >= 43  # 256 random bits, URL-safe
    assert _lookup(sessions, first.id) and _lookup(sessions, second.id)
    # The store holds neither the ids nor anything of the token.
    _, rows = embedded_store.query(f"SELECT * FROM assay.{TABLE}")
    stored = " ".join(str(value) for row in rows for value in row)
    assert first.id not in stored and second.id not in stored and "token-one" not in stored
    # The cookie value of the old design (a keyed hash of the token) opens nothing.
    derived = hmac.new(b"token-one", b"assay-ui-session-v1", hashlib.sha256).hexdigest()
    assert not _lookup(sessions, derived)


def test_a_refused_token_opens_no_session(embedded_store: EmbeddedStore) -> None:
    sessions = _sessions(embedded_store, "token-one")
    for token in ("token-two", "", "token-on", " "):
        assert sessions.open(token) is None


def test_a_session_ends_at_its_expiry(embedded_store: EmbeddedStore) -> None:
    clock = Clock()
    sessions = _sessions(embedded_store, "token-one", clock=clock)
    opened = sessions.open("token-one")
    assert opened is not None and opened.expires_at == clock.now + 12 * HOUR
    clock.now += 12 * HOUR - 1
    assert _lookup(sessions, opened.id)
    clock.now += 1
    assert not _lookup(sessions, opened.id)


def test_logout_ends_the_session_for_every_collector_on_the_store(
    embedded_store: EmbeddedStore,
) -> None:
    here, there = _sessions(embedded_store, "token-one"), _sessions(embedded_store, "token-one")
    kept, ended = here.open("token-one"), here.open("token-one")
    assert kept is not None and ended is not None
    assert _lookup(there, ended.id)
    here.close(ended)
    assert not _lookup(here, ended.id) and not _lookup(there, ended.id)
    assert _lookup(there, kept.id)  # other sessions of the same token go on


def test_a_session_ends_when_its_token_is_no_longer_configured(
    embedded_store: EmbeddedStore,
) -> None:
    before = _sessions(embedded_store, "token-one", "token-two")
    of_one, of_two = before.open("token-one"), before.open("token-two")
    assert of_one is not None and of_two is not None
    # The same store after a restart with token-one taken out (rotated to token-three):
    after = _sessions(embedded_store, "token-two", "token-three")
    assert not _lookup(after, of_one.id)
    assert _lookup(after, of_two.id)
    # ...and after a restart with the same tokens, sessions carry on.
    assert _lookup(_sessions(embedded_store, "token-one", "token-two"), of_one.id)


def test_malformed_cookies_open_nothing(embedded_store: EmbeddedStore) -> None:
    sessions = _sessions(embedded_store, "token-one")
    for cookie in ("", "x", "' OR 1 --", "a" * 10_000, "\x00"):
        assert not _lookup(sessions, cookie)


# --- through the collector ------------------------------------------------------------------------
TOKEN = "session-token-0123456789"
ROTATED = "session-token-rotated-987"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def _start(base: Path, token: str, tls: bool) -> RunningCollector:
    env = {"ASSAY_API_TOKENS": token}
    if tls:
        (base / "tls").mkdir(exist_ok=True)
        certificate = make_self_signed(base / "tls")
        env.update(
            ASSAY_TLS_CERT=str(certificate.cert_file), ASSAY_TLS_KEY=str(certificate.key_file)
        )
    return start_collector(base / "data", base / f"log-{token}-{tls}", **env)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector with an API token, over TLS."""
    running = _start(tmp_path_factory.mktemp("sessions"), TOKEN, tls=True)
    yield running
    running.stop()


def _browser(collector: RunningCollector) -> httpx.Client:
    return httpx.Client(
        base_url=collector.http_url, verify=collector.verify, headers={"Accept": "text/html"}
    )


def _csrf(browser: httpx.Client, path: str) -> str:
    match = CSRF_FIELD.search(browser.get(path).text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def _log_in(browser: httpx.Client, token: str) -> httpx.Response:
    return browser.post(
        "/login?next=/calls", data={"token": token, "csrf": _csrf(browser, "/login")}
    )


def _set_cookie(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


def _opens_pages(collector: RunningCollector, session: str) -> bool:
    response = httpx.get(
        f"{collector.http_url}/calls",
        cookies={"assay_session": session},
        headers={"Accept": "text/html"},
        verify=collector.verify,
    )
    assert response.status_code in (200, 303), response.text
    return response.status_code == 200


@pytest.mark.integration
def test_the_session_cookie_is_new_at_each_login_and_guarded(secure: RunningCollector) -> None:
    values = set()
    for _ in range(2):
        with _browser(secure) as browser:
            response = _log_in(browser, TOKEN)
            assert response.status_code == 303, response.text
            header = _set_cookie(response, "assay_session")
            attributes = {part.strip().lower() for part in header.split(";")[1:]}
            assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
            max_age = int(SimpleCookie(header)["assay_session"]["max-age"])
            assert 11 * HOUR < max_age <= 12 * HOUR  # the session's life, not a year
            values.add(browser.cookies["assay_session"])
            assert browser.get("/calls").status_code == 200
    assert len(values) == 2
    assert all(TOKEN not in value for value in values)


@pytest.mark.integration
def test_logout_ends_the_session(secure: RunningCollector) -> None:
    with _browser(secure) as browser:
        _log_in(browser, TOKEN)
        session = browser.cookies["assay_session"]
        assert _opens_pages(secure, session)
        # Logging out needs the session's own CSRF token...
        assert browser.post("/logout", data={"csrf": "guess"}).status_code == 403
        assert _opens_pages(secure, session)
        csrf = _csrf(browser, "/calls")
        response = browser.post("/logout", data={"csrf": csrf})
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert 'assay_session=""' in _set_cookie(response, "assay_session")
    # ...and then the cookie, kept by someone, opens nothing.
    assert not _opens_pages(secure, session)


@pytest.mark.integration
def test_the_session_csrf_token_is_its_own(secure: RunningCollector) -> None:
    """A logged-in form carries its session's token; a double-submit pair of the attacker's
    choosing (cookie and field alike) is refused."""
    with _browser(secure) as browser:
        _log_in(browser, TOKEN)
        form = {"name": "dee", "next": "/calls"}
        forged = browser.post(
            "/reviewer", data={**form, "csrf": "chosen"}, cookies={"assay_csrf": "chosen"}
        )
        assert forged.status_code == 403 and "CSRF" in forged.text
        good = browser.post("/reviewer", data={**form, "csrf": _csrf(browser, "/calls")})
        assert good.status_code == 303, good.text


@pytest.mark.integration
def test_a_restart_keeps_sessions_and_a_changed_token_ends_them(tmp_path: Path) -> None:
    first = _start(tmp_path, TOKEN, tls=False)
    try:
        with _browser(first) as browser:
            response = _log_in(browser, TOKEN)
            # Over plain HTTP the cookie is not marked Secure (the browser would not send it).
            assert "secure" not in _set_cookie(response, "assay_session").lower()
            session = browser.cookies["assay_session"]
    finally:
        first.stop()
    # The same token after a restart: the session carries on (it is in the store).
    again = _start(tmp_path, TOKEN, tls=False)
    try:
        assert _opens_pages(again, session)
    finally:
        again.stop()
    rotated = _start(tmp_path, ROTATED, tls=False)
    try:
        assert not _opens_pages(rotated, session)
        with _browser(rotated) as browser:
            assert _log_in(browser, TOKEN).status_code == 401
            assert _log_in(browser, ROTATED).status_code == 303
            assert browser.get("/calls").status_code == 200
    finally:
        rotated.stop()


@pytest.mark.integration
@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
def test_state_changing_routes_need_the_token_or_the_session_and_its_csrf(
    secure: RunningCollector, method: str, path: str
) -> None:
    """With API tokens: the API takes the bearer token only (a logged-in browser's cookie, sent
    by any page that makes it post, is not enough); the UI's forms need a session and that
    session's CSRF token (another session's will not do)."""
    with _browser(secure) as mine, _browser(secure) as theirs:
        _log_in(mine, TOKEN)
        _log_in(theirs, TOKEN)
        their_csrf = _csrf(theirs, "/calls")
        same_origin = {"Origin": secure.http_url, "Accept": "application/json"}
        if path.startswith("/api/"):
            response = mine.request(
                method, path, json={"name": "forged", "sql": "SELECT 1"}, headers=same_origin
            )
            assert response.status_code == 401, response.text
        elif path != "/login":
            anonymous = httpx.request(
                method, f"{secure.http_url}{path}", data={}, verify=secure.verify
            )
            assert anonymous.status_code == 401
            for csrf in ("", their_csrf):
                response = mine.request(
                    method, path, data={"csrf": csrf, "name": "x"}, headers=same_origin
                )
                assert response.status_code == 403, (csrf, response.text)
                assert "CSRF" in response.json()["error"]
