"""Rows the store refuses for their values go to the dead-letter folder; the rest of their batch,
and everything after it, is stored. A store that is down never dead-letters: it is waited for.

Before: a batch the store refused was retried forever, everything sent afterwards waited behind
it (a restart replayed it first) and /api/health said "ok"."""

from __future__ import annotations

import json
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.service import Endpoints
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import DataError, StoreError, is_data_error
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.server import ServerStore
from tests.collector.otlp_builders import make_request, make_span
from tests.faults import FaultyStore
from tests.reliability.inprocess import quick_settings, serving

pytestmark = pytest.mark.integration

POISON = "value-the-store-cannot-hold"


def _settings(tmp_path: Path) -> CollectorSettings:
    return quick_settings(tmp_path, stats_interval=0.2)


def _send(endpoints: Endpoints, service: str, notes: list[str]) -> None:
    """One OTLP/HTTP request of one span per note (the span's `app.note` attribute)."""
    spans = [make_span("work", {"app.note": note}) for note in notes]
    response = httpx.post(
        f"{endpoints.http_url}/v1/traces",
        content=make_request(service, *spans).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text


def _notes(store: EmbeddedStore, service: str) -> list[str]:
    _, rows = store.query(
        "SELECT SpanAttributes['app.note'] FROM assay.otel_traces WHERE ServiceName = {s:String} "
        "ORDER BY 1",
        {"s": service},
    )
    return [row[0] for row in rows]


def _until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _health(endpoints: Endpoints) -> dict[str, Any]:
    return httpx.get(f"{endpoints.http_url}/api/health").json()


def _cli(*arguments: str) -> Any:
    result = CliRunner().invoke(main, ["deadletter", *arguments])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def refusing(embedded_store: EmbeddedStore, tmp_path: Path) -> Iterator[tuple[Endpoints, Any]]:
    store = FaultyStore(embedded_store)
    store.refuse = POISON
    with serving(_settings(tmp_path), store) as endpoints:
        yield endpoints, store


def test_refused_rows_are_dead_lettered_and_the_rest_is_stored(
    refusing: tuple[Endpoints, FaultyStore], embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    endpoints, store = refusing
    service = f"dead-{uuid.uuid4().hex[:8]}"
    notes = [f"ok-{i:02d}" for i in range(40)]
    sent = [*notes[:7], f"{POISON}-a", *notes[7:30], f"{POISON}-b", *notes[30:]]
    assert _health(endpoints)["status"] == "ok"
    _send(endpoints, service, sent)
    _send(endpoints, f"after-{service}", ["later"])

    # The request's good spans and the next request are stored; the two refused are not.
    assert _until(lambda: _notes(embedded_store, f"after-{service}")) == ["later"]
    assert _until(lambda: _notes(embedded_store, service) == notes), _notes(embedded_store, service)

    # The entry is written once the rest of the batch is stored.
    folder = tmp_path / "deadletter"
    assert _until(lambda: list(folder.glob("*.json")))
    (entry,) = json.loads(_cli("list", "--dir", str(folder), "--json").output)
    assert entry["table"] == "otel_traces" and entry["rows"] == 2 and entry["attempts"] == 1
    assert POISON in entry["error"]
    shown = json.loads(_cli("show", entry["id"], "--dir", str(folder)).output)
    assert sorted(row["SpanAttributes"]["app.note"] for row in shown["rows"]) == [
        f"{POISON}-a",
        f"{POISON}-b",
    ]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())

    # The writer counts a batch just after its entry is written: wait for the count too.
    _until(lambda: _health(endpoints)["pipeline"]["deadlettered_batches"], timeout=10)
    health = _health(endpoints)
    assert health["status"] == "degraded", health
    assert "dead-letter" in health["reasons"][0]
    assert health["pipeline"]["deadlettered_batches"] == 1
    assert health["pipeline"]["deadlettered_rows"] == 2
    stats = _until(
        lambda: embedded_store.query(
            "SELECT sum(deadlettered_batches), sum(deadlettered_rows), max(deadletter_entries), "
            "countIf(status = 'degraded') > 0 FROM assay.collector_stats "
            "WHERE timestamp > now() - INTERVAL 5 MINUTE HAVING sum(deadlettered_batches) > 0"
        )[1]
    )
    assert stats == [(1, 2, 1, True)]

    # Retried while the store still refuses them: they come back, one attempt more.
    _cli("retry", entry["id"], "--dir", str(folder))
    again = _until(
        lambda: [
            e
            for e in json.loads(_cli("list", "--dir", str(folder), "--json").output)
            if e["attempts"] == 2 and e["state"] == "dead-lettered"
        ]
    )
    assert [(e["id"], e["rows"]) for e in again] == [(entry["id"], 2)]

    # Once the store takes them (the cause fixed), a retry stores them and health is ok again.
    store.refuse = None
    _cli("retry", "--all", "--dir", str(folder))
    assert _until(lambda: len(_notes(embedded_store, service)) == 42)
    assert sorted(_notes(embedded_store, service)) == sorted(sent)
    assert _until(lambda: not list(folder.iterdir()))
    assert _until(lambda: _health(endpoints)["status"] == "ok")
    assert _health(endpoints)["pipeline"]["deadletter_retried_rows"] == 2


def test_a_store_that_is_down_is_waited_for_never_dead_lettered(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    """Even when the failing store's errors look like a value's (it does not answer a ping)."""
    store = FaultyStore(embedded_store)
    service = f"down-{uuid.uuid4().hex[:8]}"
    with serving(_settings(tmp_path), store) as endpoints:
        store.down = True
        _send(endpoints, service, ["plain"])
        store.refuse = "odd"
        _send(endpoints, service, ["odd one"])
        assert _until(lambda: _health(endpoints)["pipeline"]["write_failures"] >= 4)
        assert _notes(embedded_store, service) == []
        assert not list((tmp_path / "deadletter").iterdir())
        assert _health(endpoints)["pipeline"]["deadlettered_batches"] == 0

        store.down = False
        store.refuse = None
        assert _until(lambda: _notes(embedded_store, service) == ["odd one", "plain"])
        assert not list((tmp_path / "deadletter").iterdir())
        assert _until(lambda: _health(endpoints)["status"] == "ok")


def test_the_store_tells_a_value_it_cannot_hold_from_being_unreachable(
    embedded_store: EmbeddedStore,
) -> None:
    columns = ["Timestamp", "TraceId", "SpanId", "SeverityNumber"]
    with pytest.raises(DataError):  # SeverityNumber is a UInt8
        embedded_store.insert("otel_logs", [[time.time_ns()], ["t"], ["s"], [300]], columns)
    with pytest.raises(DataError):  # not UTF-8
        embedded_store.insert("otel_logs", [[time.time_ns()], ["\ud800"], ["s"], [9]], columns)
    # What the client raises when nothing answers is the store's failure, not the values'.
    with pytest.raises(Exception) as unreachable:
        clickhouse_connect.get_client(host="127.0.0.1", port=15099, connect_timeout=1)
    assert not is_data_error(unreachable.value)
    with pytest.raises(StoreError) as cut:
        ServerStore("http://127.0.0.1:15099/assay", connect_timeout=1)
    assert not isinstance(cut.value, DataError)
