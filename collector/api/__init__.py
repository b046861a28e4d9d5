"""The REST API under `/api`: health, read-only SQL, recent LLM calls and feedback."""

from __future__ import annotations

from starlette.routing import Route

from assay.collector.api.calls import calls_endpoint
from assay.collector.api.feedback import feedback_endpoint
from assay.collector.api.health import health_endpoint
from assay.collector.api.query import query_endpoint


def api_routes() -> list[Route]:
    return [
        Route("/api/health", health_endpoint, methods=["GET"]),
        Route("/api/query", query_endpoint, methods=["POST"]),
        Route("/api/calls", calls_endpoint, methods=["GET"]),
        Route("/api/feedback", feedback_endpoint, methods=["POST"]),
    ]
