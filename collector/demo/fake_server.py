"""The HTTP server under every fake provider: a request in, a `Reply` in the provider's format out.

A fake subclasses `FakeServer` and answers `reply(request)` with a `Reply`: a JSON body, a
body of raw bytes, or `stream` pieces (SSE events, NDJSON lines, AWS event-stream
messages) written and flushed one at a time with chunked transfer encoding, `delay`
seconds apart, as the real APIs send them. `drop_after` hangs up mid-stream without the
final chunk, `truncate` half-way through a body, as a provider or proxy that falls over
does. Every request received is kept (`received`; their bodies are `requests`).

Standard library only: it ships with the package for `assay demo`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from assay.collector.demo.loopback import FakeHandler, LoopbackServer

__all__ = [
    "FAIL_HEADER",
    "Failure",
    "FakeServer",
    "Reply",
    "Request",
    "failure_asked",
    "ndjson",
    "sse",
]

# A request carrying this header fails with the status it names (429, 500, 529, ...), in the
# provider's own error body: a failure under a real model name, as production sees them.
FAIL_HEADER = "x-fake-error"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # sent as JSON
    raw: bytes | None = None  # sent as it is, in place of `body`
    stream: Iterable[bytes] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds between two pieces of `stream`
    drop_after: int | None = None  # pieces of `stream` written before hanging up
    truncate: bool = False  # write half of the body, then hang up


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # the JSON body; the text of one that is not JSON; None without a body


@dataclass(frozen=True)
class Failure:
    """A scripted failure: the provider's error answer with this HTTP status."""

    status: int


def failure_asked(request: Request) -> Failure | None:
    """The failure the request asks for with `FAIL_HEADER`, if any."""
    value = request.headers.get(FAIL_HEADER, "").strip()
    return Failure(int(value)) if value.isdigit() else None


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def ndjson(data: Any) -> bytes:
    return json.dumps(data).encode() + b"\n"


class FakeServer(LoopbackServer):
    """A provider fake on 127.0.0.1 (a free port unless given)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.received: list[Request] = []

    def reply(self, request: Request) -> Reply:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return self.address

    @property
    def requests(self) -> list[Any]:
        """The bodies of the requests received that had one, in order."""
        return [request.body for request in self.received if request.body is not None]

    @property
    def last_body(self) -> Any:
        return self.received[-1].body


class _Handler(FakeHandler):
    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        fake: FakeServer = self.server.fake
        fake.received.append(request)
        reply = fake.reply(request)
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.stream is None:
            self._body(
                reply.raw if reply.raw is not None else json.dumps(reply.body).encode(), reply
            )
        else:
            self._stream(reply.stream, reply)

    def _body(self, payload: bytes, reply: Reply) -> None:
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if reply.truncate:
            self.wfile.write(payload[: len(payload) // 2])
            self.hang_up()
        else:
            self.wfile.write(payload)

    def _stream(self, pieces: Iterable[bytes], reply: Reply) -> None:
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for count, piece in enumerate(pieces):
            if reply.drop_after is not None and count == reply.drop_after:
                self.hang_up()
                return
            if reply.delay and count:
                time.sleep(reply.delay)
            self.write_chunk(piece)
            self.wfile.flush()
        self.end_chunks()


FakeServer.handler = _Handler  # defined after the class it serves
