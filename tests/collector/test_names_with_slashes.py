"""Names people give that hold a '/' ("support-bot/v2" for a run, "user-7/chat-3" for a
conversation): what the API and the UI serve under such a name is found by it, not answered
404 by the router (Starlette decodes %2F before it routes)."""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from assay.evaluators.client import CollectorClient
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector

pytestmark = pytest.mark.integration


def test_an_experiment_named_with_a_slash_is_found_by_its_name(
    collector: RunningCollector,
) -> None:
    name = f"support-bot/v2-{uuid.uuid4().hex[:8]}"
    run = {"experiment_id": uuid.uuid4().hex, "name": name, "started_at": time.time()}
    client = CollectorClient(collector.http_url)
    client.record_experiment({**run, "status": "completed", "ended_at": time.time()})
    assert (
        client.get_experiment(name)["experiment"]["name"] == name
    )  # compare("support-bot/v2", ...) reads so
    page = httpx.get(f"{collector.http_url}/experiments/{quote(name, safe='')}")
    assert page.status_code == 200 and name in page.text


def test_a_session_id_with_a_slash_opens_its_session(collector: RunningCollector) -> None:
    session = f"user-7/chat-{uuid.uuid4().hex[:8]}?x=1#y"
    trace, root = os.urandom(16), os.urandom(8)
    attrs = {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: "a", "session.id": session}
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=make_request(
            "slashes", make_span(attrs=attrs, trace_id=trace, span_id=root)
        ).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    collector.wait_for_rows(
        f"SELECT 1 FROM assay.trace_spans WHERE trace_id = '{trace.hex()}' AND session_id != ''", 1
    )
    trace_page = httpx.get(f"{collector.http_url}/traces/{trace.hex()}").text
    link = f"/sessions/{quote(session, safe='/')}"  # as the page writes it (Jinja's urlencode)
    assert f'href="{link}"' in trace_page
    for path in (link, f"/sessions/{quote(session, safe='')}", f"/api/sessions/{quote(session)}"):
        answer = httpx.get(f"{collector.http_url}{path}")
        assert answer.status_code == 200, (path, answer.status_code)
        assert session in answer.text
