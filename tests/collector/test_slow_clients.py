"""Clients that hold the HTTP port's connections without ever finishing a request (slow-loris)
are let go after `http_header_timeout_s`, so they cannot pile up until the process runs out of
file descriptors (which the spool and the gRPC port need too), and OTLP is stored meanwhile."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 1
# How long a test waits for the collector to drop a connection before it calls it held:
# far longer than the deadline, so a slow machine does not fail the test.
GIVE_UP_S = 30


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("slow-clients")
    running = start_collector(
        base / "data", base / "log", ASSAY_HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S)
    )
    yield running
    running.stop()


def _connect(collector: RunningCollector) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", collector.http_port))
    sock.settimeout(GIVE_UP_S)
    return sock


def _dropped(sock: socket.socket) -> bool:
    """Whether the collector closed the connection (rather than holding it past GIVE_UP_S)."""
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


def _trickle_until_dropped(sock: socket.socket) -> bool:
    """Send one header line after another, never the blank line that ends them: data keeps
    arriving, so only a deadline on the whole header (not an idle timer) ends it."""
    deadline = time.monotonic() + GIVE_UP_S
    sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    sent = 0
    try:
        while time.monotonic() < deadline:
            sock.sendall(f"X-Slow-{sent}: a\r\n".encode())
            sent += 1
            time.sleep(0.2)
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.close()
    return False


def test_a_connection_that_sends_nothing_is_closed(strict: RunningCollector) -> None:
    assert _dropped(_connect(strict))


def test_a_request_whose_headers_never_end_is_closed(strict: RunningCollector) -> None:
    sock = _connect(strict)
    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert _dropped(sock)


def test_headers_sent_a_line_at_a_time_are_cut_off(strict: RunningCollector) -> None:
    assert _trickle_until_dropped(_connect(strict))


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(
    strict: RunningCollector,
) -> None:
    sock = _connect(strict)
    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert _trickle_until_dropped(sock)


def test_held_connections_do_not_stop_ingest_or_the_api(strict: RunningCollector) -> None:
    """While slow clients hold connections, an OTLP export is acknowledged and stored, and the
    API answers (a request that sends its headers at once is never cut off)."""
    held = [_connect(strict) for _ in range(50)]
    for sock in held:
        sock.sendall(b"GET /calls HTTP/1.1\r\n")
    service = f"slow-{os.urandom(4).hex()}"
    exported = httpx.post(
        f"{strict.http_url}/v1/traces",
        content=make_request(service, make_span()).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=GIVE_UP_S,
    )
    assert exported.status_code == 200
    strict.wait_for_rows(f"SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{service}'", 1)
    assert all(_dropped(sock) for sock in held)


def test_the_deadline_is_a_setting(tmp_path: Path) -> None:
    """Its default is generous (slow links), and it cannot be switched off by a zero."""
    from assay.collector.settings import CollectorSettings

    assert CollectorSettings().http_header_timeout_s >= 5
    with pytest.raises(ValueError):
        CollectorSettings(http_header_timeout_s=0)
