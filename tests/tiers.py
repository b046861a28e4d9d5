"""The test tiers: which marks exist, which fixtures imply one, and the check that they are used.

`make test-fast` deselects every tier named here; `make test` runs them all. A test lands in a
tier by an explicit mark (`pytestmark = pytest.mark.integration`) or, for the shared fixtures,
by using one: the session `collector` makes a test `integration`, the `browser` (and `page`)
makes it `browser`, the session `embedded_store` makes it `store`. A test outside every tier that
starts a child process, a collector or a Docker container fails, so the fast tier cannot slowly
fill up with start-ups again.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

# name → what puts a test in the tier (registered with pytest by the root conftest)
TIERS: dict[str, str] = {
    "integration": "starts a collector (a process, or served in-process on loopback)",
    "browser": "drives headless Chromium through Playwright",
    "peers": "builds or runs the peer instrumentations' venvs",
    "docker": "needs a Docker engine (ClickHouse server, Grafana, compose); skips without",
    "notebook": "executes a Jupyter notebook in a real kernel",
    "subprocess": "runs a child process (the process-wide SDK set-up, the CLI, the fuzzer)",
    "store": "opens the embedded ClickHouse engine (chDB) in this process",
}
FAST = " and ".join(f"not {name}" for name in TIERS)  # the `-m` expression of `--fast`

# A test that uses one of these fixtures (directly or through another fixture) is in the tier.
FIXTURE_TIERS: dict[str, str] = {
    "collector": "integration",
    "browser": "browser",
    "embedded_store": "store",
}

# A module's own one-line `pytestmark = ...`, and the marks it names.
_MODULE_MARK = re.compile(r"^pytestmark = (.+)$", re.MULTILINE)
_MARK_NAME = re.compile(r"\bpytest\.mark\.(\w+)")

_running: list[pytest.Item] = []
_VENV_BIN = Path(sys.executable).parent


def mark_by_fixtures(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            tier = FIXTURE_TIERS.get(fixture)
            if tier and item.get_closest_marker(tier) is None:
                item.add_marker(tier)


def module_in_a_tier(path: Path) -> bool:
    """Whether the test module at `path` marks all of its tests with a tier in a one-line
    `pytestmark`: `--fast` then skips importing it (its imports cost each worker CPU seconds)
    rather than collecting tests only to deselect them all."""
    if not path.name.startswith("test_") or path.suffix != ".py":
        return False
    found = _MODULE_MARK.search(path.read_text(encoding="utf-8"))
    return found is not None and any(name in TIERS for name in _MARK_NAME.findall(found[1]))


def _tiered(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in TIERS)


def in_a_tier(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if _tiered(item)]


def running(item: pytest.Item | None) -> None:
    """Remember the test being run (set around each test's setup, call and teardown)."""
    _running.clear()
    if item is not None:
        _running.append(item)


def require_tier(tier: str, what: str) -> None:
    """Fail unless the running test carries `tier`: slow parts must stay out of the fast tier."""
    if _running and _running[0].get_closest_marker(tier) is None:
        pytest.fail(
            f"{_running[0].nodeid} {what}: mark it `@pytest.mark.{tier}` (see tests/tiers.py)",
            pytrace=False,
        )


def refuse_child_processes(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook (sys.addaudithook): a test outside every tier may not start a Python of this
    venv (the interpreter, `assay`, `opentelemetry-instrument`); a library's own `uname` may run."""
    if event != "subprocess.Popen" or not _running or _tiered(_running[0]):
        return
    executable, argv = args[0], args[1]
    program = executable or (argv if isinstance(argv, (str, bytes)) else argv[0])
    if Path(os.fsdecode(program)).parent == _VENV_BIN:
        pytest.fail(
            f"{_running[0].nodeid} runs {program!r}: mark it `@pytest.mark.subprocess` "
            "(or the tier of what it starts; see tests/tiers.py)",
            pytrace=False,
        )
