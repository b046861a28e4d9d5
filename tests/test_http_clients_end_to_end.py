"""End to end for google-genai, mistralai, cohere and ollama: the real clients, instrumented by
the one-line import in their own process, export to a real collector storing into chDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.apps.values import MODELS
from tests.conftest import RunningCollector

# (a module-wide mark lets `--fast` skip importing the app, which instruments the process it is
# imported in, with an OTLP exporter to localhost:4317)
pytestmark = pytest.mark.integration


def test_four_clients_land_in_llm_calls_with_tokens_costs_and_messages(
    collector: RunningCollector,
) -> None:
    service = f"e2e-http-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.http_clients_app"],
        env={
            **os.environ,
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    usage = json.loads(result.stdout.strip().splitlines()[-1])
    rows = collector.wait_for_rows(
        f"SELECT * FROM assay.llm_calls WHERE service_name = '{service}' ORDER BY timestamp", 8
    )
    calls: dict[tuple[str, bool], dict[str, Any]] = {
        (row["provider"], row["streamed"]): row for row in rows
    }
    assert len(calls) == 8

    def check(provider: str, model: str, tokens: list[tuple[int | None, int | None]]) -> None:
        for streamed, (input_tokens, output_tokens) in zip((False, True), tokens, strict=True):
            row = calls[(provider, streamed)]
            assert row["status"] == "ok"
            assert row["request_model"] == model
            assert (row["input_tokens"], row["output_tokens"]) == (input_tokens, output_tokens)
            expected = pricing.cost_usd(model, input_tokens, output_tokens, provider=provider)
            if provider == sc.PROVIDER_OLLAMA:
                assert expected is None and row["cost_usd"] is None  # local: no price, not 0
            else:
                assert expected is not None and row["cost_usd"] == pytest.approx(expected)
            assert json.loads(row["input_messages"]) and json.loads(row["output_messages"])
            assert row["finish_reasons"]

    gemini = usage["gemini"]
    check(
        sc.PROVIDER_GCP_GEMINI,
        MODELS["gemini"],
        [
            (u["prompt_token_count"], u["candidates_token_count"] + u["thoughts_token_count"])
            for u in gemini
        ],
    )
    check(
        sc.PROVIDER_MISTRAL_AI,
        MODELS["mistral"],
        [(u["prompt_tokens"], u["completion_tokens"]) for u in usage["mistral"]],
    )
    check(
        sc.PROVIDER_COHERE,
        MODELS["cohere"],
        [(int(u["input_tokens"]), int(u["output_tokens"])) for u in usage["cohere"]],
    )
    check(
        sc.PROVIDER_OLLAMA,
        MODELS["ollama"],
        [(u["prompt_eval_count"], u["eval_count"]) for u in usage["ollama"]],
    )
    assert calls[(sc.PROVIDER_GCP_GEMINI, False)]["operation"] == sc.OP_GENERATE_CONTENT
    assert calls[(sc.PROVIDER_GCP_GEMINI, True)]["time_to_first_token_ms"] is not None
