"""The review UI on the collector's HTTP port: server-rendered pages to read and grade calls."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from assay.collector.ui import agreement, compare, experiments, pages, runs

STATIC = Path(__file__).resolve().parent / "static"


async def favicon(request: Request) -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page links: the package's SVG icon, not a 404."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


def ui_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.calls_page, methods=["GET"]),
        Route("/calls", pages.calls_page, methods=["GET"]),
        Route("/calls/{span_id:str}", pages.call_page, methods=["GET"]),
        Route("/traces/{trace_id:str}", runs.trace_page, methods=["GET"]),
        Route("/sessions", runs.sessions_page, methods=["GET"]),
        # `path`: a session id or run name may hold a '/' ("user-7/chat-3"), and the router
        # sees %2F decoded.
        Route("/sessions/{session_id:path}", runs.session_page, methods=["GET"]),
        Route("/review", pages.review_page, methods=["GET"]),
        Route("/review/next", pages.review_next, methods=["GET"]),
        Route("/grade", pages.grade, methods=["POST"]),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/reviewer", pages.set_reviewer, methods=["POST"]),
        Route("/datasets", experiments.datasets_page, methods=["GET"]),
        Route("/datasets/{name:str}", experiments.dataset_page, methods=["GET"]),
        Route("/calls/{span_id:str}/dataset", experiments.add_to_dataset, methods=["POST"]),
        Route("/experiments", experiments.experiments_page, methods=["GET"]),
        Route("/agreement", agreement.agreement_page, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/experiments/compare", compare.compare_page, methods=["GET"]),
        Route("/experiments/{ref:path}", experiments.run_page, methods=["GET"]),
        # The real folder: StaticFiles serves no file behind a link, and an editable install
        # (make install) reaches this module through a tree of links.
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
