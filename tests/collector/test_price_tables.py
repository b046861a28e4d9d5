"""Prices in force, a newer price file, and stored calls priced again: rows updated in place,
rollups corrected, nothing counted twice, on the real embedded store."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector import price_tables
from assay.collector.normalize.cost import CLASS_COST_COLUMNS
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow, column_names, to_columns
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import own_database

# Two days ago (midnight UTC): inside the tables' retention, and a whole day in the past.
DAY = dt.datetime.combine(dt.date.today() - dt.timedelta(days=2), dt.time(), dt.UTC)
NEW_PRICES = {
    "taken": "2026-07-01",
    "models": {
        "acme-large": {"provider": "acme", "input": 1.0, "cached_input": 0.1, "output": 4.0},
        "gpt-4o-mini": {"input": 0.3, "output": 1.2},
    },
}


@pytest.fixture
def store(
    embedded_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmbeddedStore]:
    """A database of its own on the session's engine: recomputing prices a day of calls, and
    other tests store calls on the same days."""
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)
    monkeypatch.setattr(price_tables, "_in_force", None)
    with own_database(embedded_store, "prices") as own:
        price_tables.activate_from_store(own)
        yield own
        pricing.reload()


def call(service: str, minute: int, **attrs: Any) -> LlmCallRow:
    base = {
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.PROVIDER_NAME: "openai",
        sc.REQUEST_MODEL: "gpt-4o-mini",
    }
    start = int((DAY + dt.timedelta(minutes=minute)).timestamp() * 1e9)
    span = make_span(attrs={**base, **attrs}, start_ns=start, error=sc.ERROR_TYPE in attrs)
    (row,) = normalize_traces(make_request(service, span)).llm_calls
    return row


def usage(input_: int, output: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        sc.USAGE_INPUT_TOKENS: input_,
        sc.USAGE_OUTPUT_TOKENS: output,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: cached,
        sc.USAGE_REASONING_OUTPUT_TOKENS: reasoning,
    }


def store_calls(store: EmbeddedStore, service: str) -> list[LlmCallRow]:
    rows = [
        call(
            service, 1, **usage(1200, 300, cached=1000), **{sc.USER_ID: "ann", sc.SESSION_ID: "s1"}
        ),
        call(service, 2, **usage(50, 900, reasoning=800), **{sc.SESSION_ID: "s1"}),
        call(
            service,
            3,
            **usage(400, 20, cached=300),
            **{sc.PROVIDER_NAME: "acme", sc.REQUEST_MODEL: "acme-large", sc.USER_ID: "ann"},
        ),
        call(service, 4, **{sc.USAGE_REPORTED: False}),
        call(service, 5, **{sc.ERROR_TYPE: "RateLimitError"}),
        # failed with usage (an Anthropic stream cut after message_start): never priced
        call(service, 6, **usage(700, 0), **{sc.ERROR_TYPE: "OverloadedError"}),
        # failed after its answer finished (openai's parse() at max_tokens): billed, priced
        call(
            service,
            7,
            **usage(300, 40),
            **{sc.ERROR_TYPE: "LengthFinishReasonError", sc.RESPONSE_FINISH_REASONS: ["length"]},
        ),
        call(
            service,
            61,
            **usage(10, 10),
            **{sc.REQUEST_MODEL: "acme-large", sc.PROVIDER_NAME: "acme", sc.COST_USD: 0.5},
        ),
        # a day later: outside the range recomputed
        call(
            service,
            24 * 60 + 5,
            **usage(400, 20),
            **{sc.PROVIDER_NAME: "acme", sc.REQUEST_MODEL: "acme-large"},
        ),
    ]
    # One insert per call, as separate batches arrive: each fires the rollup views once.
    for row in rows:
        store.insert(LlmCallRow.table, to_columns([row]), column_names(LlmCallRow))
    return rows


def rows_of(store: EmbeddedStore, service: str) -> list[dict[str, Any]]:
    columns, rows = store.query(
        f"SELECT * FROM {store.database}.llm_calls WHERE service_name = {{s:String}} "
        "ORDER BY timestamp, span_id",
        {"s": service},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def rollup_totals(store: EmbeddedStore, service: str) -> dict[str, tuple[Any, ...]]:
    """Each rollup's totals for the service, and what the calls themselves add up to."""
    db = store.database
    reasons = (
        "sum(cost_usd), sum(unpriced_calls), sum(unpriced_model_calls), sum(no_usage_calls), "
        "sum(failed_unpriced_calls), sum(calls)"
    )
    truth = (
        "sum(ifNull(cost_usd, 0)), countIf(cost_usd IS NULL), "
        "countIf(cost_source = 'unpriced_model'), countIf(cost_source = 'no_usage'), "
        "countIf(cost_source = 'failed_call'), count()"
    )
    priced = "sum(ifNull(cost_usd, 0)), countIf(cost_usd IS NULL)"
    out: dict[str, tuple[Any, ...]] = {}
    for name, sql in {
        "calls": f"SELECT {truth} FROM {db}.llm_calls WHERE service_name = {{s:String}}",
        "1m": f"SELECT {reasons} FROM {db}.llm_calls_1m WHERE service_name = {{s:String}}",
        "1h": f"SELECT {reasons} FROM {db}.llm_calls_1h WHERE service_name = {{s:String}}",
        "users": f"SELECT sum(cost_usd), sum(unpriced_calls) FROM {db}.llm_users_1d "
        "WHERE service_name = {s:String}",
        "calls_users": f"SELECT {priced} FROM {db}.llm_calls "
        "WHERE service_name = {s:String} AND user_id != ''",
        "sessions": f"SELECT sum(cost_usd), sum(unpriced_calls) FROM {db}.llm_sessions_1d "
        "WHERE has(services, {s:String})",
        "calls_sessions": f"SELECT {priced} FROM {db}.llm_calls "
        "WHERE service_name = {s:String} AND session_id != ''",
    }.items():
        _, rows = store.query(sql, {"s": service})
        out[name] = tuple(round(v, 12) if isinstance(v, float) else v for v in rows[0])
    return out


def assert_rollups_agree(store: EmbeddedStore, service: str) -> None:
    totals = rollup_totals(store, service)
    assert totals["1m"] == totals["calls"] == totals["1h"]
    assert totals["users"] == totals["calls_users"]
    assert totals["sessions"] == totals["calls_sessions"]


def test_a_newer_price_file_prices_stored_calls_again_without_a_second_row(
    store: EmbeddedStore,
) -> None:
    service = f"prices-{uuid.uuid4().hex[:8]}"
    stored = store_calls(store, service)
    builtin = price_tables.in_force().table.version
    before = rows_of(store, service)
    assert [r["cost_source"] for r in before] == [
        "priced",
        "priced",
        "unpriced_model",
        "no_usage",
        "failed_call",
        "failed_call",
        "priced",
        "reported",
        "unpriced_model",
    ]
    assert_rollups_agree(store, service)

    loaded = price_tables.load(store, NEW_PRICES)
    assert loaded.table.version != builtin and loaded.table.taken == "2026-07-01"
    done = price_tables.recompute(store, DAY, DAY + dt.timedelta(days=1))
    assert done.calls == 8 and (done.priced_before, done.priced_after) == (3, 5)

    after = rows_of(store, service)
    assert len(after) == len(stored)  # updated in place: no second row per call
    assert [r["span_id"] for r in after] == [r["span_id"] for r in before]
    assert [r["cost_source"] for r in after] == [
        "priced",
        "priced",
        "priced",
        "no_usage",
        "failed_call",
        "failed_call",
        "priced",
        "priced",
        "unpriced_model",
    ]
    # Each row now costs what the table in force says, class by class, as if it came in now.
    for row in after[:-1]:
        fresh = pricing.current().cost(
            pricing.Usage(
                input=row["input_tokens"],
                output=row["output_tokens"],
                cache_read=row["cached_input_tokens"],
                reasoning=row["reasoning_tokens"],
            ),
            row["model"],
            row["provider"],
        )
        unfinished = row["status"] == "error" and not row["finish_reasons"]
        if fresh is None or unfinished:  # failed before its answer finished: unpriced
            assert row["cost_usd"] is None and row["price_version"] == ""
            continue
        assert row["cost_usd"] == fresh.total and row["price_version"] == loaded.table.version
        assert {n: row[c] for n, c in CLASS_COST_COLUMNS.items()} == fresh.by_class
    # The file replaced gpt-4o-mini's input and output prices; its cache-read price stays.
    assert after[0]["cost_usd"] == pytest.approx((200 * 0.3 + 1000 * 0.075 + 300 * 1.2) / 1e6)
    assert after[-1]["cost_usd"] is None  # outside the range: left as it was
    assert_rollups_agree(store, service)

    # Again: nothing changes, and no correcting row is added.
    _, (count_1m,) = store.query(
        f"SELECT count() FROM {store.database}.llm_calls_1m WHERE service_name = {{s:String}}",
        {"s": service},
    )
    again = price_tables.recompute(store, DAY, DAY + dt.timedelta(days=1))
    assert (again.cost_before, again.priced_before) == (again.cost_after, again.priced_after)
    assert rows_of(store, service) == after
    _, (count_again,) = store.query(
        f"SELECT count() FROM {store.database}.llm_calls_1m WHERE service_name = {{s:String}}",
        {"s": service},
    )
    assert count_again == count_1m
    assert_rollups_agree(store, service)


def test_a_recompute_corrects_experiment_calls_on_experiment_rows(store: EmbeddedStore) -> None:
    """The dashboards split traffic by `is_experiment`; corrections keep to their side."""
    service = f"prices-{uuid.uuid4().hex[:8]}"
    acme = {sc.PROVIDER_NAME: "acme", sc.REQUEST_MODEL: "acme-large", sc.SESSION_ID: service}
    rows = [
        call(service, 1, **usage(400, 20), **acme, **{sc.USER_ID: "ann"}),
        call(service, 2, **usage(100, 10), **acme, **{sc.EXPERIMENT_ID: "exp-1"}),
    ]
    for row in rows:
        store.insert(LlmCallRow.table, to_columns([row]), column_names(LlmCallRow))
    price_tables.load(store, NEW_PRICES)
    price_tables.recompute(store, DAY, DAY + dt.timedelta(days=1))
    db = store.database
    truth = (
        f"SELECT is_experiment, round(sum(ifNull(cost_usd, 0)), 12), countIf(cost_usd IS NULL) "
        f"FROM {db}.llm_calls WHERE service_name = {{s:String}} GROUP BY 1 ORDER BY 1"
    )
    _, wanted = store.query(truth, {"s": service})
    assert [cost > 0 for _, cost, _ in wanted] == [True, True]
    for table in ("llm_calls_1m", "llm_calls_1h"):
        _, held = store.query(
            "SELECT is_experiment, round(sum(cost_usd), 12), sum(unpriced_calls) "
            f"FROM {db}.{table} WHERE service_name = {{s:String}} GROUP BY 1 ORDER BY 1",
            {"s": service},
        )
        assert held == wanted, table
    _, sessions = store.query(
        f"SELECT is_experiment, round(sum(cost_usd), 12) FROM {db}.llm_sessions_1d "
        "WHERE has(services, {s:String}) GROUP BY 1 ORDER BY 1",
        {"s": service},
    )
    assert sessions == [(flag, cost) for flag, cost, _ in wanted]


def test_the_loaded_file_stays_in_force_and_every_version_is_kept(store: EmbeddedStore) -> None:
    loaded = price_tables.load(store, NEW_PRICES)
    price_tables.activate_from_store(store)  # as a restart does
    assert price_tables.in_force().table.version == loaded.table.version
    assert price_tables.in_force().origin == "loaded"
    assert pricing.lookup("acme-large", "acme") is not None
    _, rows = store.query(
        f"SELECT prices FROM {store.database}.price_tables FINAL WHERE version = {{v:String}}",
        {"v": loaded.table.version},
    )
    kept = json.loads(rows[0][0])
    assert kept["models"]["gpt-4o-mini"]["input"] == 0.3
    assert kept["version"] == loaded.table.version


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([], '"models" object'),
        ({"models": {"m": {"provider": "x", "input": -1, "output": 1}}}, "input must be a number"),
        (
            {"models": {"m": {"provider": "x", "input": 1, "output": 1, "cache_read": 1}}},
            "unknown field(s) cache_read",
        ),
        ({"taken": "yesterday", "models": {}}, '"taken" must be a date'),
    ],
)
def test_a_bad_price_file_is_refused_and_changes_nothing(
    store: EmbeddedStore, raw: Any, says: str
) -> None:
    version = price_tables.in_force().table.version
    with pytest.raises(price_tables.PriceTableError, match=None) as refused:
        price_tables.load(store, raw)
    assert says in str(refused.value)
    assert price_tables.in_force().table.version == version == pricing.current().version
