"""The quickstart notebook runs top to bottom in a real Jupyter kernel against a real collector."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import RunningCollector

pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def _texts(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/html", "") + data.get("text/plain", ""))
    return "\n".join(parts)


def test_the_quickstart_notebook_runs_and_shows_prompt_b_is_better(
    collector: RunningCollector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASSAY_URL", collector.http_url)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Raises CellExecutionError, with the cell and its traceback, if any cell fails.
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    everything = "\n".join(_texts(cell) for cell in code)
    assert "Dataset capitals" in everything
    assert "→ B is better" in everything
    assert "<progress" in everything  # the notebook's progress bar, not a terminal's
    stored = collector.query(
        "SELECT name, status, item_count FROM experiments FINAL "
        "WHERE name IN ('quickstart-prompt-a', 'quickstart-prompt-b') ORDER BY name"
    )
    assert [(r["name"], r["status"], r["item_count"]) for r in stored] == [
        ("quickstart-prompt-a", "completed", 10),
        ("quickstart-prompt-b", "completed", 10),
    ]
