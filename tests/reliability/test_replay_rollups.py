"""A segment the first run stored, then replayed after a crash, counts once on the dashboards.

The first start of a collector creates the schema and writes in the same process; a crash
between storing a segment and releasing it from the spool replays it at the next start. Each
run here is a process of its own, as collectors are: the replay must leave every rollup where
the first run put it (it counted every replayed call twice before the views were reloaded after
the migrations: a view altered in the running engine derives its target's deduplication tokens
otherwise than after the engine's next start). On a ClickHouse server the engine is the server:
there the replay comes after the server restarted."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from assay.collector.spool import DiskSpool
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.docker_engine import require_docker
from tests.reliability.replay_writer import CALL_COUNTS, run_in_a_process, store_spool

pytestmark = pytest.mark.integration

CALLS = 40


def _spool_left_by_a_crash(tmp_path: Path) -> None:
    """`spool` holds one segment of LLM calls; `left-by-the-crash` the same, as a crash between
    storing it and releasing it leaves it."""
    spool = DiskSpool(tmp_path / "spool", max_bytes=10**8, max_age=60)
    spans = [
        make_span(
            attrs={
                sc.REQUEST_MODEL: "gpt-4o",
                sc.USAGE_INPUT_TOKENS: 10,
                sc.USAGE_OUTPUT_TOKENS: 5,
                sc.USER_ID: f"user-{i % 3}",
                sc.SESSION_ID: f"session-{i % 4}",
            }
        )
        for i in range(CALLS)
    ]
    spool.append("traces", make_request("replayed", *spans).SerializeToString())
    spool.close()
    # The spool as the crash left it: the segment stored by the first run, not yet released.
    shutil.copytree(tmp_path / "spool", tmp_path / "left-by-the-crash")


def test_a_segment_replayed_after_the_first_run_counts_once_in_every_rollup(
    tmp_path: Path,
) -> None:
    _spool_left_by_a_crash(tmp_path)
    first = run_in_a_process(
        tmp_path / "data", tmp_path / "spool"
    )  # creates the schema, then writes
    replay = run_in_a_process(tmp_path / "data", tmp_path / "left-by-the-crash")

    assert first["counts"] == dict.fromkeys(CALL_COUNTS, CALLS)
    assert replay["deduplicated"] == {
        "otel_traces": CALLS,
        "llm_calls": CALLS,
        "trace_spans": CALLS,
    }
    assert replay["counts"] == first["counts"]


@pytest.mark.docker
def test_on_a_server_a_segment_replayed_after_a_restart_counts_once_in_every_rollup(
    tmp_path: Path,
) -> None:
    """The first run migrates a new server and stores the segment; the server restarts (a
    machine's reboot, an upgrade) and the collector replays it: every rollup as before."""
    require_docker("the replay on a ClickHouse server")
    from testcontainers.clickhouse import ClickHouseContainer

    from assay.collector.store.server import ServerStore

    _spool_left_by_a_crash(tmp_path)
    with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as container:

        def url() -> str:
            return (
                f"http://{container.username}:{container.password}"
                f"@{container.get_container_host_ip()}:{container.get_exposed_port(8123)}/assay"
            )

        first = ServerStore(url())
        assert first.migrate()
        counted = store_spool(first, tmp_path / "spool")
        first.close()
        container.get_wrapped_container().restart()
        replay = None
        for _ in range(60):  # until the server answers again
            try:
                replay = ServerStore(url(), connect_timeout=1)
                break
            except Exception:
                time.sleep(1)
        assert replay is not None
        assert replay.migrate() == []
        assert store_spool(replay, tmp_path / "left-by-the-crash") == counted
        assert counted == dict.fromkeys(CALL_COUNTS, CALLS)
        replay.close()
