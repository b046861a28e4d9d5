"""Access to the UI: the API token as a login, cross-site requests refused, loopback by default."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import RunningCollector, start_collector
from tests.ui.conftest import CHROMIUM, screenshot
from tests.ui.seed import Seeded, seed_calls

pytestmark = pytest.mark.integration

TOKEN = "ui-secret-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("guarded-ui")
    running = start_collector(base / "data", base / "log", ASSAY_API_TOKENS=TOKEN)
    yield running
    running.stop()


def human_grades(collector: RunningCollector, span_id: str) -> int:
    rows = collector.query(
        f"SELECT count() AS n FROM assay.scores WHERE span_id = '{span_id}' AND source = 'human'"
    )
    return int(rows[0]["n"])


def test_the_ui_asks_for_the_token_and_the_cookie_never_opens_the_api(
    page: Page, guarded: RunningCollector
) -> None:
    seeded = seed_calls(guarded, f"guarded-{uuid.uuid4().hex[:6]}", plain=1)
    page.goto(f"{guarded.http_url}/calls/{seeded.span_ids[0]}")
    expect(page).to_have_url(re.compile("/login\\?next="))
    screenshot(page, "login")
    page.fill("input[name=token]", "not-the-token")
    page.click("form.login button")
    expect(page.locator("form.login .error")).to_have_text("that token is not accepted")

    page.fill("input[name=token]", TOKEN)
    page.fill("form.login input[name=name]", "dee")
    page.click("form.login button")
    expect(page).to_have_url(re.compile(f"/calls/{seeded.span_ids[0]}$"))  # back where asked
    expect(page.locator("header input[name=name]")).to_have_value("dee")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["assay_session"]
    assert TOKEN not in session["value"] and session["httpOnly"] and session["sameSite"] == "Strict"

    # The session cookie opens pages, never the API (which a browser would call on its own).
    jar = {"assay_session": session["value"]}
    assert httpx.get(f"{guarded.http_url}/calls", cookies=jar).status_code == 200
    api = httpx.get(f"{guarded.http_url}/api/calls", cookies=jar)
    assert api.status_code == 401
    # A client that is not a browser gets a 401, not a login form.
    assert httpx.get(f"{guarded.http_url}/calls").status_code == 401

    page.click("header button:has-text('Log out')")
    expect(page).to_have_url(re.compile("/login$"))
    page.goto(f"{guarded.http_url}/calls")
    expect(page).to_have_url(re.compile("/login"))


@pytest.fixture
def other_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A page on another origin whose form, submitted by the test, posts a grade to the
    collector: what a malicious site would do to a reviewer with the UI open."""
    target: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                f"<form id=f method=post action='{target['action']}'>"
                f"<input name=span_id value='{target['span_id']}'><input name=value value=0>"
                "<input name=csrf value=guess></form>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", target
    server.shutdown()
    server.server_close()


def test_cross_site_grading_is_refused(
    page: Page,
    collector: RunningCollector,
    seeded: Seeded,
    other_site: tuple[str, dict[str, str]],
) -> None:
    span = seeded.span_ids[4]
    page.goto(f"{collector.http_url}/calls/{span}")  # the reviewer has the UI open
    url, target = other_site
    target.update(action=f"{collector.http_url}/grade", span_id=span)
    page.goto(url)
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    expect(page.locator("p.error")).to_contain_text("cross-site request")
    assert human_grades(collector, span) == 0

    # Without a browser: no CSRF token, or the wrong one, is refused too.
    form = {"span_id": span, "value": "1"}
    assert httpx.post(f"{collector.http_url}/grade", data=form).status_code == 403
    refused = httpx.post(
        f"{collector.http_url}/grade",
        data={**form, "csrf": "a"},
        cookies={"assay_csrf": "b"},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    # The JSON API refuses the content types a cross-site form can send.
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        sneaky = httpx.post(
            f"{collector.http_url}/api/feedback",
            content=f'{{"span_id": "{span}", "value": 0}}',
            headers={"Content-Type": content_type},
        )
        assert sneaky.status_code == 415
    assert human_grades(collector, span) == 0

    # The same form from the UI's own page, with its token, is accepted.
    accepted = httpx.post(
        f"{collector.http_url}/grade",
        data={**form, "csrf": "same"},
        cookies={"assay_csrf": "same"},
        headers={"Accept": "application/json", "Origin": collector.http_url},
    )
    assert accepted.status_code == 200, accepted.text
    assert human_grades(collector, span) == 1


@pytest.fixture
def attacker() -> Iterator[dict[str, str]]:
    """Another site, serving whatever HTML the test puts under "html"."""
    served: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(served["html"].encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}/"
    yield served
    server.shutdown()
    server.server_close()


def test_a_cross_site_form_cannot_create_a_dataset(
    page: Page, collector: RunningCollector, attacker: dict[str, str]
) -> None:
    """A text/plain form body can spell JSON; the API refuses it for its content type."""
    name = f"forged-{uuid.uuid4().hex[:8]}"
    attacker["html"] = (
        f"<form id=f method=post enctype=text/plain action='{collector.http_url}/api/datasets'>"
        f'<input name=\'{{"name": "{name}", "items": [{{"input": "x", "pad": "\' '
        "value='\"}]}'></form>"
        # and a fetch, which may send text/plain without a preflight
        f"<script>fetch('{collector.http_url}/api/datasets', {{method: 'POST', mode: 'no-cors', "
        f"body: JSON.stringify({{name: '{name}', items: [{{input: 'y'}}]}})}})"
        ".then(() => document.title = 'sent')</script>"
    )
    page.goto(attacker["url"])
    expect(page).to_have_title("sent")
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert "cross-site request" in page.content()
    assert httpx.get(f"{collector.http_url}/api/datasets/{name}").status_code == 404


@pytest.fixture
def rebinding_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium resolving rebound.test to 127.0.0.1: the state a DNS-rebinding page reaches."""
    launched = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--host-resolver-rules=MAP rebound.test 127.0.0.1"],
    )
    yield launched
    launched.close()


def test_a_rebound_page_reads_nothing(
    rebinding_browser: Browser, collector: RunningCollector, seeded: Seeded
) -> None:
    context = rebinding_browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"http://rebound.test:{collector.http_port}/calls")
        assert response is not None and response.status == 400
        assert "allowed_hosts" in page.content() and seeded.service not in page.content()
        status = page.evaluate(
            "fetch('/api/query', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({sql: 'SELECT input_messages FROM llm_calls'})})"
            ".then(r => r.status)"
        )
        assert status == 400
    finally:
        context.close()


def listening_on(running: RunningCollector) -> set[str]:
    """The addresses the collector's sockets listen on (IPv4-mapped ones as IPv4)."""
    return {
        c.laddr.ip.removeprefix("::ffff:")
        for c in psutil.Process(running.process.pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    }


def test_without_a_token_the_collector_listens_on_loopback_only(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "data", tmp_path / "log", "--host", "0.0.0.0")
    try:
        assert listening_on(running) == {"127.0.0.1"}
        assert "listening on 127.0.0.1 only" in running.log()
        assert "ASSAY_API_TOKENS" in running.log()
    finally:
        running.stop()


def test_with_a_token_the_collector_listens_where_told(tmp_path: Path) -> None:
    running = start_collector(
        tmp_path / "data", tmp_path / "log", "--host", "0.0.0.0", ASSAY_API_TOKENS=TOKEN
    )
    try:
        assert listening_on(running) <= {"0.0.0.0", "::"}
    finally:
        running.stop()
