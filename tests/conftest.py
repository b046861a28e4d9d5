"""Shared fixtures: a real collector process on free loopback ports, on embedded storage.

Imports nothing heavy at module level (no chDB, no collector settings): the pure tests of the
normalizer and the instrumentation load this file too. The tiers are wired here (tests/tiers.py).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests import tiers

if TYPE_CHECKING:
    from assay.collector.store.embedded import EmbeddedStore


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast", action="store_true", help=f"run the pure tier only: {tiers.FAST} (make test-fast)"
    )


def pytest_configure(config: pytest.Config) -> None:
    _require_every_file_installed()
    _load_system_certificates_lazily()
    for name, meaning in tiers.TIERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    sys.addaudithook(tiers.refuse_child_processes)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("fast") and tiers.module_in_a_tier(collection_path):
        return True
    return None  # pytest's own rules decide


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers.mark_by_fixtures(items)
    if config.getoption("fast"):
        slow = tiers.in_a_tier(items)
        if slow:
            config.hook.pytest_deselected(items=slow)
            left = set(items) - set(slow)
            items[:] = [item for item in items if item in left]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    tiers.running(item)
    try:
        return (yield)
    finally:
        tiers.running(None)


_PACKAGES = {
    "instrumentation": "assay.instrumentation",
    "evaluators": "assay.evaluators",
    "collector": "assay.collector",
}


def _require_every_file_installed() -> None:
    """`make install`'s strict editable install links each file into build/: a module added
    since is not importable until it runs again. Say that, instead of a ModuleNotFoundError."""
    root = Path(__file__).resolve().parent.parent
    for folder, package in _PACKAGES.items():
        spec = importlib.util.find_spec(package)
        installed = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else None
        if installed is None or installed.resolve() == (root / folder).resolve():
            continue  # not installed strictly: the folder itself is the package
        source = {p.relative_to(root / folder) for p in (root / folder).rglob("*.py")}
        missing = sorted(str(Path(folder, p)) for p in source if not (installed / p).exists())
        if missing:
            raise pytest.UsageError(
                f"not in the editable install yet: {', '.join(missing[:5])}; run `make install`"
            )


def _load_system_certificates_lazily() -> None:
    """Point httpx at a hashed certificate folder (SSL_CERT_DIR), which OpenSSL reads one
    certificate at a time when a handshake needs one. Otherwise every openai/anthropic client a
    test builds parses a whole CA bundle first (75-140 ms; over a thousand clients per run),
    though the tests talk plain HTTP on loopback or name their own certificate. The trust store
    stays the same: a bundle in SSL_CERT_FILE gives way only to the hashed folder it was built
    from (Debian's /etc/ssl/certs/ca-certificates.crt sits in /etc/ssl/certs)."""
    bundle = os.environ.get("SSL_CERT_FILE")
    if bundle:
        folder = Path(bundle).resolve().parent
    elif "SSL_CERT_DIR" in os.environ:
        return
    else:
        folder = Path(ssl.get_default_verify_paths().openssl_capath)
    if folder.is_dir() and any(folder.glob("[0-9a-f]" * 8 + ".[0-9]")):
        os.environ.pop("SSL_CERT_FILE", None)
        os.environ["SSL_CERT_DIR"] = str(folder)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningCollector:
    process: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    storage: Path
    log_path: Path
    api_token: str | None = None  # sent by `query` when the API wants one
    ca_file: Path | None = None  # the self-signed certificate when the collector serves TLS

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should trust: the collector's own certificate when it serves TLS."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    @property
    def http_url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.grpc_port}"

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query through the collector's API."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        response = httpx.post(
            f"{self.http_url}/api/query",
            json={"sql": sql, **params},
            headers=headers,
            timeout=60,
            verify=self.verify,
        )
        assert response.status_code == 200, response.text
        return list(response.json()["rows"])

    def wait_for_rows(self, sql: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll until the query returns at least `count` rows (the writer flushes in batches)."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.query(sql)
            if len(rows) >= count:
                return rows
            time.sleep(0.1)
        raise AssertionError(f"wanted {count} rows, got {len(rows)} from: {sql}\n{self.log()}")

    def wait_until_stored(self, timeout: float = 60.0) -> None:
        """Poll /api/health until the spool is empty: every span the collector acknowledged is
        in the store (a count of rows may be reached while more of them are still spooled)."""
        deadline = time.monotonic() + timeout
        spool: dict[str, Any] = {}
        while time.monotonic() < deadline:
            spool = httpx.get(f"{self.http_url}/api/health", verify=self.verify).json()["spool"]
            if spool["bytes"] == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the spool still holds {spool} after {timeout} s\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_collector(
    storage: Path,
    log_path: Path,
    *extra: str,
    entry: tuple[str, ...] = ("-m", "assay.collector"),
    healthy: bool = True,
    **env: str,
) -> RunningCollector:
    """`assay collector` on free ports, once healthy (with `healthy=False`, as soon as the process
    runs). `entry` runs the CLI through a test's own entry point instead
    (tests/reliability/outage_collector.py)."""
    tiers.require_tier("integration", "starts a collector process")
    grpc_port, http_port = free_port(), free_port()
    environment = {**os.environ, "ASSAY_FLUSH_INTERVAL": "0.1", **env}
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            *entry,
            "collector",
            "--storage",
            str(storage),
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            *extra,
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    collector = RunningCollector(process, grpc_port, http_port, storage, log_path)
    collector.api_token = env.get("ASSAY_API_TOKENS", "").split(",")[0] or None
    collector.ca_file = Path(env["ASSAY_TLS_CERT"]) if env.get("ASSAY_TLS_CERT") else None
    if not healthy:
        return collector
    verify = collector.verify
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"collector exited with {process.returncode}:\n{collector.log()}")
        try:
            health = httpx.get(f"{collector.http_url}/api/health", timeout=1, verify=verify)
            if health.status_code == 200:
                return collector
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    collector.stop()
    raise RuntimeError(f"collector did not become healthy:\n{collector.log()}")


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """One collector for the session; tests tell their data apart by unique service names."""
    base = tmp_path_factory.mktemp("collector")
    running = start_collector(base / "data", base / "collector.log")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def embedded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """The in-process embedded store (chDB allows one folder per process, so one per session)."""
    from assay.collector.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path_factory.mktemp("embedded"), "assay")
    store.migrate()
    yield store
    store.close()


@contextmanager
def own_database(
    embedded_store: EmbeddedStore, prefix: str, migrate: bool = True
) -> Iterator[EmbeddedStore]:
    """A database of its own on the session's engine (chDB takes one folder per process), for a
    test whose data other tests' must not touch or see; migrated unless asked not to, dropped
    after."""
    own = type(embedded_store)(embedded_store.path, f"{prefix}_{uuid.uuid4().hex[:8]}")
    if migrate:
        own.migrate()
    try:
        yield own
    finally:
        own.command(f"DROP DATABASE IF EXISTS {own.database}")
        own.close()


def migrate_before(own: EmbeddedStore, version: int) -> None:
    """Bring `own` (made with `migrate=False`) to the schema of an Assay before migration
    `version`: the migrations before it applied and recorded, as that Assay left the store."""
    from assay.collector.store.migrations import load_migrations, preamble

    db = own.database
    for statement in preamble(db):
        own.command(statement)
    for migration in load_migrations(db):
        if migration.version >= version:
            continue
        for statement in migration.statements:
            own.command(statement)
        own.command(
            f"INSERT INTO {db}.schema_migrations (version, name) "
            f"VALUES ({migration.version}, '{migration.name}')"
        )
