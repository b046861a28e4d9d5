"""The HTTP port takes orders from clients, not from web pages: API writes are JSON only and
same-origin, and only requests naming the collector in `Host` reach the UI and API."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from starlette.routing import Route

from assay.collector.api import api_routes
from assay.collector.http_guard import SAFE_METHODS
from assay.collector.ui import ui_routes
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

DATASET = {"items": [{"input": "hello"}]}


def _dataset_exists(collector: RunningCollector, name: str) -> bool:
    return httpx.get(f"{collector.http_url}/api/datasets/{name}", timeout=30).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
@pytest.mark.parametrize(
    "path", ["/api/datasets", "/api/experiments", "/api/query", "/api/feedback"]
)
def test_api_writes_take_json_only(
    collector: RunningCollector, path: str, content_type: str | None
) -> None:
    """What a cross-site form can send (text/plain, form encodings) gets a 415, body unread."""
    name = f"plain-{uuid.uuid4().hex[:8]}"
    headers = {"content-type": content_type} if content_type else {}
    body = f'{{"name": "{name}", "items": [{{"input": "x"}}], "sql": "SELECT 1"}}'
    response = httpx.post(f"{collector.http_url}{path}", content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]
    assert not _dataset_exists(collector, name)


def test_api_writes_from_another_origin_are_refused(collector: RunningCollector) -> None:
    name = f"xsite-{uuid.uuid4().hex[:8]}"
    for origin in ("http://evil.example", "null", f"http://localhost:{collector.http_port + 1}"):
        response = httpx.post(
            f"{collector.http_url}/api/datasets",
            json={"name": name, **DATASET},
            headers={"Origin": origin},
        )
        assert response.status_code == 403, response.text
        assert "cross-site" in response.json()["error"]
    assert not _dataset_exists(collector, name)
    # The collector's own origin (a page of its UI) and clients without Origin are served.
    response = httpx.post(
        f"{collector.http_url}/api/datasets",
        json={"name": name, **DATASET},
        headers={"Origin": collector.http_url},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", ["/", "/calls", "/api/calls", "/api/datasets", "/login"])
def test_a_foreign_host_name_reaches_neither_ui_nor_api(
    collector: RunningCollector, path: str
) -> None:
    """A page whose DNS name was rebound to 127.0.0.1 sends its own name as Host."""
    response = httpx.get(
        f"{collector.http_url}{path}", headers={"Host": f"rebound.example:{collector.http_port}"}
    )
    assert response.status_code == 400
    assert "allowed_hosts" in response.json()["error"]
    query = httpx.post(
        f"{collector.http_url}/api/query",
        json={"sql": "SELECT 1"},
        headers={"Host": "rebound.example"},
    )
    assert query.status_code == 400 and "rows" not in query.text


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "localhost.:{port}",
        "ui.localhost:{port}",
        "[::1]:{port}",
        "10.1.2.3:{port}",
        socket.gethostname(),
    ],
)
def test_the_names_of_this_machine_are_served(collector: RunningCollector, host: str) -> None:
    response = httpx.get(
        f"{collector.http_url}/api/calls?limit=1",
        headers={"Host": host.format(port=collector.http_port)},
    )
    assert response.status_code == 200, response.text


def test_otlp_and_health_answer_to_any_name(collector: RunningCollector) -> None:
    """Exporters and load balancers use the name the network gives the collector."""
    headers = {"Host": "collector.svc.cluster.internal:4318"}
    body = make_request(f"svc-{uuid.uuid4().hex[:8]}", make_span()).SerializeToString()
    exported = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=body,
        headers={**headers, "content-type": "application/x-protobuf"},
    )
    assert exported.status_code == 200
    assert httpx.get(f"{collector.http_url}/api/health", headers=headers).status_code == 200


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("named")
    running = start_collector(
        base / "data", base / "log", ASSAY_ALLOWED_HOSTS="assay.internal, *.corp.example"
    )
    yield running
    running.stop()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("assay.internal", 200),
        ("ASSAY.internal:4318", 200),
        ("ui.corp.example", 200),
        ("a.b.corp.example", 200),
        ("corp.example", 400),
        ("evilcorp.example", 400),
        ("assay.internal.evil.example", 400),
    ],
)
def test_allowed_hosts_names_more(named: RunningCollector, host: str, status: int) -> None:
    response = httpx.get(f"{named.http_url}/api/calls?limit=1", headers={"Host": host})
    assert response.status_code == status, response.text


# --- every state-changing route, from a foreign page ---------------------------------------------
def _state_changing_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the HTTP port that is not a read, path parameters
    filled in: taken from the routes themselves, so a new one cannot skip the tests below."""
    found = []
    for route in [*api_routes(), *ui_routes()]:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - SAFE_METHODS):
                found.append((method, re.sub(r"\{[^}]*\}", "x", route.path_format)))
    return found


STATE_CHANGING = _state_changing_routes()
FOREIGN = "http://evil.example"
# What each kind of route answers a request it refuses: the API by content type and origin,
# the UI by its CSRF check.
REFUSED = {"api": {403, 415}, "ui": {403}}
# Tables a forged write would add rows to.
WRITTEN = ("datasets", "dataset_items", "experiments", "experiment_items", "scores", "price_tables")


def _kind(path: str) -> str:
    return "api" if path.startswith("/api/") else "ui"


def _row_counts(collector: RunningCollector) -> dict[str, int]:
    return {
        table: collector.query(f"SELECT count() AS n FROM assay.{table}")[0]["n"]
        for table in WRITTEN
    }


def test_the_routes_under_test_are_all_there() -> None:
    assert len(STATE_CHANGING) >= 13
    for expected in ("/api/datasets", "/api/prices/recompute", "/grade", "/calls/x/dataset"):
        assert ("POST", expected) in STATE_CHANGING


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
def test_no_state_changing_route_takes_orders_from_another_page(
    collector: RunningCollector, method: str, path: str
) -> None:
    """The default, token-less collector: a cross-site form (text/plain or form-encoded, with a
    CSRF pair of the attacker's making), or a fetch naming another origin in Origin or Referer
    or an opaque one, changes nothing, whatever the body says."""
    before = _row_counts(collector)
    url = f"{collector.http_url}{path}"
    json_body = '{"name": "forged", "items": [{"input": "x"}], "sql": "SELECT 1", "value": 1}'
    pair = {"assay_csrf": "chosen"}  # a cookie the attacker could plant, with the same field
    form = {"csrf": "chosen", "span_id": "x", "value": "1", "token": "", "name": "mallory"}
    attempts: list[tuple[str, dict[str, str], str | dict[str, str]]] = [
        ("text/plain form", {"Content-Type": "text/plain"}, json_body),
        ("urlencoded form, no CSRF", {}, {"span_id": "x", "value": "1", "name": "forged"}),
        ("foreign Origin", {"Origin": FOREIGN}, form),
        ("foreign Referer", {"Referer": f"{FOREIGN}/page"}, form),
        ("opaque Origin", {"Origin": "null"}, form),
        (
            "JSON, foreign Origin",
            {"Origin": FOREIGN, "Content-Type": "application/json"},
            json_body,
        ),
        (
            "JSON, foreign Referer",
            {"Referer": FOREIGN, "Content-Type": "application/json"},
            json_body,
        ),
    ]
    for what, headers, body in attempts:
        if isinstance(body, dict):
            response = httpx.request(method, url, data=body, headers=headers, cookies=pair)
        else:
            response = httpx.request(method, url, content=body, headers=headers, cookies=pair)
        assert response.status_code in REFUSED[_kind(path)], (what, response.text)
    assert _row_counts(collector) == before
