"""`GET /api/health`: is the collector serving, is the store reachable, how much is queued."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.encoding import json_response


async def health_endpoint(request: Request) -> Response:
    state = request.app.state
    store_ok = await asyncio.to_thread(state.store.ping)
    pipeline = state.pipeline
    body = {
        "status": "ok" if store_ok else "degraded",
        "store": {"kind": state.store.kind, "reachable": store_ok},
        "spool": vars(pipeline.spool.stats()),
        "pipeline": pipeline.stats.snapshot(),
        "version": state.version,
    }
    return json_response(body, 200 if store_ok else 503)
