"""Migration 012 upgrades a store that already holds calls: every rolled-up sum is kept, and from
then on experiment traffic, token classes, unpriced reasons and error classes are rolled up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from assay.collector.store import migrations
from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import own_database

MIGRATION = "012_dashboard_dimensions.sql"
# (error_type, error_message) as clients report them → the class the dashboards show.
ERRORS = {
    ("RateLimitError", "Error code: 429 - rate limit reached"): "rate_limit",
    ("ThrottlingException", ""): "rate_limit",
    ("ClientError", "429 RESOURCE_EXHAUSTED. Quota exceeded"): "rate_limit",
    ("ClientError", "An error occurred (ThrottlingException) when calling Converse"): "rate_limit",
    ("429", ""): "rate_limit",
    ("APITimeoutError", "Request timed out."): "timeout",
    ("ReadTimeout", ""): "timeout",
    ("InternalServerError", "Error code: 500"): "server_error",
    ("OverloadedError", "Overloaded"): "server_error",
    ("APIStatusError", "503 Service Unavailable"): "server_error",
    ("503", ""): "server_error",
    ("APIConnectionError", "Connection error."): "connection",
    ("AuthenticationError", "invalid x-api-key"): "auth",
    ("PermissionDeniedError", ""): "auth",
    ("BadRequestError", "maximum context length"): "bad_request",
    ("NotFoundError", "model not found"): "bad_request",
    ("ValueError", "something else"): "other",
}


def _calls(start: datetime, tag: str) -> list[dict[str, Any]]:
    """Production calls of two services, experiment calls (an experiment id in a service of
    their own, and the runner's service), and one failed call per known error."""
    base = {"operation": "chat", "provider": "openai", "model": "m", "request_model": "m"}
    base |= {"response_model": "m", "prompt_name": "p", "prompt_version": "v1"}
    base |= {"duration_ms": 100.0, "status": "ok", "error_type": "", "error_message": ""}
    calls: list[dict[str, Any]] = []

    def add(**fields: Any) -> None:
        calls.append(
            base
            | {
                "timestamp": start + timedelta(seconds=len(calls)),
                "span_id": f"{tag}-{len(calls)}",
                "trace_id": f"trace-{tag}-{len(calls)}",
                "experiment_id": "",
                "user_id": "u1",
                "session_id": f"s-{tag}",
                "input_tokens": 100,
                "output_tokens": 10,
                "cached_input_tokens": 40,
                "cache_creation_input_tokens": 5,
                "reasoning_tokens": 3,
                "cost_usd": 0.01,
                "cost_source": "priced",
            }
            | fields
        )

    for _ in range(4):
        add(service_name="shop")
    add(service_name="shop", cost_usd=None, cost_source="unpriced_model")
    add(service_name="shop", cost_usd=None, cost_source="no_usage", input_tokens=None)
    for _ in range(3):
        add(service_name="notebook", experiment_id="exp-1")
    add(service_name="assay-experiments")
    for error_type, message in ERRORS:
        add(service_name="shop", status="error", error_type=error_type, error_message=message)
    return calls


def _insert(store: EmbeddedStore, calls: list[dict[str, Any]]) -> None:
    names = list(calls[0])
    store.insert("llm_calls", [[c[k] for c in calls] for k in names], names)


@pytest.fixture
def upgraded(
    embedded_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmbeddedStore]:
    """A database of its own on the session's engine, migrated up to 011."""
    with own_database(embedded_store, "upgrade", migrate=False) as store:
        every = migrations.load_migrations
        monkeypatch.setattr(
            migrations, "load_migrations", lambda db: [m for m in every(db) if m.version < 12]
        )
        store.migrate()
        monkeypatch.undo()
        yield store


def _one(store: EmbeddedStore, sql: str) -> tuple[Any, ...]:
    return store.query(sql.replace("{db}", store.database))[1][0]


TOTALS = {
    "llm_calls_1m": "sum(calls), sum(errors), sum(input_tokens), round(sum(cost_usd), 6)",
    "llm_calls_1h": "sum(calls), sum(errors), sum(input_tokens), round(sum(cost_usd), 6)",
    "llm_users_1d": "sum(calls), sum(errors), round(sum(cost_usd), 6)",
    "llm_sessions_1d": "sum(calls), sum(errors), round(sum(cost_usd), 6)",
    "llm_errors": "count()",
}


def test_an_upgraded_store_keeps_its_rollups_and_splits_new_traffic(
    upgraded: EmbeddedStore,
) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    before = _calls(start, "old")
    _insert(upgraded, before)
    kept = {t: _one(upgraded, f"SELECT {s} FROM {{db}}.{t}") for t, s in TOTALS.items()}

    assert upgraded.migrate()[0] == MIGRATION  # and any later migration
    assert upgraded.migrate() == []
    for table, sums in TOTALS.items():
        assert _one(upgraded, f"SELECT {sums} FROM {{db}}.{table}") == kept[table], table
    # Rolled up before: production, and no token classes (they were not summed then).
    assert _one(
        upgraded,
        "SELECT countIf(is_experiment), sum(cached_input_tokens) FROM {db}.llm_calls_1m",
    ) == (0, 0)

    after = _calls(start + timedelta(minutes=10), "new")
    _insert(upgraded, after)
    experiment = [
        c for c in after if c["experiment_id"] or c["service_name"] == "assay-experiments"
    ]
    for table in ("llm_calls_1m", "llm_calls_1h", "llm_users_1d", "llm_sessions_1d"):
        calls_by_kind = _one(
            upgraded,
            f"SELECT sumIf(calls, is_experiment), sumIf(calls, NOT is_experiment) "
            f"FROM {{db}}.{table}",
        )
        assert calls_by_kind == (len(experiment), len(before) + len(after) - len(experiment))
    for table in ("llm_calls_1m", "llm_calls_1h"):
        tokens = _one(
            upgraded,
            "SELECT sum(cached_input_tokens), sum(cache_creation_input_tokens), "
            f"sum(reasoning_tokens) FROM {{db}}.{table}",
        )
        assert tokens == (40 * len(after), 5 * len(after), 3 * len(after))
        # What migration 009 rolls up, the views still do (one of each, before and after).
        reasons = _one(
            upgraded, f"SELECT sum(unpriced_model_calls), sum(no_usage_calls) FROM {{db}}.{table}"
        )
        assert reasons == (2, 2), table
    # Scores know whether the call they grade is experiment traffic, and their direction.
    upgraded.insert(
        "scores",
        [
            ["new-0", "new-6"],
            ["new-0", "new-6"],
            ["quality", "toxicity"],
            [1.0, 0.5],
            ["higher_is_better", "lower_is_better"],
            [start, start],  # within the table's TTL: a score of 1970 is dropped
        ],
        ["trace_id", "span_id", "name", "value", "direction", "timestamp"],
    )
    _, graded = upgraded.query(
        f"SELECT span_id, is_experiment, direction FROM {upgraded.database}.call_scores "
        "ORDER BY span_id"
    )
    assert graded == [("new-0", False, "higher_is_better"), ("new-6", True, "lower_is_better")]


def test_failed_calls_are_classed_before_and_after_the_upgrade(upgraded: EmbeddedStore) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    _insert(upgraded, _calls(start, "old"))
    upgraded.migrate()
    _insert(upgraded, _calls(start + timedelta(minutes=10), "new"))
    _, rows = upgraded.query(
        f"SELECT error_type, error_message, groupUniqArray(error_class), count() "
        f"FROM {upgraded.database}.llm_errors GROUP BY error_type, error_message"
    )
    classes = {(t, m): (c, n) for t, m, c, n in rows}
    assert classes == {key: ([wanted], 2) for key, wanted in ERRORS.items()}


def test_the_migration_re_runs_safely_when_cut_short(upgraded: EmbeddedStore) -> None:
    upgraded.migrate()
    [migration] = [m for m in migrations.load_migrations(upgraded.database) if m.version == 12]
    for statement in migration.statements:
        upgraded.command(statement)
    _insert(upgraded, _calls(datetime.now(timezone.utc).replace(microsecond=0), "again"))
    assert _one(upgraded, "SELECT sum(calls) FROM {db}.llm_calls_1m") == (
        len(_calls(datetime.now(timezone.utc), "x")),
    )
