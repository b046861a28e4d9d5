"""`GET /api/health`: is the collector serving, is the store reachable, how much is queued.

200 with status "ok" or "degraded" (the store is unreachable and the spool holds the data, or
the dead-letter folder holds rows the store refused); 503 "unhealthy" when the spool is full or
the store has been unreachable for `unhealthy_after`."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.encoding import json_response
from assay.collector.auth import client_address, token_refusal


async def health_endpoint(request: Request) -> Response:
    """Open to all, for load balancers; with API tokens configured, only a caller presenting
    one sees more than the status (counters tell an outsider about the traffic)."""
    state = request.app.state
    store_ok = await asyncio.to_thread(state.store.ping)
    monitor = state.monitor
    monitor.observe_store(store_ok)
    verdict = monitor.verdict()
    code = 200 if verdict.serving else 503
    api_auth = getattr(state, "api_auth", None)
    if api_auth is not None and token_refusal(
        api_auth,
        state.token_guesses,
        client_address(request.scope),
        request.headers.get("authorization"),
    ):
        return json_response({"status": verdict.status}, code)
    pipeline = state.pipeline
    body = {
        "status": verdict.status,
        "reasons": list(verdict.reasons),
        "instance": monitor.instance,
        "store": {
            "kind": state.store.kind,
            "reachable": store_ok,
            "reports_duplicates": state.store.reports_duplicates,
        },
        "spool": vars(pipeline.spool.stats()),
        "pipeline": pipeline.stats.snapshot(),
        "evaluation": pipeline.evaluation.snapshot() if pipeline.evaluation else None,
        "version": state.version,
    }
    return json_response(body, code)
