"""A minimal local fake of Anthropic's Messages API (`POST /v1/messages`, non-streamed), enough
for the real `anthropic` client to parse its answers; counts tokens as the fake OpenAI server.

Answers are deterministic but for the message id: the reply repeats the last user message;
usage reports
`cache_read_input_tokens` and `cache_creation_input_tokens` as the API does (here 0)."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from assay.collector.demo.fake_openai import count_tokens

REPLY_PREFIX = "You asked: "


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or () if isinstance(b, dict))


def message_reply(request: dict[str, Any]) -> dict[str, Any]:
    messages = request.get("messages") or []
    question = _text(messages[-1].get("content")) if messages else ""
    reply = f"{REPLY_PREFIX}{question}"
    prompt = (
        _text(request.get("system")) + " " + " ".join(_text(m.get("content")) for m in messages)
    )
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",  # unique per call, as the API's
        "type": "message",
        "role": "assistant",
        "model": request.get("model", ""),
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": count_tokens(prompt) + 3 * len(messages),
            "output_tokens": count_tokens(reply),
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            request = None
        if self.path.rstrip("/") != "/v1/messages" or not isinstance(request, dict):
            status, body = (
                404,
                {"type": "error", "error": {"type": "not_found_error", "message": self.path}},
            )
        else:
            status, body = 200, message_reply(request)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake")
        self.end_headers()
        self.wfile.write(data)


class FakeAnthropic:
    """`with FakeAnthropic() as fake: anthropic.Anthropic(base_url=fake.base_url, ...)`"""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
