"""The README's order, per client, in a fresh interpreter: `instrument()` first, then
`import <client>`, then a call against the client's local fake; the call must make its span.

The other tests import every client before instrumenting (pytest collects them first), which
hid that mistralai 2 and later (a namespace package, without `mistralai/__init__.py`) was never
patched in this order.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assay.instrumentation import semconv as sc
from tests.apps.import_order_app import CLIENTS

pytestmark = pytest.mark.subprocess

PROVIDERS = {
    "openai": sc.PROVIDER_OPENAI,
    "anthropic": sc.PROVIDER_ANTHROPIC,
    "bedrock": sc.PROVIDER_AWS_BEDROCK,
    "google-genai": sc.PROVIDER_GCP_GEMINI,
    "mistralai": sc.PROVIDER_MISTRAL_AI,
    "cohere": sc.PROVIDER_COHERE,
    "ollama": sc.PROVIDER_OLLAMA,
    "litellm": sc.PROVIDER_OPENAI,
    "openai-agents": sc.PROVIDER_OPENAI,
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_client_imported_after_instrument_is_traced(client: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.import_order_app", client],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded_before"] is False  # instrument() imported no client
    if client == "openai-agents":  # the framework's spans come whichever was imported first
        names = [span["name"] for span in report["spans"]]
        assert names[-2:] == ["invoke_agent capitals", "invoke_workflow Agent workflow"], names
    llm_spans = [span for span in report["spans"] if span["provider"] is not None]
    assert [span["provider"] for span in llm_spans] == [PROVIDERS[client]], result.stderr
