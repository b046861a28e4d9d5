"""Assay's own spans, of every provider and operation, are read as the current GenAI conventions
(dialect `genai`) and keep their prompt name and version; their usage follows the convention
(input includes the cache) and their cost by token class adds up. The real clients, against local
fakes, instrumented by the one-line import, export to a real collector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.apps.values import PROMPT_NAME, PROMPT_VERSION
from tests.conftest import RunningCollector

# (a module-wide mark lets `--fast` skip importing the app, which imports every client library
# and instruments the process it is imported in, with an OTLP exporter to localhost:4317)
pytestmark = pytest.mark.integration

CLASS_COSTS = (
    "input_cost_usd + cache_read_cost_usd + cache_write_cost_usd + audio_input_cost_usd"
    " + output_cost_usd + reasoning_cost_usd + audio_output_cost_usd"
)


def test_every_provider_and_operation_is_stored_as_genai_with_its_prompt(
    collector: RunningCollector,
) -> None:
    service = f"own-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.own_spans_app"],
        env={
            **os.environ,
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout.strip().splitlines()[-1])["calls"]
    rows = collector.wait_for_rows(
        "SELECT provider, operation, model, dialect, prompt_name, prompt_version, status,"
        " input_tokens, cached_input_tokens, cache_creation_input_tokens, cost_usd,"
        f" cost_source, usage_source, {CLASS_COSTS} AS by_class"
        f" FROM assay.llm_calls WHERE service_name = '{service}'",
        made,
    )
    assert len(rows) == made
    seen = {(r["provider"], r["operation"]) for r in rows}
    assert seen >= {
        ("openai", "chat"),
        ("openai", "text_completion"),
        ("openai", "embeddings"),
        ("anthropic", "chat"),
        ("aws.bedrock", "chat"),
        ("aws.bedrock", "text_completion"),
        ("aws.bedrock", "embeddings"),
        ("gcp.gemini", "generate_content"),
        ("mistral_ai", "chat"),
        ("cohere", "chat"),
        ("ollama", "chat"),
        ("ollama", "text_completion"),
    }, seen
    for row in rows:
        where = f"{row['provider']} {row['operation']} {row['model']}"
        assert row["dialect"] == "genai", where
        assert (row["prompt_name"], row["prompt_version"]) == (PROMPT_NAME, PROMPT_VERSION), where
        assert row["status"] == "ok" and row["usage_source"] == "reported", where
        cached = (row["cached_input_tokens"] or 0) + (row["cache_creation_input_tokens"] or 0)
        assert row["input_tokens"] is not None and row["input_tokens"] >= cached, where
        if row["provider"] == "ollama":  # local: no price, and it says so
            assert (row["cost_usd"], row["cost_source"]) == (None, "unpriced_model"), where
        else:
            assert row["cost_source"] == "priced", where
            assert row["by_class"] == pytest.approx(row["cost_usd"]), where
