"""The loopback HTTP server under the provider fakes: routing, JSON bodies, streamed bodies.

A fake subclasses `FakeServer` and answers `reply(method, path, query, body)` with a
`Reply`: a JSON body, or `stream` pieces (SSE events, NDJSON lines) written and flushed
one at a time with chunked transfer encoding, as the real APIs send them. `drop_after`
hangs up mid-stream, without the final chunk, as a provider or proxy that falls over does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from assay.collector.demo.loopback import FakeHandler, LoopbackServer


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    stream: Iterable[bytes] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # pieces of `stream` written before hanging up


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def ndjson(data: Any) -> bytes:
    return json.dumps(data).encode() + b"\n"


def word_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: 4 tokens per 3 words."""
    return -(-len(text.split()) * 4 // 3)


# What every fake model does: echo the last user text, or call the first tool offered.
FUNCTION_ARGUMENT = "Paris"  # the value the fake model gives every required parameter


def reply_text(last_user_text: str | None) -> str:
    return f"You said: {last_user_text or 'nothing'}"


def tool_arguments(schema: Any) -> dict[str, Any]:
    """Arguments for a function with JSON schema `schema`: every required parameter set."""
    required = schema.get("required", ()) if isinstance(schema, dict) else ()
    return {name: FUNCTION_ARGUMENT for name in required}


def thirds(text: str) -> list[str]:
    """`text` in three streamed pieces (fewer for very short texts) that join back to it."""
    words = text.split(" ")
    step = max(1, -(-len(words) // 3))
    pieces = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
    return [piece + " " for piece in pieces[:-1]] + pieces[-1:]


class FakeServer(LoopbackServer):
    """A provider fake on 127.0.0.1 (a free port); every request it received is in `requests`."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def reply(self, request: Request) -> Reply:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return self.address

    @property
    def last_body(self) -> Any:
        return self.requests[-1].body


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
        self.server.fake.requests.append(request)
        reply = self.server.fake.reply(request)
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.stream is None:
            payload = json.dumps(reply.body).encode()
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for count, piece in enumerate(reply.stream):
            if reply.drop_after is not None and count == reply.drop_after:
                self.hang_up()
                return
            self.write_chunk(piece)
            self.wfile.flush()
        self.end_chunks()


FakeServer.handler = _Handler  # defined after the class it serves
