"""`--fast` skips importing a test module whose one-line `pytestmark` names a tier, and a lazily
imported library (tests/lazy.py) waits for the first test that uses it, and collecting instruments
nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import tiers
from tests.lazy import lazy_import


@pytest.mark.parametrize(
    ("name", "text", "skipped"),
    [
        ("test_a.py", "pytestmark = pytest.mark.integration\n", True),
        ("test_a.py", "pytestmark = [pytest.mark.peers, pytest.mark.timeout(900)]\n", True),
        ("test_a.py", 'pytestmark = pytest.mark.filterwarnings("ignore")\n', False),
        ("test_a.py", "def test_x() -> None:\n    pytestmark = 1\n", False),
        ("test_a.py", "# pytest.mark.integration on one test only\n", False),
        ("helpers.py", "pytestmark = pytest.mark.integration\n", False),
    ],
)
def test_a_module_in_a_tier(tmp_path: Path, name: str, text: str, skipped: bool) -> None:
    module = tmp_path / name
    module.write_text(f"import pytest\n\n{text}")

    assert tiers.module_in_a_tier(module) is skipped


def test_the_notebook_module_is_skipped_and_the_pure_ones_are_not() -> None:
    root = Path(__file__).parent
    assert tiers.module_in_a_tier(root / "test_quickstart_notebook.py")
    assert not tiers.module_in_a_tier(root / "instrumentation" / "test_never_break.py")
    assert not tiers.module_in_a_tier(Path(__file__))


def test_a_lazy_module_is_imported_on_first_use_not_by_collection_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"lazy_probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = lazy_import(name)
    # What pytest asks of every module global while it collects (tests/lazy.py)
    for probe in ("__test__", "_fixture_function_marker", "__wrapped__", "_mock_methods"):
        assert getattr(module, probe, None) is None
    assert name not in sys.modules

    assert module.VALUE == 42
    assert sys.modules[name].VALUE == 42
    with pytest.raises(TypeError, match=f"monkeypatch.setattr\\('{name}.VALUE'"):
        module.VALUE = 1
    with pytest.raises(pytest.skip.Exception, match="is not installed"):
        lazy_import(f"{name}_missing", skip_without=True)


@pytest.mark.subprocess
def test_collecting_the_suite_instruments_nothing() -> None:
    """Collecting every test module (a full `make test` does) imports no app that instruments
    its importer: the constants tests share with the apps live in tests/apps/values.py."""
    probe = (
        "import sys, pytest\n"
        "code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests'])\n"
        "print('instrumented' if 'assay.instrumentation.auto' in sys.modules else 'clean', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.stdout.splitlines()[-1] == "clean 0", done.stdout[-2000:] + done.stderr[-2000:]
