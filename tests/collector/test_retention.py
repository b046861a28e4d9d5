"""Retention: TTLs from assay.yaml set on the tables, idempotently; old rows and content go."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.collector.retention import (
    RetentionConfig,
    apply_retention,
    check_retention,
    kept_seconds,
    ttl_expression,
)
from assay.collector.schema import LlmCallRow, column_names, to_columns
from assay.collector.settings import load_settings
from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import own_database

DAY_NS = 86_400 * 10**9


@pytest.fixture
def store(embedded_store: EmbeddedStore) -> Iterator[EmbeddedStore]:
    """A database of its own on the session's engine: TTLs must not touch other tests' data."""
    with own_database(embedded_store, "retention") as own:
        yield own


def ddl(store: EmbeddedStore, table: str) -> str:
    _, rows = store.query(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = {d:String} AND name = {t:String}",
        {"d": store.database, "t": table},
    )
    return str(rows[0][0])


def aged_call(days: float) -> LlmCallRow:
    return LlmCallRow(
        timestamp=time.time_ns() - int(days * DAY_NS),
        trace_id=uuid.uuid4().hex,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id="",
        service_name="retention",
        operation="chat",
        provider="openai",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini",
        model="gpt-4o-mini",
        input_messages='[{"role": "user", "content": "secret question"}]',
        output_messages='[{"role": "assistant", "content": "secret answer"}]',
        input_tokens=10,
        cost_usd=0.001,
    )


def test_ttls_are_set_once_and_expire_rows_and_content(store: EmbeddedStore) -> None:
    retention = RetentionConfig(
        {"llm_calls": "10d", "content": "2d", "traces": "30d", "scores": "off"}
    )
    statements = apply_retention(store, retention)
    # llm_calls rows, its 4 content columns, llm_call_messages, 2 trace tables; then the rows
    # stored before are expired in the background, a mutation per table
    assert len(statements) == 1 + 4 + 1 + 2 + 4
    assert "toIntervalDay(2)" in ddl(store, "llm_call_messages")
    assert "toDateTime(timestamp) + toIntervalDay(10)" in ddl(store, "llm_calls")
    assert "toIntervalDay(30)" in ddl(store, "otel_traces")
    assert "TTL" not in ddl(store, "scores")
    assert apply_retention(store, retention) == []  # already so: nothing to do

    calls = [aged_call(20), aged_call(5), aged_call(0)]
    store.insert(LlmCallRow.table, to_columns(calls), column_names(LlmCallRow))
    store.command(f"OPTIMIZE TABLE {store.database}.llm_calls FINAL")
    _, rows = store.query(
        f"SELECT span_id, input_messages, output_messages, input_tokens, cost_usd"
        f" FROM {store.database}.llm_calls ORDER BY timestamp"
    )
    # 20 days old: gone. 5 days old: the row stays, its prompt and response are emptied.
    assert rows == [
        (calls[1].span_id, "", "", 10, 0.001),
        (calls[2].span_id, calls[2].input_messages, calls[2].output_messages, 10, 0.001),
    ]

    # A changed period is applied; `off` takes Assay's TTL away again.
    assert apply_retention(store, RetentionConfig({"llm_calls": "12w"})) == [
        f"ALTER TABLE {store.database}.llm_calls MODIFY TTL "
        "toDateTime(timestamp) + toIntervalDay(84) SETTINGS materialize_ttl_after_modify = 0",
        f"ALTER TABLE {store.database}.llm_calls MATERIALIZE TTL SETTINGS mutations_sync = 0",
    ]
    apply_retention(store, RetentionConfig({"llm_calls": "off", "content": "off"}))
    assert " TTL " not in ddl(store, "llm_calls")


def test_rows_stored_before_a_ttl_is_set_expire_in_the_background(store: EmbeddedStore) -> None:
    """Setting a TTL does not rewrite the stored parts before it returns (on a big store that
    held the start up for minutes): a background mutation expires them afterwards."""
    calls = [aged_call(20), aged_call(5), aged_call(0)]
    store.insert(LlmCallRow.table, to_columns(calls), column_names(LlmCallRow))
    statements = apply_retention(store, RetentionConfig({"llm_calls": "10d", "content": "2d"}))
    assert all("materialize_ttl_after_modify = 0" in s for s in statements if "MODIFY" in s)
    query = f"SELECT span_id, input_messages FROM {store.database}.llm_calls ORDER BY timestamp"
    expired = [(calls[1].span_id, ""), (calls[2].span_id, calls[2].input_messages)]
    for _ in range(300):
        if store.query(query)[1] == expired:
            break
        time.sleep(0.1)
    assert store.query(query)[1] == expired  # no OPTIMIZE, no merge asked for


def test_how_long_each_signal_is_kept_is_read_from_the_tables_ttls(store: EmbeddedStore) -> None:
    """What the receivers refuse as too old (receivers/validation.py) follows the TTLs the tables
    have: the migrations' 90 days, a configured period, none; a span is kept as long as the
    longer of its two tables keeps it (an LLM call outlives its trace)."""
    day = 86_400
    assert kept_seconds(store) == {"traces": 90 * day, "logs": 90 * day, "metrics": 90 * day}
    apply_retention(store, RetentionConfig({"traces": "7d", "llm_calls": "2w", "logs": "36h"}))
    assert kept_seconds(store) == {"traces": 14 * day, "logs": 36 * 3600, "metrics": 90 * day}
    apply_retention(store, RetentionConfig({"llm_calls": "off", "metrics": "off"}))
    inf = float("inf")
    assert kept_seconds(store) == {"traces": inf, "logs": 36 * 3600, "metrics": inf}
    # A TTL set by hand in another shape sets no bound: nothing a table would keep is refused.
    store.command(
        f"ALTER TABLE {store.database}.otel_logs MODIFY TTL toDateTime(Timestamp) + "
        "INTERVAL 1 DAY DELETE WHERE SeverityNumber < 9"
    )
    assert kept_seconds(store)["logs"] == inf


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"everything": "1d"}, "unknown kind"),
        ({"llm_calls": "soon"}, "write e.g. 12h, 30d"),
        ({"llm_calls": "0d"}, "must be positive"),
        ({"llm_calls": "90d", "rollups": "30d"}, "rollups .* must outlive"),
    ],
)
def test_bad_retention_is_explained(retention: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_retention(retention)


def test_retention_comes_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "assay.yaml"
    config.write_text("collector:\n  retention: {llm_calls: 90d, content: 36h}\n")
    assert load_settings(config).retention.periods == {"llm_calls": "90d", "content": "36h"}
    assert ttl_expression("ts", "36h") == "toDateTime(ts) + toIntervalHour(36)"
    config.write_text("collector:\n  retention: {llm_calls: forever}\n")
    with pytest.raises(ValueError, match="retention period 'forever'"):
        load_settings(config)


def test_retention_comes_from_the_environment_as_json_before_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "assay.yaml"
    config.write_text("collector:\n  retention: {llm_calls: 90d}\n")
    monkeypatch.setenv("ASSAY_RETENTION", '{"llm_calls": "30d", "content": "7d"}')
    settings = load_settings(config)
    assert settings.retention == RetentionConfig({"llm_calls": "30d", "content": "7d"})
    monkeypatch.setenv("ASSAY_RETENTION", '{"llm_calls": "30d", "rollups": "7d"}')
    with pytest.raises(ValueError, match=r"rollups .* must outlive"):
        load_settings(config)
