"""Which orders of import, client, method and `instrument()` make spans, and what Assay says.

Each case runs in a fresh interpreter (`tests/apps/taken_before_app.py`; pytest has imported
every client before any test, which hides the orders). A class's method is patched in place, so
a client built before `instrument()` is traced; a method taken before it (bound, built into a
`with_raw_response`, taken off the class) keeps the unpatched function: its calls make no span,
and `instrument()` says so, naming the method, in a warning. No other order warns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from tests.fakes.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.subprocess

# order → whether its call is traced
ORDERS = {
    "instrument,import,build,bind": True,
    "import,instrument,build,bind": True,
    "import,build,instrument,bind": True,
    "import,build,instrument,raw": True,
    "import,build,bind,instrument": False,
    "import,build,raw,instrument": False,
    "import,class,build,instrument": False,
}
METHODS = {"openai": "Completions.create", "anthropic": "Messages.create"}


@pytest.fixture(scope="module")
def base_urls() -> Iterator[dict[str, str]]:
    with FakeOpenAI() as openai_fake, FakeAnthropic() as anthropic_fake:
        yield {"openai": openai_fake.base_url, "anthropic": anthropic_fake.base_url}


# Every order with the sync clients; the async clients are patched alike (two orders each).
CASES = [
    pytest.param(library, mode, order, traced, id=f"{library}-{mode}-{order}")
    for library in ("openai", "anthropic")
    for mode in ("sync", "async")
    for order, traced in ORDERS.items()
    if mode == "sync" or order in ("import,build,instrument,bind", "import,build,bind,instrument")
]


@pytest.mark.parametrize(("library", "mode", "order", "traced"), CASES)
def test_a_method_taken_before_instrument_is_named_in_a_warning(
    library: str, mode: str, order: str, traced: bool, base_urls: dict[str, str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.taken_before_app", library, mode, order],
        env={**_environment(), "BASE_URL": base_urls[library]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert len(report["spans"]) == (1 if traced else 0), report
    taken = [w for w in report["warnings"] if "taken before instrument()" in w]
    if traced:
        assert not taken, taken
    else:
        method = ("Async" if mode == "async" else "") + METHODS[library]
        assert len(taken) == 1 and f"({method}: 1" in taken[0], taken


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))}
