"""The HTTP application on the collector's HTTP port: OTLP/HTTP receiver and REST API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from assay.collector.api import api_routes
from assay.collector.api.query_gate import QueryGate
from assay.collector.auth import ApiAuthMiddleware, TokenCheck
from assay.collector.http_guard import HostAllowList, HostNames, JsonApiWrites
from assay.collector.login_sessions import LoginSessions
from assay.collector.pipeline import Pipeline
from assay.collector.receivers.http import otlp_routes
from assay.collector.records.read_gate import ReadGate
from assay.collector.settings import CollectorSettings, listen_host
from assay.collector.store.base import Store
from assay.collector.token_guesses import TokenGuesses
from assay.collector.ui import ui_routes


def build_http_app(
    store: Store, pipeline: Pipeline, settings: CollectorSettings, version: str
) -> Starlette:
    otlp_auth = TokenCheck(settings.otlp_tokens, "OTLP")
    api_auth = TokenCheck(settings.api_tokens, "API")
    sessions = LoginSessions(store, api_auth, settings.ui_session_hours * 3600)
    guesses = TokenGuesses()
    app = Starlette(
        routes=[*otlp_routes(pipeline, settings.max_request_bytes, otlp_auth), *api_routes()],
        middleware=[
            Middleware(
                HostAllowList,
                names=HostNames(settings.allowed_hosts, (settings.host, listen_host(settings))),
            ),
            Middleware(ApiAuthMiddleware, check=api_auth, sessions=sessions, guesses=guesses),
            Middleware(JsonApiWrites),
        ],
    )
    app.router.routes.extend(ui_routes())
    app.state.store = store
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.version = version
    app.state.api_auth = api_auth
    app.state.login_sessions = sessions
    app.state.token_guesses = guesses
    app.state.query_gate = QueryGate(settings.query_concurrency)
    app.state.read_gate = ReadGate.from_settings(settings)
    return app
