"""The REST API under `/api`: health, read-only SQL, recent LLM calls, traces and sessions,
datasets, experiments, feedback, prices."""

from __future__ import annotations

from starlette.routing import Route

from assay.collector.api.calls import call_endpoint, calls_endpoint
from assay.collector.api.datasets import (
    get_dataset_endpoint,
    list_datasets_endpoint,
    promote_call_endpoint,
    push_dataset_endpoint,
)
from assay.collector.api.experiments import (
    add_items_endpoint,
    get_experiment_endpoint,
    list_experiments_endpoint,
    record_experiment_endpoint,
)
from assay.collector.api.feedback import feedback_endpoint
from assay.collector.api.health import health_endpoint
from assay.collector.api.prices import load_prices_endpoint, prices_endpoint, recompute_endpoint
from assay.collector.api.query import query_endpoint
from assay.collector.api.traces import session_endpoint, trace_endpoint


def api_routes() -> list[Route]:
    return [
        Route("/api/health", health_endpoint, methods=["GET"]),
        Route("/api/query", query_endpoint, methods=["POST"]),
        Route("/api/calls", calls_endpoint, methods=["GET"]),
        Route("/api/feedback", feedback_endpoint, methods=["POST"]),
        Route("/api/calls/{span_id}", call_endpoint, methods=["GET"]),
        Route("/api/traces/{trace_id}", trace_endpoint, methods=["GET"]),
        # `path`: a session id or run name may hold a '/' (the router sees %2F decoded); the
        # POST routes below them under /items still match, the router trying every route.
        Route("/api/sessions/{session_id:path}", session_endpoint, methods=["GET"]),
        Route("/api/datasets", push_dataset_endpoint, methods=["POST"]),
        Route("/api/datasets", list_datasets_endpoint, methods=["GET"]),
        Route("/api/datasets/{name}", get_dataset_endpoint, methods=["GET"]),
        Route("/api/datasets/{name}/items", promote_call_endpoint, methods=["POST"]),
        Route("/api/experiments", record_experiment_endpoint, methods=["POST"]),
        Route("/api/experiments", list_experiments_endpoint, methods=["GET"]),
        Route("/api/experiments/{ref:path}", get_experiment_endpoint, methods=["GET"]),
        Route("/api/experiments/{experiment_id}/items", add_items_endpoint, methods=["POST"]),
        Route("/api/prices", prices_endpoint, methods=["GET"]),
        Route("/api/prices", load_prices_endpoint, methods=["POST"]),
        Route("/api/prices/recompute", recompute_endpoint, methods=["POST"]),
    ]
