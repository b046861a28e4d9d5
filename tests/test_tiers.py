"""`--fast` skips importing a test module whose one-line `pytestmark` names a tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import tiers


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
