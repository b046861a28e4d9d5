"""What the README promises: its example queries run, and its two commands are the Makefile's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import RunningCollector

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _sql_examples(text: str = README) -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", text, re.DOTALL)
    statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
    return [
        "\n".join(line for line in s.splitlines() if not line.startswith("--")) for s in statements
    ]


def test_the_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_there_are_six_example_queries() -> None:
    section = README.split("### Six ad hoc queries", 1)[1].split("\n#", 1)[0]
    assert len(_sql_examples(section)) == 6


@pytest.mark.parametrize("sql", _sql_examples())
def test_every_example_query_runs(collector: RunningCollector, sql: str) -> None:
    collector.query(sql)  # asserts a 200
