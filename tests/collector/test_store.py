"""The store: migrations, the schema the row types write, and the ClickHouse server path."""

from __future__ import annotations

import dataclasses
import time
import uuid
from functools import partial

import pytest

from assay.collector import schema
from assay.collector.schema import LlmCallRow, column_names
from assay.collector.store.base import Inserted, StoreError
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.migrations import (
    RELOADING_SUFFIX,
    load_migrations,
    reload_views,
    split_statements,
)
from assay.collector.store.reading import QueryLimits
from assay.collector.store.server import ServerStore, parse_clickhouse_url
from tests.conftest import own_database
from tests.docker_engine import require_docker

# Every row type the collector writes: each keeps equal to its table's DDL.
ROW_TYPES = [
    row_type
    for row_type in vars(schema).values()
    if isinstance(row_type, type)
    and dataclasses.is_dataclass(row_type)
    and "table" in vars(row_type)
]
CONTRACT_LLM_COLUMNS = [  # DESIGN.md: columns people and dashboards rely on
    "timestamp",
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "model",
    "input_messages",
    "output_messages",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "duration_ms",
    "time_to_first_token_ms",
    "status",
    "error_type",
    "finish_reasons",
    "user_id",
    "session_id",
    "prompt_name",
    "prompt_version",
    "tags",
    "experiment_id",
    "dataset_item_id",
    "attributes",
]
CONTRACT_SCORE_COLUMNS = [
    "timestamp",
    "trace_id",
    "span_id",
    "name",
    "value",
    "label",
    "passed",
    "explanation",
    "source",
    "evaluator_version",
    "author",
    "experiment_id",
    "dataset_item_id",
    "cost_usd",
    "duration_ms",
]


def _columns(store: EmbeddedStore, table: str) -> dict[str, str]:
    """The columns an insert writes (a MATERIALIZED column is computed by the table)."""
    _, rows = store.query(
        f"SELECT name, type FROM system.columns WHERE database = 'assay' "
        f"AND table = '{table}' AND default_kind != 'MATERIALIZED' ORDER BY position"
    )
    return {name: kind for name, kind in rows}


def test_migrations_run_once(embedded_store: EmbeddedStore) -> None:
    assert embedded_store.migrate() == []
    _, rows = embedded_store.query("SELECT name FROM assay.schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == [m.name for m in load_migrations("assay")]


@pytest.mark.parametrize("row_type", ROW_TYPES, ids=lambda row_type: row_type.__name__)
def test_row_types_write_exactly_the_table_columns(
    embedded_store: EmbeddedStore, row_type: type
) -> None:
    assert list(_columns(embedded_store, row_type.table)) == column_names(row_type)


def test_the_contract_columns_exist(embedded_store: EmbeddedStore) -> None:
    llm = _columns(embedded_store, "llm_calls")
    assert [c for c in CONTRACT_LLM_COLUMNS if c not in llm] == []
    assert llm["timestamp"] == "DateTime64(9)"
    assert llm["cost_usd"] == "Nullable(Float64)" and llm["cached_input_tokens"].startswith(
        "Nullable"
    )
    scores = _columns(embedded_store, "scores")
    assert [c for c in CONTRACT_SCORE_COLUMNS if c not in scores] == []
    for table in ("datasets", "dataset_items", "experiments", "otel_traces_trace_id_ts"):
        assert _columns(embedded_store, table)


def test_a_retried_insert_with_the_same_token_is_stored_once(embedded_store: EmbeddedStore) -> None:
    marker = uuid.uuid4().hex
    columns = [
        [time.time_ns()],
        [marker],
        ["s"],
        [""],
        ["svc"],
        ["chat"],
        ["openai"],
        ["m"],
        ["m"],
        ["m"],
    ]
    names = column_names(LlmCallRow)[:10]
    outcomes = [
        embedded_store.insert("llm_calls", columns, names, dedup_token=f"tok-{marker}")
        for _ in range(3)
    ]
    _, rows = embedded_store.query(
        "SELECT count() FROM assay.llm_calls WHERE trace_id = {m:String}", {"m": marker}
    )
    assert rows == [(1,)]
    assert outcomes == [Inserted(1, 1), Inserted(1, 0), Inserted(1, 0)]
    assert outcomes[1].deduplicated == 1


def _one_call(marker: str, n: int) -> list[list[object]]:
    """The first ten columns of an llm_calls row of trace `marker`, span `s<n>`."""
    return [[time.time_ns()], [marker], [f"s{n}"], [""], ["svc"], ["chat"], ["openai"]] + [
        ["m"]
    ] * 3


def test_a_counting_block_counts_what_its_inserts_stored_by_table_once(
    embedded_store: EmbeddedStore,
) -> None:
    marker = uuid.uuid4().hex
    names = column_names(LlmCallRow)[:10]

    call = partial(_one_call, marker)

    embedded_store.insert("llm_calls", call(1), names, dedup_token=f"a-{marker}")
    counted: dict[str, int] = {}
    with embedded_store.counting(counted):
        outcomes = [
            embedded_store.insert("llm_calls", call(1), names, dedup_token=f"a-{marker}"),
            embedded_store.insert("llm_calls", call(2), names, dedup_token=f"b-{marker}"),
            embedded_store.insert("llm_calls", call(3), names, dedup_token=f"c-{marker}"),
        ]
    assert outcomes == [Inserted(1, None)] * 3
    assert counted == {"llm_calls": 2}
    # after the block, inserts count themselves again, from where the block's count ended
    assert embedded_store.insert("llm_calls", call(4), names, dedup_token=f"d-{marker}") == (
        Inserted(1, 1)
    )
    _, rows = embedded_store.query(
        "SELECT count() FROM assay.llm_calls WHERE trace_id = {m:String}", {"m": marker}
    )
    assert rows == [(4,)]


def test_a_first_time_block_is_not_counted_and_later_counts_stay_exact(
    embedded_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block whose tokens were never sent before (a segment's first attempt) stored all it
    sent: the store's parts are not read for it. Counts after it, in a block or alone, still
    tell the rows a replay of its tokens brings (none) from new ones."""
    marker = uuid.uuid4().hex
    names = column_names(LlmCallRow)[:10]

    call = partial(_one_call, marker)

    asked: list[list[str]] = []
    count = embedded_store._new_rows_of
    monkeypatch.setattr(
        embedded_store, "_new_rows_of", lambda tables: asked.append(tables) or count(tables)
    )
    counted: dict[str, int] = {}
    with embedded_store.counting(counted, first_time=True):
        first = [
            embedded_store.insert("llm_calls", call(1), names, dedup_token=f"a-{marker}"),
            embedded_store.insert("llm_calls", call(2), names, dedup_token=f"b-{marker}"),
        ]
    assert first == [Inserted(1, 1)] * 2
    assert counted == {} and asked == []
    with embedded_store.counting(counted):  # a replay of the first block, and one new row
        embedded_store.insert("llm_calls", call(1), names, dedup_token=f"a-{marker}")
        embedded_store.insert("llm_calls", call(2), names, dedup_token=f"b-{marker}")
        embedded_store.insert("llm_calls", call(3), names, dedup_token=f"c-{marker}")
    assert counted == {"llm_calls": 1} and asked == [["llm_calls"]]
    with embedded_store.counting(counted, first_time=True):
        embedded_store.insert("llm_calls", call(4), names, dedup_token=f"d-{marker}")
    # alone, after a first-time block: a replay of its token stores nothing, and says so
    assert embedded_store.insert("llm_calls", call(4), names, f"d-{marker}") == Inserted(1, 0)
    assert embedded_store.insert("llm_calls", call(5), names, f"e-{marker}") == Inserted(1, 1)
    with pytest.raises(ValueError, match="needs a token"):
        with embedded_store.counting(counted, first_time=True):
            embedded_store.insert("llm_calls", call(6), names)
    _, rows = embedded_store.query(
        "SELECT count() FROM assay.llm_calls WHERE trace_id = {m:String}", {"m": marker}
    )
    assert rows == [(5,)]


def test_an_insert_says_which_of_its_rows_the_store_already_had(
    embedded_store: EmbeddedStore,
) -> None:
    """A block is deduplicated per partition (a day of llm_calls): an insert replayed with rows
    of one more day stores just those, and says so."""
    marker = uuid.uuid4().hex
    names = column_names(LlmCallRow)[:10]

    def calls(days: list[int]) -> list[list[object]]:
        now = time.time_ns()
        rows = [
            [
                now - day * 86_400 * 10**9,
                marker,
                f"s{i}",
                "",
                "svc",
                "chat",
                "openai",
                "m",
                "m",
                "m",
            ]
            for i, day in enumerate(days)
        ]
        return [list(column) for column in zip(*rows, strict=True)]

    token = f"partial-{marker}"
    assert embedded_store.insert("llm_calls", calls([0, 0, 0]), names, token) == Inserted(3, 3)
    assert embedded_store.insert("llm_calls", calls([0, 0, 0, 2, 2]), names, token) == Inserted(
        5, 2
    )
    _, rows = embedded_store.query(
        "SELECT count() FROM assay.llm_calls WHERE trace_id = {m:String}", {"m": marker}
    )
    assert rows == [(5,)]


def test_rows_another_writer_added_never_make_a_negative_duplicate_count(
    embedded_store: EmbeddedStore,
) -> None:
    """The store counts an insert's new rows by the table's new parts: rows someone else put in
    the table in between (a raw INSERT) must not be counted as more than the insert sent."""
    marker = uuid.uuid4().hex
    names = column_names(LlmCallRow)[:10]
    columns: list[list[object]] = [
        [time.time_ns()],
        [marker],
        ["s"],
        [""],
        ["svc"],
        ["chat"],
        ["openai"],
        ["m"],
        ["m"],
        ["m"],
    ]
    token = f"foreign-{marker}"
    assert embedded_store.insert("llm_calls", columns, names, token) == Inserted(1, 1)
    embedded_store.query(
        "INSERT INTO assay.llm_calls (timestamp, trace_id, span_id, service_name) "
        "SELECT now64(9), {m:String}, toString(number), 'other' FROM numbers(5)",
        {"m": f"other-{marker}"},
    )
    again = embedded_store.insert("llm_calls", columns, names, token)
    assert again.rows == 1 and again.new is not None and 0 <= again.new <= 1
    assert again.deduplicated >= 0


def test_a_bad_insert_raises_a_store_error(embedded_store: EmbeddedStore) -> None:
    with pytest.raises(StoreError, match="llm_calls"):
        embedded_store.insert("llm_calls", [["not a time"]], ["timestamp"])


def test_inserts_describe_a_table_once_and_again_after_it_changed(
    embedded_store: EmbeddedStore,
) -> None:
    """The column types an insert encodes with are asked for once per table (not before every
    insert); a column the cached types lack, or an insert that failed, makes them asked again."""
    table = f"types_{uuid.uuid4().hex[:8]}"
    db = embedded_store.database
    embedded_store.command(
        f"CREATE TABLE {db}.{table} (a LowCardinality(String), m Map(LowCardinality(String), "
        "String)) ENGINE = MergeTree ORDER BY a"
    )
    embedded_store.insert(table, [["x"], [{"k": "v"}]], ["a", "m"])
    embedded_store.insert(table, [["y"], [{}]], ["a", "m"])
    assert embedded_store._column_types[table] == {
        "a": "LowCardinality(String)",
        "m": "Map(LowCardinality(String), String)",
    }
    embedded_store.command(f"ALTER TABLE {db}.{table} ADD COLUMN n UInt8")
    embedded_store.insert(table, [["z"], [{}], [7]], ["a", "m", "n"])
    embedded_store.command(f"ALTER TABLE {db}.{table} MODIFY COLUMN n String")
    with pytest.raises(StoreError):
        embedded_store.insert(table, [["w"], [{}], [object()]], ["a", "m", "n"])
    assert table not in embedded_store._column_types
    embedded_store.insert(table, [["w"], [{}], ["text"]], ["a", "m", "n"])
    _, rows = embedded_store.query(f"SELECT a, m, n FROM {db}.{table} ORDER BY a")
    assert rows == [("w", {}, "text"), ("x", {"k": "v"}, ""), ("y", {}, ""), ("z", {}, "7")]


def test_split_statements_drops_comments() -> None:
    assert split_statements("-- a comment\nSELECT 1;\n\n-- x\nSELECT 2;") == [
        "SELECT 1",
        "SELECT 2",
    ]


def test_clickhouse_urls() -> None:
    args = parse_clickhouse_url("https://bob:s%40cret@ch.example:8443/prod")
    assert args == {
        "host": "ch.example",
        "port": 8443,
        "username": "bob",
        "password": "s@cret",
        "secure": True,
        "database": "prod",
    }
    assert parse_clickhouse_url("http://ch:8123")["database"] == "assay"
    with pytest.raises(StoreError):
        parse_clickhouse_url("tcp://ch:9000")


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot reach ClickHouse"):
        ServerStore("http://default:@127.0.0.1:1/assay", connect_timeout=1)


@pytest.mark.docker
def test_server_store_on_a_real_clickhouse() -> None:
    """The server store against ClickHouse in Docker (testcontainers); skipped without Docker."""
    require_docker("the ClickHouse server test")
    from testcontainers.clickhouse import ClickHouseContainer

    with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as container:
        url = (
            f"http://{container.username}:{container.password}@{container.get_container_host_ip()}"
            f":{container.get_exposed_port(8123)}/assay"
        )
        store = ServerStore(url)
        assert store.migrate() and store.migrate() == []
        names = column_names(LlmCallRow)[:10]
        row = [
            [1_800_000_000_000_000_000],
            ["t"],
            ["s"],
            [""],
            ["svc"],
            ["chat"],
            ["openai"],
            ["m"],
            ["m"],
            ["m"],
        ]
        store.insert("llm_calls", row, names, dedup_token="x")
        store.insert("llm_calls", row, names, dedup_token="x")
        assert store.query("SELECT count() FROM assay.llm_calls")[1] == [(1,)]
        limits = QueryLimits(5, 10, 2**30, 1, 2**20)
        with pytest.raises(StoreError), store.read_session(limits) as session:
            session.query("INSERT INTO assay.llm_calls (trace_id) VALUES ('x')")
        store.close()


def _views(store: EmbeddedStore) -> list[str]:
    _, rows = store.query(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine = 'MaterializedView' ORDER BY name",
        {"db": store.database},
    )
    return [name for (name,) in rows]


def test_views_reloaded_after_migrating_keep_their_names_and_feed_their_targets(
    embedded_store: EmbeddedStore,
) -> None:
    """After migrations the views are renamed and back (migrations.reload_views, so the engine
    derives their deduplication tokens as after its next start); a view a crash left under the
    passing name gets its own back at the next start, and every view still fills its target."""
    with own_database(embedded_store, "views", migrate=False) as own:
        assert own.migrate()
        views = _views(own)
        assert "llm_calls_1m_mv" in views
        assert not any(name.endswith(RELOADING_SUFFIX) for name in views)
        own.command(
            f"RENAME TABLE {own.database}.llm_calls_1m_mv "
            f"TO {own.database}.llm_calls_1m_mv{RELOADING_SUFFIX}"
        )  # a crash between the two renames
        assert own.migrate() == []
        assert _views(own) == views
        names = column_names(LlmCallRow)[:10]
        call = [[time.time_ns()], ["t"], ["s"], [""], ["svc"], ["chat"], ["openai"]] + [["m"]] * 3
        own.insert("llm_calls", call, names, dedup_token="views")
        _, rows = own.query(f"SELECT sum(calls) FROM {own.database}.llm_calls_1m")
        assert rows == [(1,)]


def test_a_view_that_cannot_be_renamed_does_not_stop_a_start(
    embedded_store: EmbeddedStore,
) -> None:
    """Another collector starting at the same moment may be renaming a view: a rename that fails
    is a warning, and the view keeps working under its name."""
    with own_database(embedded_store, "views", migrate=False) as own:
        own.migrate()
        # the passing name taken, so the first rename of this view fails
        own.command(
            f"CREATE TABLE {own.database}.llm_calls_1m_mv{RELOADING_SUFFIX} (x UInt8) "
            "ENGINE = Memory"
        )
        reload_views(own._client, own.database)
        assert "llm_calls_1m_mv" in _views(own)
