"""End to end for Anthropic: the real `anthropic` client, instrumented by the one-line import in
its own process, exports to a real collector, which stores its calls as llm_calls rows."""

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
from tests.conftest import RunningCollector
from tests.fakes.fake_anthropic import FakeAnthropic


def test_anthropic_calls_land_in_llm_calls_with_cache_tokens_and_cost(
    collector: RunningCollector,
) -> None:
    service = f"e2e-anthropic-{uuid.uuid4().hex[:8]}"
    with FakeAnthropic() as fake:
        result = subprocess.run(
            [sys.executable, "-m", "tests.apps.anthropic_app"],
            env={
                **os.environ,
                "OTEL_SERVICE_NAME": service,
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "ASSAY_TEST_BASE_URL": fake.base_url,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    app: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])

    rows = collector.wait_for_rows(
        f"SELECT * FROM assay.llm_calls WHERE service_name = '{service}' ORDER BY timestamp", 6
    )
    assert len(rows) == 6  # one row per call: the client's own spans are not a second row
    write, read, tool, streamed, error, midstream = rows
    for row in rows:
        assert row["provider"] == sc.PROVIDER_ANTHROPIC

    for row, name in ((write, "cache_write"), (read, "cache_read"), (streamed, "stream")):
        usage = app[name]["usage"]
        cache_read = usage["cache_read_input_tokens"] or 0
        cache_write = usage["cache_creation_input_tokens"] or 0
        assert row["response_id"] == app[name]["id"]
        # Input tokens include the cached ones, whatever Anthropic's own count leaves out.
        assert row["input_tokens"] == usage["input_tokens"] + cache_read + cache_write
        assert row["output_tokens"] == usage["output_tokens"]
        assert row["cached_input_tokens"] == cache_read
        cost = pricing.cost_usd(
            row["model"],
            row["input_tokens"],
            usage["output_tokens"],
            cached_input_tokens=cache_read,
            cache_creation_input_tokens=cache_write,
            provider=sc.PROVIDER_ANTHROPIC,
        )
        assert cost is not None and row["cost_usd"] == pytest.approx(cost)
        assert row["finish_reasons"] == ["end_turn"]
    assert app["cache_write"]["usage"]["cache_creation_input_tokens"] > 0
    assert read["cached_input_tokens"] == app["cache_write"]["usage"]["cache_creation_input_tokens"]
    assert read["cost_usd"] < write["cost_usd"]  # a cache read costs less than the write

    assert tool["finish_reasons"] == ["tool_use"]
    (answer,) = json.loads(tool["output_messages"])
    assert answer["parts"] == [
        {
            "type": "tool_call",
            "id": app["tool"]["tool_use_id"],
            "name": "get_weather",
            "arguments": app["tool"]["input"],
        }
    ]
    assert json.loads(tool["tool_definitions"])[0]["name"] == "get_weather"

    assert streamed["streamed"] and streamed["time_to_first_token_ms"] is not None

    assert app["error"] == "OverloadedError"
    assert error["status"] == "error" and "OverloadedError" in error["error_type"]

    # Cut by an `error` event after message_start: its input tokens are kept, but whether
    # Anthropic bills them is documented nowhere, so it is unpriced as a failed call (README).
    assert "Overloaded" in app["midstream"]
    assert midstream["status"] == "error" and midstream["streamed"]
    assert midstream["input_tokens"] == streamed["input_tokens"]  # the same question
    assert midstream["cost_usd"] is None and midstream["cost_source"] == "failed_call"
    assert midstream["input_cost_usd"] is None
