"""Every page that counts unpriced calls means one thing by it, and says so: calls without a cost
(a model the price table lacks, no usage reported, or a failed call), the failed ones counted
apart where a page can tell, since a failed call is rarely billed."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import httpx
import pytest

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector

pytestmark = pytest.mark.integration

PRICED = {
    sc.OPERATION_NAME: sc.OP_CHAT,
    sc.PROVIDER_NAME: sc.PROVIDER_OPENAI,
    sc.REQUEST_MODEL: "gpt-4o-mini",
    sc.USAGE_INPUT_TOKENS: 2000,
    sc.USAGE_OUTPUT_TOKENS: 200,
}
UNKNOWN_MODEL = {**PRICED, sc.REQUEST_MODEL: "in-house-llm", sc.PROVIDER_NAME: "in-house"}
FAILED = {
    k: v for k, v in PRICED.items() if k not in (sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS)
}


def _run(collector: RunningCollector, *calls: tuple[dict[str, Any], bool]) -> tuple[str, str]:
    """One trace of these calls (attributes, failed) in a session of its own, stored."""
    service = f"unpriced-{uuid.uuid4().hex[:8]}"
    session = f"s-{service}"
    trace_id = os.urandom(16)
    spans = [
        make_span(
            attrs={**attrs, sc.SESSION_ID: session, sc.USER_ID: f"u-{service}"},
            trace_id=trace_id,
            error=failed,
        )
        for attrs, failed in calls
    ]
    body = make_request(service, *spans).SerializeToString()
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    collector.wait_until_stored()
    return service, trace_id.hex()


def _text(collector: RunningCollector, path: str, **params: str) -> str:
    response = httpx.get(f"{collector.http_url}{path}", params=params)
    assert response.status_code == 200, response.text
    return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())


def test_a_failed_call_is_unpriced_but_does_not_make_the_cost_a_lower_bound(
    collector: RunningCollector,
) -> None:
    service, trace = _run(collector, (PRICED, False), (FAILED, True))
    page = _text(collector, f"/traces/{trace}")
    assert "1 call unpriced, 1 of them failed" in page
    assert "at least" not in page and "lower bound" not in page
    calls = _text(collector, "/calls", service=service)
    assert "1 call unpriced, 1 of them failed" in calls


def test_every_page_counts_the_unpriced_calls_alike(collector: RunningCollector) -> None:
    service, trace = _run(collector, (PRICED, False), (UNKNOWN_MODEL, False), (FAILED, True))
    shown = "2 calls unpriced, 1 of them failed: the cost is a lower bound"
    assert shown in _text(collector, f"/traces/{trace}")
    assert shown in _text(collector, "/calls", service=service)
    # A session's runs do not keep which unpriced calls failed: the count, with no lower bound.
    session = _text(collector, f"/sessions/s-{service}")
    assert session.count("2 calls unpriced") == 2  # the session's cost, and its turn's
    sessions = _text(collector, "/sessions", user_id=f"u-{service}")
    assert "2 calls unpriced" in sessions
