"""`GET /api/health`: is the collector serving, is the store reachable, how much is queued."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.encoding import json_response


async def health_endpoint(request: Request) -> Response:
    """Open to all, for load balancers; with API tokens configured, only a caller presenting
    one sees more than the status (counters tell an outsider about the traffic)."""
    state = request.app.state
    store_ok = await asyncio.to_thread(state.store.ping)
    api_auth = getattr(state, "api_auth", None)
    if api_auth is not None and not api_auth.allows(request.headers.get("authorization")):
        return json_response({"status": "ok" if store_ok else "degraded"}, 200 if store_ok else 503)
    pipeline = state.pipeline
    body = {
        "status": "ok" if store_ok else "degraded",
        "store": {"kind": state.store.kind, "reachable": store_ok},
        "spool": vars(pipeline.spool.stats()),
        "pipeline": pipeline.stats.snapshot(),
        "evaluation": pipeline.evaluation.snapshot() if pipeline.evaluation else None,
        "version": state.version,
    }
    return json_response(body, 200 if store_ok else 503)
