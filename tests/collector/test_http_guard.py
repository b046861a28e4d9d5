"""The HTTP port takes orders from clients, not from web pages: API writes are JSON only and
same-origin, and only requests naming the collector in `Host` reach the UI and API."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

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
