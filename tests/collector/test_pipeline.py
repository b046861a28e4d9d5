"""The writer: batches requests into the store, retries failed writes, and bounds its queue."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from assay.collector.pipeline import Overloaded, Pipeline
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import StoreError
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span


class FailingFirst:
    """The real embedded store behind a fault: the first `failures` inserts fail."""

    def __init__(self, store: EmbeddedStore, failures: int) -> None:
        self.store, self.failures, self.attempts = store, failures, 0
        self.database, self.kind = store.database, store.kind

    def insert(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreError("connection refused (injected)")
        self.store.insert(table, columns, column_names, dedup_token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _settings(**kw: Any) -> CollectorSettings:
    return CollectorSettings(flush_interval=0.05, retry_initial=0.01, retry_max=0.05, **kw)


def _count(store: EmbeddedStore, service: str) -> int:
    _, rows = store.query(
        "SELECT count() FROM assay.otel_traces WHERE ServiceName = {s:String}", {"s": service}
    )
    return int(rows[0][0])


def test_requests_are_batched_into_the_store(embedded_store: EmbeddedStore) -> None:
    pipeline = Pipeline(embedded_store, _settings())
    pipeline.start()
    service = f"batch-{uuid.uuid4().hex[:8]}"
    for _ in range(20):
        request = make_request(service, make_span(attrs={sc.REQUEST_MODEL: "gpt-4o"}), make_span())
        pipeline.submit("traces", request, request.ByteSize())
    assert pipeline.flush(20)
    pipeline.stop()
    assert _count(embedded_store, service) == 40
    stats = pipeline.stats.snapshot()
    assert stats["spans_written"] == 40 and stats["llm_calls_written"] == 20


def test_a_failing_store_is_retried_until_it_recovers_without_duplicates(
    embedded_store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FailingFirst(embedded_store, failures=3)
    pipeline = Pipeline(flaky, _settings())  # type: ignore[arg-type]
    pipeline.start()
    service = f"flaky-{uuid.uuid4().hex[:8]}"
    request = make_request(service, *(make_span() for _ in range(5)))
    with caplog.at_level(logging.WARNING, logger="assay.collector.pipeline"):
        pipeline.submit("traces", request, request.ByteSize())
        assert pipeline.flush(20)
    pipeline.stop()
    assert _count(embedded_store, service) == 5
    assert pipeline.stats.snapshot()["write_failures"] == 3
    assert "retrying" in caplog.text


def test_a_full_queue_refuses_with_back_pressure(embedded_store: EmbeddedStore) -> None:
    never = FailingFirst(embedded_store, failures=10**9)
    pipeline = Pipeline(never, _settings(max_queue_bytes=10_000))  # type: ignore[arg-type]
    pipeline.start()
    request = make_request("full", make_span(attrs={sc.INPUT_MESSAGES: "x" * 4000}))
    size = request.ByteSize()
    accepted = 0
    with pytest.raises(Overloaded) as refused:
        for _ in range(10):
            pipeline.submit("traces", request, size)
            accepted += 1
    assert accepted == 10_000 // size
    assert refused.value.retry_after >= 1
    assert pipeline.stats.snapshot()["requests_refused"] == 1
    pipeline.stop(timeout=5)
