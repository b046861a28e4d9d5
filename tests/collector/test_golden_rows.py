"""The rows of a fixed corpus of spans, exactly as the collector made them when the corpus was
taken: every column of `otel_traces`, `trace_spans`, `llm_calls` and `tool_calls`, every value
by its repr, for 322 OTLP requests (every dialect's hand-built spans, agent runs, Assay's own
spans of every provider from the instrumentation tests and the recorded calls, the bench's
spans, and values out of every column's range). A change that means to keep the rows (a faster
normalize, a different way to build columns) passes it as it is; one that changes rows on
purpose regenerates them (`python -m tests.collector.golden.capture --rows`) and says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from assay.instrumentation import pricing
from tests.collector.golden.capture import ROWS
from tests.collector.golden.rows import corpus, rows_of


@pytest.fixture
def builtin_prices() -> Iterator[None]:
    """The rows were taken with the built-in price table (no ASSAY_PRICES_FILE)."""
    before = pricing.current()
    pricing.activate(pricing.builtin_table())
    yield
    pricing.activate(before)


def test_every_column_of_every_row_is_as_it_was(builtin_prices: None) -> None:
    expected = json.loads(ROWS.read_text())
    found = rows_of(corpus())
    assert {t: v["rows"] for t, v in found.items()} == {t: v["rows"] for t, v in expected.items()}
    changed = [
        f"{table}.{column}"
        for table, columns in expected.items()
        for column, digest in columns.items()
        if found[table].get(column) != digest
    ]
    assert not changed, f"columns whose values changed: {changed}"
    assert found == expected  # and no column more or fewer


def test_a_changed_value_is_seen(builtin_prices: None) -> None:
    """The digests tell one changed value apart (what keeps the test above from passing on
    anything)."""
    requests = corpus()
    before = rows_of(requests)
    span = requests[-1].resource_spans[0].scope_spans[0].spans[0]
    span.attributes[0].value.string_value += " "
    after = rows_of(requests)
    assert before["otel_traces"]["SpanAttributes"] != after["otel_traces"]["SpanAttributes"]
    assert before["otel_traces"]["SpanId"] == after["otel_traces"]["SpanId"]
