"""An API token cannot be guessed at the speed of the HTTP port: past MAX_FAILURES wrong tokens
a minute, an address's requests presenting a token are refused unchecked (429), through the
API, the login form and /api/health alike, while open login sessions keep working."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from assay.collector.token_guesses import MAX_FAILURES, TokenGuesses
from tests.conftest import RunningCollector, start_collector

pytestmark = pytest.mark.integration

TOKEN = "the-real-token"


def _collector(factory: pytest.TempPathFactory, name: str) -> Iterator[RunningCollector]:
    base = factory.mktemp(name)
    running = start_collector(base / "data", base / "log", ASSAY_API_TOKENS=TOKEN)
    yield running
    running.stop()


@pytest.fixture
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector of its own per test: a locked-out address stays locked for a minute."""
    yield from _collector(tmp_path_factory, "guesses")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: httpx.Client, url: str, token: str) -> httpx.Response:
    form = client.get(f"{url}/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    return client.post(
        f"{url}/login", data={"token": token, "csrf": csrf.group(1)}, follow_redirects=False
    )


def test_wrong_bearer_tokens_lock_the_address_out(guarded: RunningCollector) -> None:
    url = guarded.http_url
    reviewer = httpx.Client()
    assert _login(reviewer, url, TOKEN).status_code == 303  # logged in before the guessing
    for n in range(MAX_FAILURES):
        assert httpx.get(f"{url}/api/calls", headers=_bearer(f"guess-{n}")).status_code == 401
    # Now even the right token is refused, unchecked: the answer tells a guesser nothing.
    locked = httpx.get(f"{url}/api/calls", headers=_bearer(TOKEN))
    assert locked.status_code == 429, locked.text
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert "too many wrong tokens" in locked.json()["error"]
    # /api/health, open to load balancers, is no oracle either: the status only.
    assert set(httpx.get(f"{url}/api/health", headers=_bearer(TOKEN)).json()) == {"status"}
    # The login form refuses the right token too.
    refused = _login(httpx.Client(), url, TOKEN)
    assert refused.status_code == 429 and "too many wrong tokens" in refused.text
    # A request without a token is no guess and gets its usual answer.
    assert httpx.get(f"{url}/api/calls").status_code == 401
    # A reviewer already logged in (maybe behind the same proxy) keeps working.
    assert reviewer.get(f"{url}/calls").status_code == 200


def test_wrong_tokens_typed_into_the_login_form_count(guarded: RunningCollector) -> None:
    url = guarded.http_url
    client = httpx.Client()
    for n in range(MAX_FAILURES):
        assert _login(client, url, f"guess-{n}").status_code == 401
    assert _login(client, url, TOKEN).status_code == 429
    assert httpx.get(f"{url}/api/calls", headers=_bearer(TOKEN)).status_code == 429


def test_wrong_tokens_sent_to_health_count(guarded: RunningCollector) -> None:
    url = guarded.http_url
    for n in range(MAX_FAILURES):
        assert set(httpx.get(f"{url}/api/health", headers=_bearer(f"g{n}")).json()) == {"status"}
    assert httpx.get(f"{url}/api/calls", headers=_bearer(TOKEN)).status_code == 429


def test_the_right_token_is_never_counted(guarded: RunningCollector) -> None:
    url = guarded.http_url
    for _ in range(MAX_FAILURES * 2):
        assert httpx.get(f"{url}/api/datasets", headers=_bearer(TOKEN)).status_code == 200


def test_the_lock_lifts_when_the_oldest_failure_leaves_the_window() -> None:
    now = [1000.0]
    guesses = TokenGuesses(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert guesses.retry_after("10.0.0.1") is None
        guesses.failed("10.0.0.1")
        now[0] += 10
    assert guesses.retry_after("10.0.0.1") == 30  # the first failure, at 1000, ends at 1060
    assert guesses.retry_after("10.0.0.2") is None  # per address
    now[0] = 1060.0
    assert guesses.retry_after("10.0.0.1") is None


def test_the_addresses_remembered_are_bounded() -> None:
    guesses = TokenGuesses(max_failures=1, max_addresses=100)
    for n in range(1000):
        guesses.failed(f"10.0.{n // 256}.{n % 256}")
    assert guesses.retry_after("10.0.3.231") is not None  # the last one
    assert guesses.retry_after("10.0.0.0") is None  # forgotten
