"""A local stand-in for Grafana's HTTP API (the endpoints provisioning uses), on loopback.

It keeps what it is sent, answers as Grafana does (404 for unknown uids, 409 for a second data
source of the same name, 412 for a dashboard uid that exists without overwrite, 401 without the
token), so the real grafana-client can be tested against it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GrafanaState:
    token: str
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def _route(self, method: str) -> None:
            state.requests.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._reply(401, {"message": "Unauthorized"})
            path = self.path.split("?")[0]
            for pattern, handler in ROUTES.get(method, []):
                match = re.fullmatch(pattern, path)
                if match:
                    return handler(self, *match.groups())
            return self._reply(404, {"message": "Not found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def get_datasource(self, uid: str) -> None:
            if uid not in state.datasources:
                return self._reply(404, {"message": "Data source not found"})
            return self._reply(200, state.datasources[uid])

        def create_datasource(self) -> None:
            body = self._body()
            if any(d["name"] == body["name"] for d in state.datasources.values()):
                return self._reply(409, {"message": "data source with the same name exists"})
            state.datasources[body["uid"]] = {**body, "id": len(state.datasources) + 1}
            return self._reply(200, {"message": "Datasource added", "id": 1})

        def update_datasource(self, uid: str) -> None:
            if uid not in state.datasources:
                return self._reply(404, {"message": "Data source not found"})
            state.datasources[uid] = {**self._body(), "id": state.datasources[uid]["id"]}
            return self._reply(200, {"message": "Datasource updated"})

        def health(self, uid: str) -> None:
            if uid not in state.datasources:
                return self._reply(404, {"message": "Data source not found"})
            return self._reply(200, {"status": "OK", "message": "Data source is working"})

        def get_folder(self, uid: str) -> None:
            if uid not in state.folders:
                return self._reply(404, {"message": "folder not found"})
            return self._reply(200, state.folders[uid])

        def create_folder(self) -> None:
            body = self._body()
            if body["uid"] in state.folders:
                return self._reply(409, {"message": "a folder with the same uid exists"})
            state.folders[body["uid"]] = body
            return self._reply(200, body)

        def save_dashboard(self) -> None:
            body = self._body()
            model = body["dashboard"]
            if body.get("folderUid") not in state.folders:
                return self._reply(400, {"message": "folder not found"})
            old = state.dashboards.get(model["uid"])
            if old is not None and not body.get("overwrite"):
                return self._reply(412, {"status": "name-exists"})
            version = (old["version"] if old else 0) + 1
            state.dashboards[model["uid"]] = {**body, "version": version}
            url = f"/d/{model['uid']}/{model['title'].lower().replace(' ', '-')}"
            return self._reply(200, {"uid": model["uid"], "url": url, "version": version})

    ROUTES = {
        "GET": [
            (r"/api/datasources/uid/([^/]+)", Handler.get_datasource),
            (r"/api/datasources/uid/([^/]+)/health", Handler.health),
            (r"/api/folders/([^/]+)", Handler.get_folder),
        ],
        "POST": [
            (r"/api/datasources", Handler.create_datasource),
            (r"/api/folders", Handler.create_folder),
            (r"/api/dashboards/db", Handler.save_dashboard),
        ],
        "PUT": [(r"/api/datasources/uid/([^/]+)", Handler.update_datasource)],
    }
    return Handler


@contextmanager
def fake_grafana(token: str) -> Iterator[tuple[str, GrafanaState]]:
    state = GrafanaState(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
