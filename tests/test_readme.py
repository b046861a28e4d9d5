"""What the README promises: its commands work (the two first, the notebook's, instrumenting a
service without a key) and its example queries run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import tomllib

from assay.collector.demo.fake_provider import DEFAULT_PORT
from tests.conftest import RunningCollector
from tests.fakes.provider_process import fake_provider_process

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


def _block_after(marker: str, language: str) -> str:
    """The first ```language block after `marker` in the README."""
    block = re.search(rf"```{language}\n(.*?)```", README.split(marker, 1)[1], re.DOTALL)
    assert block is not None, f"no {language} block after {marker!r}"
    return block.group(1)


@pytest.mark.subprocess
def test_instrument_your_service_runs_without_a_key(
    collector: RunningCollector, tmp_path: Path
) -> None:
    """The README's app.py, run as its command says, against `assay fake-provider`: the call is
    stored and shown in the UI under the service named after the program."""
    command = _block_after("Save this as `app.py`", "sh").strip()
    assert f"OPENAI_BASE_URL=http://127.0.0.1:{DEFAULT_PORT}/v1" in command
    assert command.endswith(".venv/bin/python app.py")
    app = tmp_path / f"app_{uuid.uuid4().hex[:8]}.py"
    app.write_text(_block_after("Save this as `app.py`", "python"))
    with fake_provider_process() as provider:
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))},
            "OPENAI_BASE_URL": f"{provider}/v1",
            "OPENAI_API_KEY": "fake",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
        }
        done = subprocess.run(
            [sys.executable, str(app)],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert 'You asked: "Say hello to Assay".' in done.stdout
    service = app.stem
    rows = collector.wait_for_rows(
        f"SELECT span_id, request_model FROM assay.llm_calls WHERE service_name = '{service}'", 1
    )
    assert [row["request_model"] for row in rows] == ["gpt-4o-mini"]
    listed = httpx.get(f"{collector.http_url}/calls", params={"service": service}, timeout=30)
    assert listed.status_code == 200 and f"/calls/{rows[0]['span_id']}" in listed.text
    call = httpx.get(f"{collector.http_url}/calls/{rows[0]['span_id']}", timeout=30)
    assert call.status_code == 200 and "Say hello to Assay" in call.text


def test_the_notebook_has_a_documented_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^notebook: .*\n\t(.*)$", makefile, re.M)
    assert recipe is not None and "jupyter-execute" in recipe.group(1)
    assert "examples/quickstart.ipynb" in recipe.group(1) and "`make notebook`" in README
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runner = pyproject["project"]["optional-dependencies"]["notebook"]
    assert any(r.startswith("nbclient") for r in runner)  # nbclient provides jupyter-execute
