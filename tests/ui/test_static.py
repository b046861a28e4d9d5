"""The UI's script and style sheet are served, however the package is installed."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from assay.collector.auth import is_api_path
from assay.collector.ui import ui_routes


def test_the_script_and_the_style_sheet_are_served() -> None:
    """An editable install (make install) links each file: StaticFiles refuses links, so the
    folder it serves must be the real one."""
    client = TestClient(Starlette(routes=ui_routes()))
    for name in ("ui.js", "style.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.content


def test_the_favicon_is_served() -> None:
    """Every browser asks for /favicon.ico: an SVG icon from the package, not a 404 in the log."""
    client = TestClient(Starlette(routes=ui_routes()))
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.content.lstrip().startswith(b"<svg")


def test_the_favicon_and_the_static_files_need_no_login() -> None:
    """The login page itself shows the icon and the style sheet: the token guard lets them pass,
    and nothing else of the UI or API."""
    assert not is_api_path("/favicon.ico")
    assert not is_api_path("/static/style.css")
    assert is_api_path("/calls") and is_api_path("/api/calls") and is_api_path("/favicon.ico/x")
