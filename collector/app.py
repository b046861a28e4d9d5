"""The HTTP application on the collector's HTTP port: OTLP/HTTP receiver and REST API."""

from __future__ import annotations

from starlette.applications import Starlette

from assay.collector.api import api_routes
from assay.collector.pipeline import Pipeline
from assay.collector.receivers.http import otlp_routes
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Store


def build_http_app(
    store: Store, pipeline: Pipeline, settings: CollectorSettings, version: str
) -> Starlette:
    app = Starlette(routes=[*otlp_routes(pipeline, settings.max_request_bytes), *api_routes()])
    app.state.store = store
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.version = version
    return app
