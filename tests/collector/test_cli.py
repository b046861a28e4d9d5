"""The `assay` command as people use it: query, demo, and start-up errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.collector.demo.profiles import AGENT_SERVICE, PROFILES
from tests.conftest import RunningCollector, free_port

ASSAY = [sys.executable, "-m", "assay.collector"]


def assay(
    *args: str, url: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if url:
        env["ASSAY_URL"] = url
    return subprocess.run(
        [*ASSAY, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def test_assay_query_prints_a_table_csv_or_json(collector: RunningCollector) -> None:
    sql = "SELECT number AS n, number * 1.5 AS x, NULL AS nothing FROM system.numbers LIMIT 3"
    table = assay("query", sql, url=collector.http_url)
    assert table.returncode == 0, table.stderr
    assert "┃ n" in table.stdout and "NULL" in table.stdout and "3 row(s)" in table.stderr

    as_csv = assay("query", sql, "--format", "csv", "--url", collector.http_url)
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["n", "x", "nothing"],
        ["0", "0.0", ""],
        ["1", "1.5", ""],
        ["2", "3.0", ""],
    ]

    as_json = assay("query", sql, "--format", "json", url=collector.http_url)
    assert json.loads(as_json.stdout)[1] == {"n": 1, "x": 1.5, "nothing": None}


def test_assay_query_says_why_a_query_is_refused(collector: RunningCollector) -> None:
    result = assay("query", "DELETE FROM assay.llm_calls WHERE 1", url=collector.http_url)
    assert result.returncode == 1
    assert "only read queries" in result.stderr


@pytest.mark.subprocess
def test_messages_stay_one_line_in_a_ci_log() -> None:
    """Outside a terminal (a CI log, a pipe) and without COLUMNS, a message is not folded at
    80 columns."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [*ASSAY, "query", "SELECT 1", "--url", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    (line,) = [x for x in done.stderr.splitlines() if "no collector answers" in x]
    assert len(line) > 80 and "ASSAY_URL at it." in line


@pytest.mark.subprocess
def test_assay_query_without_a_collector_says_how_to_start_one() -> None:
    result = assay("query", "SELECT 1", url=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "no collector answers" in result.stderr and "assay collector" in result.stderr


def test_the_cli_pointed_at_the_grpc_port_says_so(collector: RunningCollector) -> None:
    """ASSAY_URL on 4317 instead of 4318 (the first port a user meets): something answers, in
    HTTP/2; the message names the likely mistake, not only 'illegal request line'."""
    grpc = f"http://127.0.0.1:{collector.grpc_port}"
    for command in (("query", "SELECT 1"), ("experiments", "list")):
        result = assay(*command, url=grpc)
        said = " ".join(result.stderr.split())
        assert result.returncode == 2, said
        assert f"no collector answers at {grpc}" in said
        assert "the OTLP gRPC port (4317)? The API is on the collector's HTTP port" in said


def test_the_demo_fills_every_view(collector: RunningCollector) -> None:
    result = assay("demo", "--endpoint", f"127.0.0.1:{collector.grpc_port}", "--calls", "60")
    assert result.returncode == 0, result.stderr
    # The session's collector may also hold another test's demo agent (tagged demo, under a
    # service name of its own): read the services this demo sends.
    services = sorted([*PROFILES, AGENT_SERVICE])
    rows = collector.wait_for_rows(
        "SELECT service_name, count() AS calls, countIf(status = 'error') AS errors, "
        "countIf(streamed) AS streams, countIf(operation = 'embeddings') AS embeddings, "
        "countIf(cost_usd IS NULL AND status = 'ok') AS unpriced, uniqExact(user_id) AS users, "
        "uniqExact(prompt_version) AS versions, uniqExact(model) AS models "
        "FROM assay.llm_calls WHERE has(tags, 'demo') AND service_name IN "
        f"({', '.join(repr(s) for s in services)}) GROUP BY service_name ORDER BY service_name",
        len(services),
    )
    assert [r["service_name"] for r in rows] == services
    rows = [r for r in rows if r["service_name"] in PROFILES]  # the agent has its own tests
    assert sum(r["calls"] for r in rows) >= 60
    assert all(r["users"] > 1 and r["versions"] > 1 and r["models"] > 1 for r in rows)
    assert sum(r["streams"] for r in rows) > 0 and sum(r["errors"] for r in rows) > 0
    assert sum(r["embeddings"] for r in rows) > 0 and sum(r["unpriced"] for r in rows) > 0
    # Errors look like production's: a real model refused with a 429 or a 500.
    errors = collector.query(
        "SELECT DISTINCT request_model AS model, error_type FROM assay.llm_calls "
        "WHERE has(tags, 'demo') AND status = 'error' AND service_name IN "
        f"({', '.join(repr(s) for s in PROFILES)})"
    )
    models = {m for profile in PROFILES.values() for m in profile["models"]}
    assert errors and {e["model"] for e in errors} <= models
    assert {e["error_type"] for e in errors} <= {"RateLimitError", "InternalServerError"}


def start_failing(storage: Path, grpc_port: int | None = None) -> str:
    """`assay collector` on `storage` that must not start: what it says on stderr."""
    grpc_port = grpc_port or free_port()
    result = assay(
        "collector",
        "--storage",
        str(storage),
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(free_port()),
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_a_second_collector_on_the_same_folder_is_refused_clearly(
    collector: RunningCollector, tmp_path: Path
) -> None:
    assert "cannot open embedded storage" in start_failing(collector.storage)


@pytest.mark.subprocess
def test_a_storage_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    """`--storage` naming a file (a typo, a path swapped with a config file's): the collector
    says so ('[Errno 17] File exists' said nothing of the storage) and leaves the file alone."""
    a_file = tmp_path / "assay.yaml"
    a_file.write_text("collector: {}\n")
    message = " ".join(start_failing(a_file).split())
    assert f"the storage {a_file} is a file, not a folder" in message
    assert a_file.read_text() == "collector: {}\n"


def test_a_busy_port_is_a_clear_error(collector: RunningCollector, tmp_path: Path) -> None:
    assert "cannot listen" in start_failing(tmp_path / "d", collector.grpc_port)


@pytest.mark.subprocess
def test_a_schema_that_cannot_migrate_is_a_clear_error(tmp_path: Path) -> None:
    """What the engine refuses while migrating (a full disk, a table in the way) stops the start
    with one line saying so, not a traceback."""
    storage = tmp_path / "d"
    in_the_way = (  # a schema_migrations table the migrations cannot read
        "import clickhouse_connect, sys\n"
        "client = clickhouse_connect.get_client(dsn='chdb://' + sys.argv[1])\n"
        "client.command('CREATE DATABASE assay')\n"
        "client.command('CREATE TABLE assay.schema_migrations (x String) ENGINE = Log')\n"
    )
    subprocess.run([sys.executable, "-c", in_the_way, str(storage)], check=True, timeout=60)
    assert "could not start: migrating the schema failed" in start_failing(storage)


@pytest.mark.subprocess
def test_a_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "assay.yaml"
    config.write_text("collector:\n  flush_interval: -1\n")
    result = assay("collector", "--config", str(config), "--storage", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "flush_interval" in result.stderr


@pytest.mark.subprocess
def test_a_setting_no_version_has_is_a_usage_error(tmp_path: Path) -> None:
    """A key of `collector:` no setting has (a typo, a setting another version of Assay renamed
    or dropped) stops the start naming it; it was ignored, and the collector ran without it."""
    config = tmp_path / "assay.yaml"
    config.write_text("collector:\n  flush_intervall: 2\n  spool: disk\n")
    result = assay("collector", "--config", str(config), "--storage", str(tmp_path / "d"))
    assert result.returncode == 2, result.stderr
    assert "no setting flush_intervall under collector:" in " ".join(result.stderr.split())


def test_the_demo_names_a_collector_on_other_ports_in_the_commands_it_suggests() -> None:
    """`make run` with ASSAY_HTTP_PORT/ASSAY_GRPC_PORT set: the suggested `assay query` and the
    instrumented service must find that collector, not the default ports."""
    from assay.collector.cli import next_steps

    default = next_steps("http://127.0.0.1:4318", "http://127.0.0.1:4317")
    assert "ASSAY_URL" not in default and "OTEL_EXPORTER_OTLP_ENDPOINT" not in default
    assert '    .venv/bin/assay query "SELECT' in default
    assert "without an API key: .venv/bin/assay fake-provider" in default
    moved = next_steps("http://127.0.0.1:14018", "http://127.0.0.1:14017")
    assert 'ASSAY_URL=http://127.0.0.1:14018 .venv/bin/assay query "SELECT' in moved
    assert "run it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14017" in moved
    tls = next_steps("https://127.0.0.1:4318", "https://127.0.0.1:4317")
    assert "ASSAY_URL=https://127.0.0.1:4318 " in tls
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:4317" in tls


def start_with_demo(storage: Path) -> tuple[subprocess.Popen[str], str]:
    """`assay collector --demo` (as `make run` starts it) up to its "Assay is running." lines."""
    ports = ["--grpc-port", str(free_port()), "--http-port", str(free_port())]
    process = subprocess.Popen(
        [*ASSAY, "collector", "--storage", str(storage), "--demo", "--demo-calls", "12", *ports],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stderr is not None
    said = []
    for line in process.stderr:  # ends when the process does: no line is waited for forever
        said.append(line)
        if "Assay is running." in line or "demo traffic failed" in line:
            break
    said.append(process.stderr.readline())  # the next line too, should the message wrap
    return process, "".join(said)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.communicate(timeout=60)


@pytest.mark.subprocess
def test_make_run_sends_demo_traffic_to_an_empty_store_only(tmp_path: Path) -> None:
    first, said = start_with_demo(tmp_path / "store")
    try:
        assert "Assay is running. Demo traffic sent" in said, said
    finally:
        stop(first)
    again, said = start_with_demo(tmp_path / "store")
    try:
        assert "Assay is running. The store holds" in said, said
        assert "no demo traffic sent" in said and "make demo" in said, said
    finally:
        stop(again)
