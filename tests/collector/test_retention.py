"""Retention: TTLs from assay.yaml set on the tables, idempotently; old rows and content go."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.collector.retention import (
    RetentionConfig,
    apply_retention,
    check_retention,
    kept_seconds,
    ttl_expression,
)
from assay.collector.schema import LlmCallRow, ToolCallRow, column_names, to_columns
from assay.collector.settings import load_settings
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import own_database, start_collector
from tests.reliability.otlp_export import export

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


def aged(days: float) -> dict[str, Any]:
    """The fields every row of a span has, for a span `days` old."""
    return {
        "timestamp": time.time_ns() - int(days * DAY_NS),
        "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16],
        "parent_span_id": "",
        "service_name": "retention",
    }


def aged_call(days: float) -> LlmCallRow:
    return LlmCallRow(
        **aged(days),
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
    # llm_calls rows, its 4 content columns, llm_call_messages, tool_calls' 2 content columns,
    # 6 trace tables (the spans and the agent-run tables); then the rows stored before are
    # expired in the background, a mutation per table
    assert len(statements) == 1 + 4 + 1 + 2 + 6 + 8
    assert "toIntervalDay(2)" in ddl(store, "llm_call_messages")
    for table in ("trace_spans", "tool_calls", "trace_summaries", "completed_runs"):
        assert "toIntervalDay(30)" in ddl(store, table), table
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

    # What a tool was told and answered is content too: emptied with the prompts.
    tool = ToolCallRow(
        **aged(5),
        tool_name="lookup",
        arguments='{"card": "4111 1111 1111 1111"}',
        result='{"owner": "someone"}',
    )
    store.insert(ToolCallRow.table, to_columns([tool]), column_names(ToolCallRow))
    store.command(f"OPTIMIZE TABLE {store.database}.tool_calls FINAL")
    _, rows = store.query(f"SELECT tool_name, arguments, result FROM {store.database}.tool_calls")
    assert rows == [("lookup", "", "")]

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
    have, table by table: the migrations' 90 days, a configured period, none."""
    day, inf = 86_400, float("inf")

    def kept() -> dict[str, float]:
        return {t: s for by_table in kept_seconds(store).values() for t, s in by_table.items()}

    assert set(kept_seconds(store)) == {"traces", "logs", "metrics"}
    assert set(kept().values()) == {90 * day}
    apply_retention(store, RetentionConfig({"traces": "7d", "llm_calls": "2w", "logs": "36h"}))
    assert kept_seconds(store)["traces"] == {"otel_traces": 7 * day, "llm_calls": 14 * day}
    assert kept_seconds(store)["logs"] == {"otel_logs": 36 * 3600}
    apply_retention(store, RetentionConfig({"llm_calls": "off", "metrics": "off"}))
    assert kept()["llm_calls"] == inf and kept()["otel_traces"] == 7 * day
    assert set(kept_seconds(store)["metrics"].values()) == {inf}
    # A TTL set by hand in another shape sets no bound: nothing a table would keep is refused.
    store.command(
        f"ALTER TABLE {store.database}.otel_logs MODIFY TTL toDateTime(Timestamp) + "
        "INTERVAL 1 DAY DELETE WHERE SeverityNumber < 9"
    )
    assert kept()["otel_logs"] == inf


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


@pytest.mark.integration
def test_a_collector_refuses_and_tells_as_each_table_of_a_span_keeps_it(tmp_path: Path) -> None:
    """Spans kept 7 days, calls 90 (ASSAY_RETENTION): a plain span 10 days old is refused with a
    reason, over gRPC and HTTP alike; an LLM call of the same age is taken, stored as its call,
    and the client is told its span row expires. The counters say what the tables hold (before,
    both spans were taken, the plain one dropped by the TTL as it was inserted, and counted)."""
    collector = start_collector(
        tmp_path / "data",
        tmp_path / "collector.log",
        ASSAY_RETENTION=json.dumps({"traces": "7d", "llm_calls": "90d"}),
    )
    try:
        call = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "gpt-4o"}
        aged = time.time_ns() - 10 * DAY_NS
        for how in ("grpc", "protobuf"):
            request = make_request(
                f"retention-{how}",
                make_span("plain, 10 days old", {"http.route": "/"}, start_ns=aged),
                make_span("call, 10 days old", call, start_ns=aged),
                make_span("plain", {"http.route": "/"}),
                make_span("call", call),
            )
            accepted, response, why = export(
                collector.grpc_port, collector.http_url, "traces", request.SerializeToString(), how
            )
            assert accepted, why
            told = response.partial_success  # type: ignore[union-attr]
            assert told.rejected_spans == 1
            assert "span start time before " in told.error_message
            assert "kept as an LLM call (llm_calls) without its span row" in told.error_message
        calls = collector.wait_for_rows(
            "SELECT span_id FROM assay.llm_calls WHERE service_name LIKE 'retention-%'", 4
        )
        spans = collector.query(
            "SELECT SpanName FROM assay.otel_traces WHERE ServiceName LIKE 'retention-%' "
            "ORDER BY SpanName"
        )
        assert len(calls) == 4
        assert [row["SpanName"] for row in spans] == ["call", "call", "plain", "plain"]
        # The rows are visible as soon as inserted; the writer counts them once the segment's
        # inserts are all done.
        deadline = time.monotonic() + 20
        while True:
            health = httpx.get(f"{collector.http_url}/api/health", timeout=10).json()["pipeline"]
            written = (health["spans_written"], health["llm_calls_written"])
            if written == (len(spans), len(calls)) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert written == (len(spans), len(calls))
        assert health["items_rejected"] == 2
    finally:
        collector.stop()
