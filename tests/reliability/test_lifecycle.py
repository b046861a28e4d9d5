"""One collector's whole life on one folder (issue #14): six lives in a row, each ended another
way, spans sent over OTLP in every one, and at the end every acknowledged span stored exactly
once, every online score beside its call, and the counters saying what happened.

The lives, on the embedded store starting from a folder Assay 0.1.0 left (an upgrade, with
acknowledged calls still in its spool), or on a ClickHouse server where Docker runs:
1. upgrade, then SIGTERM        2. Ctrl-C (SIGINT)          3. SIGKILL mid-stream
4. a store outage, ridden out   5. a full spool, SIGKILL    6. changed settings, SIGTERM
A request that was not acknowledged (killed, refused) is sent again in the next life, as an
OpenTelemetry SDK would. Prints the table of the lives.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.collector.spool import FORMAT_VERSION, SEGMENT_HEADER, SEGMENT_MAGIC, encode_record
from assay.collector.store.migrations import load_migrations
from tests.conftest import RunningCollector, start_collector
from tests.docker_engine import require_docker
from tests.reliability.traffic import Batch, SendLog, send

pytestmark = pytest.mark.integration

PREVIOUS_RELEASE = Path(__file__).parent / "data" / "assay-0.1.0-folder.tar.gz"
# What build_previous_release.py put in that folder.
V0_STORED, V0_SPOOLED, V0_LOGS = 30, 20, 5
RULES = "evaluation:\n  rules:\n    - evaluators: [{latency_budget: {ms: 3000}}]\n"
CHANGED_RULES = (
    "evaluation:\n  rules:\n"
    "    - evaluators: [{latency_budget: {ms: 3000}}, {length: {max_chars: 5000}}]\n"
)


@dataclass
class Life:
    number: int
    ending: str
    batch: Batch
    log: SendLog = field(default_factory=SendLog)
    sent: int = 0  # requests sent during this life
    acknowledged: int = 0  # of them, acknowledged by this life's collector
    resent: set[int] = field(default_factory=set)  # requests sent again in a later life
    health: dict[str, Any] = field(default_factory=dict)  # the last one seen in this life

    @property
    def spans(self) -> int:
        return self.batch.spans

    def unacknowledged(self) -> list[int]:
        return [i for i in range(self.batch.requests) if i not in self.log.acked]


@dataclass
class Store:
    """Where the lives store: the embedded folder (`storage`) or a server (`url`)."""

    storage: Path
    url: str | None = None

    def arguments(self) -> tuple[str, ...]:
        return ("--clickhouse-url", self.url) if self.url else ()


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.docker)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "embedded":
        with tarfile.open(PREVIOUS_RELEASE) as tar:
            tar.extractall(tmp_path, filter="tar")
        yield Store(tmp_path / "assay-data")
        return
    require_docker("the lifecycle suite on a ClickHouse server")
    from testcontainers.clickhouse import ClickHouseContainer

    with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as container:
        yield Store(
            tmp_path / "assay-data",
            f"http://{container.username}:{container.password}"
            f"@{container.get_container_host_ip()}:{container.get_exposed_port(8123)}/assay",
        )


class Lives:
    """Starts the collector's lives on one store and keeps what each sent and got back."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store = store
        self.tmp_path = tmp_path
        self.outage = tmp_path / "store-down"  # the store fails while this file exists
        self.config = tmp_path / "assay.yaml"
        self.config.write_text(RULES)
        self.lives: list[Life] = []
        self.collector: RunningCollector | None = None

    def start(self, ending: str, requests: int, spans: int, **env: str) -> Life:
        self.close_life()
        life = Life(
            len(self.lives) + 1, ending, Batch(f"life-{len(self.lives) + 1}", requests, spans)
        )
        self.lives.append(life)
        self.collector = start_collector(
            self.store.storage,
            self.tmp_path / f"life-{life.number}.log",
            "--config",
            str(self.config),
            *self.store.arguments(),
            entry=("-m", "tests.reliability.outage_collector", str(self.outage)),
            ASSAY_SPOOL_DIR=str(self.store.storage / "spool"),  # the default, for embedded
            **env,
        )
        return life

    def close_life(self) -> None:
        """Note what the life that just ended acknowledged (resends in later lives apart)."""
        if self.lives:
            life = self.lives[-1]
            life.acknowledged = len(life.log.acked)

    @property
    def running(self) -> RunningCollector:
        assert self.collector is not None
        return self.collector

    def send(self, life: Life, indices: list[int] | None = None, **options: Any) -> None:
        """Send `life`'s requests (all by default) to the running collector."""
        indices = list(range(life.batch.requests)) if indices is None else indices
        if life is self.lives[-1]:
            life.sent += len(indices)
        send(f"127.0.0.1:{self.running.grpc_port}", life.batch, indices, life.log, **options)

    def resend_unacknowledged(self) -> None:
        """What earlier lives did not get acknowledged, sent again as an SDK would."""
        for life in self.lives[:-1]:
            missing = life.unacknowledged()
            if missing:
                life.resent.update(missing)
                self.send(life, missing, retry_refused=True)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.running.http_url}/api/health", timeout=10).json()
        self.lives[-1].health = body
        return body

    def wait_drained(self, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health["spool"]["bytes"] == 0 and health["status"] == "ok":
                return health
            time.sleep(0.2)
        raise AssertionError(f"the spool never drained: {health}\n{self.running.log()}")

    def end(self, how: signal.Signals) -> int:
        process = self.running.process
        process.send_signal(how)
        return process.wait(60)

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.running.query(sql)


def test_six_lives_on_one_folder_lose_and_duplicate_nothing(store: Store, tmp_path: Path) -> None:
    lives = Lives(store, tmp_path)
    upgraded = store.url is None

    # 1. The folder 0.1.0 left: migrated, its rows kept, its spool (format 1) replayed.
    first = lives.start(
        "upgrade from 0.1.0, SIGTERM" if upgraded else "SIGTERM", requests=30, spans=10
    )
    if upgraded:
        lives.wait_drained()
        rows = lives.query(
            "SELECT service_name AS service, count() AS n FROM llm_calls FINAL "
            "WHERE service_name LIKE 'v0-%' GROUP BY service ORDER BY service"
        )
        assert rows == [
            {"service": "v0-spooled", "n": V0_SPOOLED},  # 0.1.0 itself would lose these
            {"service": "v0-stored", "n": V0_STORED},
        ]
        assert lives.query("SELECT max(version) AS v FROM schema_migrations")[0]["v"] >= 7
    lives.send(first)
    lives.health()
    assert lives.end(signal.SIGTERM) == 0

    # 2. Ctrl-C: the next life numbers its segments from 1 again, as in the bug.
    second = lives.start("Ctrl-C (SIGINT)", requests=30, spans=10)
    lives.send(second)
    lives.health()
    assert lives.end(signal.SIGINT) == 0

    # 3. kill -9 while requests stream in and the writer writes.
    third = lives.start("SIGKILL mid-stream", requests=300, spans=5)
    killed = threading.Event()

    def kill_at_100(_: int) -> None:
        if len(third.log.acked) == 100 and not killed.is_set():
            lives.health()
            os.kill(lives.running.process.pid, signal.SIGKILL)
            killed.set()

    lives.send(third, timeout=5, on_ack=kill_at_100)
    assert killed.is_set() and lives.running.process.wait(60) == -signal.SIGKILL

    # 4. The store goes down: requests are spooled, not lost; it comes back: drained.
    fourth = lives.start("store outage, then SIGTERM", requests=40, spans=10)
    lives.resend_unacknowledged()
    lives.outage.touch()
    lives.send(fourth)
    assert len(fourth.log.acked) == fourth.batch.requests  # acknowledged while it is down
    time.sleep(1.0)
    down = lives.health()
    assert down["status"] == "degraded" and down["spool"]["bytes"] > 0
    assert down["pipeline"]["write_failures"] > 0
    lives.outage.unlink()
    lives.wait_drained()
    assert lives.end(signal.SIGTERM) == 0

    # 5. The store down again and a small spool: it fills, requests are refused, and the
    #    collector is killed with the spool full.
    fifth = lives.start(
        "full spool, then SIGKILL", requests=60, spans=5, ASSAY_MAX_SPOOL_BYTES="150000"
    )
    lives.outage.touch()
    lives.send(fifth)
    full = lives.health()
    assert fifth.log.refused["RESOURCE_EXHAUSTED"] > 0 and fifth.log.acked
    assert full["status"] == "unhealthy" and full["pipeline"]["refused"]["overloaded"] > 0
    assert lives.end(signal.SIGKILL) == -signal.SIGKILL
    lives.outage.unlink()

    # 6. Other settings (segments, flushing, fsync, evaluation rules): the spool of the
    #    killed life replays, the refused requests come again, and everything is checked.
    lives.config.write_text(CHANGED_RULES)
    sixth = lives.start(
        "changed settings, SIGTERM",
        requests=30,
        spans=10,
        ASSAY_SEGMENT_BYTES="65536",
        ASSAY_FLUSH_INTERVAL="0.3",
        ASSAY_FSYNC="interval",
    )
    lives.resend_unacknowledged()
    lives.send(sixth)
    for life in lives.lives:
        assert not life.unacknowledged(), f"life {life.number} left requests unacknowledged"
    lives.wait_drained()
    lives.close_life()
    table = _check_everything_stored_once(lives, upgraded)
    lives.health()
    assert lives.end(signal.SIGTERM) == 0
    print("\n" + table)
    # The store dropped rows as duplicates only when replaying what a kill -9 left while it was
    # up (life 4 replays life 3's): never after a clean stop, an outage or an upgrade.
    for life in lives.lives:
        if life.number != 4:
            assert life.health["pipeline"]["deduplicated"] == {}, (life.number, life.health)


def _check_everything_stored_once(lives: Lives, upgraded: bool) -> str:
    """Every acknowledged span in llm_calls exactly once, no row written twice by the collector
    (otel_traces_trace_id_ts keeps one row per trace and insert, merges or not), the dashboards'
    rollup counting each call once, and every online score beside its call. Returns the table."""
    services = [life.batch.service for life in lives.lives]
    stored = {
        row["service"]: row
        for row in lives.query(
            "SELECT service_name AS service, count() AS calls, uniqExact(span_id) AS spans, "
            "groupArray(span_id) AS ids FROM llm_calls FINAL "
            f"WHERE service_name IN {tuple(services)!r} GROUP BY service"
        )
    }
    inserted = _rows_per_trace(lives, services)
    rollup = {
        row["service"]: row["calls"]
        for row in lives.query(
            "SELECT service_name AS service, sum(calls) AS calls FROM llm_calls_1m "
            f"WHERE service_name IN {tuple(services)!r} GROUP BY service"
        )
    }
    lines = [
        "| life | how it ended | spans sent | acknowledged | resent later | stored | duplicated "
        "| rows the store already had (replays) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for life in lives.lives:
        service = life.batch.service
        acked = {s for i in life.log.acked for s in life.batch.span_ids[i]}
        got = stored.get(service, {"calls": 0, "spans": 0, "ids": []})
        assert set(got["ids"]) == acked, f"life {life.number}: stored spans differ from acked"
        assert got["calls"] == got["spans"] == len(acked)
        # Rows written twice by the collector: of spans the client sent only once.
        once = {
            s
            for i in range(life.batch.requests)
            if i not in life.resent
            for s in life.batch.span_ids[i]
        }
        rows = inserted.get(service, {})
        duplicated = sum(n - 1 for span, n in rows.items() if span in once)
        assert duplicated == 0, f"life {life.number}: {duplicated} rows written twice"
        if not life.resent:  # the dashboards count every call once
            assert rollup.get(service) == len(acked), (life.number, rollup.get(service))
        dropped = life.health.get("pipeline", {}).get("deduplicated", {})
        lines.append(
            f"| {life.number} | {life.ending} | {life.sent * life.spans} "
            f"| {life.acknowledged * life.spans} | {len(life.resent) * life.spans} "
            f"| {got['spans']} | {duplicated} | {dropped or '-'} |"
        )
    orphans = lives.query(
        "SELECT count() AS n FROM scores WHERE source = 'online' "
        "AND span_id NOT IN (SELECT span_id FROM llm_calls)"
    )[0]["n"]
    scored = lives.query(
        "SELECT count() AS n FROM scores FINAL WHERE source = 'online' "
        f"AND span_id IN (SELECT span_id FROM llm_calls WHERE service_name IN {tuple(services)!r})"
    )[0]["n"]
    assert orphans == 0 and scored > 0
    if upgraded:
        kept = lives.query(
            "SELECT (SELECT count() FROM llm_calls FINAL WHERE service_name LIKE 'v0-%') AS calls,"
            " (SELECT count() FROM otel_logs) AS logs,"
            " (SELECT count() FROM scores FINAL WHERE span_id IN"
            "   (SELECT span_id FROM llm_calls WHERE service_name = 'v0-stored')) AS scores"
        )[0]
        assert kept == {"calls": V0_STORED + V0_SPOOLED, "logs": V0_LOGS, "scores": V0_STORED}
    lines.append(f"online scores of these calls: {scored}; scores without their call: {orphans}")
    return "\n".join(lines)


def _rows_per_trace(lives: Lives, services: list[str]) -> dict[str, dict[str, int]]:
    """Per service, how many otel_traces_trace_id_ts rows each span's trace has (one per insert
    of the trace: a plain MergeTree, so merges keep them), keyed by span id."""
    rows = lives.query(
        "SELECT t.ServiceName AS service, t.SpanId AS span, x.n AS n "
        "FROM (SELECT ServiceName, SpanId, TraceId FROM otel_traces FINAL "
        f"WHERE ServiceName IN {tuple(services)!r}) AS t "
        "LEFT JOIN (SELECT TraceId, count() AS n FROM otel_traces_trace_id_ts GROUP BY TraceId)"
        " AS x USING TraceId"
    )
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["service"], {})[row["span"]] = row["n"]
    return out


def test_a_spool_written_by_a_newer_release_stops_the_start_and_is_kept(tmp_path: Path) -> None:
    """Downgrading over a spool this version cannot read: a clear refusal, nothing dropped."""
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    future = SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION + 1, os.urandom(16))
    (spool / "000000000004.seg").write_bytes(future + encode_record("traces", b"not yet read"))
    before = (spool / "000000000004.seg").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "assay.collector", "collector", "--storage", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    message = " ".join(result.stdout.split() + result.stderr.split())
    assert "000000000004.seg" in message and "newer Assay" in message, message
    assert [p.name for p in spool.iterdir()] == ["000000000004.seg"]
    assert (spool / "000000000004.seg").read_bytes() == before


def test_a_collector_killed_while_it_migrates_starts_again_and_keeps_everything(
    tmp_path: Path,
) -> None:
    """kill -9 in the middle of an upgrade's migrations (a migration cut short, a mutation half
    done), at every start that migrates: the next start finishes them, every row of the 0.1.0
    folder is kept once, and its spool is replayed once."""
    with tarfile.open(PREVIOUS_RELEASE) as tar:
        tar.extractall(tmp_path, filter="tar")
    storage = tmp_path / "assay-data"
    killed: list[str] = []  # the last migration each killed start had applied
    # Each start may be killed after its first migration: one start more than there are
    # migrations new to the folder comes up (a loaded machine kills every start that early).
    for start in range(1, len(load_migrations("assay")) + 2):
        log_path = tmp_path / f"start-{start}.log"
        collector = start_collector(storage, log_path, healthy=False)
        applied = _first_migration_or_healthy(collector)
        if applied is None:
            break
        collector.process.send_signal(signal.SIGKILL)
        assert collector.process.wait(60) == -signal.SIGKILL
        killed.append(applied)
    else:
        raise AssertionError(f"the collector never came up after kills during {killed}")
    try:
        assert len(killed) >= 2, killed  # migrations 007 onwards are new to a 0.1.0 folder
        versions = {m.version for m in load_migrations("assay")}
        done = collector.query("SELECT DISTINCT version FROM schema_migrations")
        assert {row["version"] for row in done} == versions
        batch = Batch("after-the-kills", 5, 4)
        log = SendLog()
        send(f"127.0.0.1:{collector.grpc_port}", batch, list(range(batch.requests)), log)
        assert len(log.acked) == batch.requests
        collector.wait_for_rows(
            "SELECT 1 FROM llm_calls WHERE service_name IN ('v0-spooled', 'after-the-kills')",
            V0_SPOOLED + 20,
        )
        counts = collector.query(
            "SELECT service_name AS service, count() AS rows, uniqExact(span_id) AS calls "
            "FROM llm_calls WHERE service_name IN ('v0-spooled', 'v0-stored', 'after-the-kills') "
            "GROUP BY service ORDER BY service"
        )
        assert counts == [
            {"service": "after-the-kills", "rows": 20, "calls": 20},
            {"service": "v0-spooled", "rows": V0_SPOOLED, "calls": V0_SPOOLED},
            {"service": "v0-stored", "rows": V0_STORED, "calls": V0_STORED},
        ]
        kept = collector.query(
            "SELECT (SELECT count() FROM otel_logs) AS logs, (SELECT count() FROM scores FINAL "
            "WHERE span_id IN (SELECT span_id FROM llm_calls WHERE service_name = 'v0-stored'))"
            " AS scores"
        )[0]
        assert kept == {"logs": V0_LOGS, "scores": V0_STORED}
        print(f"\nkilled after applying: {', '.join(killed)}; then started and kept everything")
    finally:
        collector.stop()


def _first_migration_or_healthy(collector: RunningCollector) -> str | None:
    """The name of the first migration this start applied, as soon as its log says so; None
    once the collector answers (nothing was left to migrate)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert collector.process.poll() is None, collector.log()
        applied = re.search(r"applied migration (\S+)", collector.log_path.read_text())
        if applied:
            return applied.group(1)
        try:
            if httpx.get(f"{collector.http_url}/api/health", timeout=1).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"no migration applied and not healthy:\n{collector.log()}")


def test_sigterm_with_a_backlog_stops_in_time_and_the_next_life_stores_the_rest(
    tmp_path: Path,
) -> None:
    """SIGTERM while the writer has more segments to store than the shutdown timeout allows
    (the store was down and just came back): it stores what it can in time, exits cleanly
    (never closing the store under a running insert, which crashed the process), leaves the
    rest in the spool, and the next life stores it, each span once."""
    storage, outage = tmp_path / "data", tmp_path / "store-down"
    first = start_collector(
        storage,
        tmp_path / "life-1.log",
        entry=("-m", "tests.reliability.outage_collector", str(outage)),
        ASSAY_SHUTDOWN_TIMEOUT="0.5",
        ASSAY_FLUSH_INTERVAL="0.01",
        ASSAY_RETRY_MAX="0.1",
    )
    outage.touch()
    batch = Batch("backlog", requests=150, spans=4)
    log = SendLog()
    send(f"127.0.0.1:{first.grpc_port}", batch, list(range(batch.requests)), log)
    assert len(log.acked) == batch.requests
    outage.unlink()
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(60) == 0, first.log()
    assert "left in the spool for the next start" in first.log()

    second = start_collector(storage, tmp_path / "life-2.log")
    try:
        spans = batch.requests * batch.spans
        second.wait_for_rows("SELECT 1 FROM llm_calls WHERE service_name = 'backlog'", spans, 120)
        (stored,) = second.query(
            "SELECT count() AS rows, uniqExact(span_id) AS spans, "
            "(SELECT count() FROM otel_traces_trace_id_ts) AS inserts "
            "FROM llm_calls WHERE service_name = 'backlog'"
        )
        assert stored == {"rows": spans, "spans": spans, "inserts": spans}
    finally:
        second.stop()
