"""Real provider traffic recorded from the live APIs (../shared/recordings), read as test data.

Each file is a VCR cassette (see its folder's README): `interactions[]`, each a recorded
`request` (method, uri, body) and the `response` the provider sent (status, headers, body; a
stream as its raw SSE / NDJSON / AWS event-stream bytes). `recorded_calls()` gives one
`RecordedCall` per interaction, named `<provider>/<cassette>[#n]` for test ids;
`pieces()` cuts a streamed body where the provider flushed it (one event, one line, one
event-stream message), so a replay hands the client the stream chunk by chunk.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[3]
# The main checkout sits beside ../shared; a worktree one level deeper.
RECORDINGS = next(
    (
        p
        for p in (ROOT.parent / "shared" / "recordings", ROOT.parents[1] / "shared" / "recordings")
        if p.is_dir()
    ),
    ROOT.parent / "shared" / "recordings",
)

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
EVENT_STREAM = "application/vnd.amazon.eventstream"
JSON = "application/json"

# Recorded headers that described the recorded connection, not the answer: the replay server
# writes its own.
_CONNECTION_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding", "date", "server"}
)


@dataclass(frozen=True)
class RecordedCall:
    """One recorded request and the provider's answer to it."""

    provider: str  # the recordings' folder: openai, anthropic, bedrock, google-genai, ...
    cassette: str  # the file's name without .yaml
    index: int  # the interaction's position in its cassette
    count: int  # interactions in the cassette
    method: str
    uri: str
    request_body: Any  # JSON as sent (decoded), or the raw text
    status: int
    headers: dict[str, str]  # the response's, as recorded (names lower case)
    body: bytes  # the response body, decoded from the cassette's encodings

    @property
    def name(self) -> str:
        suffix = f"#{self.index + 1}" if self.count > 1 else ""
        return f"{self.provider}/{self.cassette}{suffix}"

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.uri).path)

    @property
    def query(self) -> str:
        return urlsplit(self.uri).query

    @property
    def headers_to_send(self) -> dict[str, str]:
        """The recorded headers a replay sends besides its content type."""
        return {k: v for k, v in self.headers.items() if k != "content-type"}

    @cached_property
    def content_type(self) -> str:
        """The answer's media type: as recorded, else what its bytes are."""
        recorded = self.headers.get("content-type")
        if recorded:
            return recorded
        head = self.body.lstrip()[:6]
        if head.startswith((b"event:", b"data:")):
            return SSE
        if b":event-type" in self.body[:128] or b":exception-type" in self.body[:128]:
            return EVENT_STREAM
        if head.startswith(b"{") and b"}\n{" in self.body and _is_ndjson(self.body):
            return NDJSON
        return JSON

    @property
    def streamed(self) -> bool:
        return self.content_type.split(";")[0].strip() in (SSE, NDJSON, EVENT_STREAM)

    def pieces(self) -> list[bytes]:
        """The body as the provider flushed it: events, lines or event-stream messages."""
        kind = self.content_type.split(";")[0].strip()
        if kind == EVENT_STREAM:
            return _event_stream_messages(self.body)
        if kind == NDJSON:
            return [line + b"\n" for line in self.body.split(b"\n") if line.strip()]
        if kind == SSE:
            separator = b"\r\n\r\n" if b"\r\n\r\n" in self.body else b"\n\n"
            events = [e for e in self.body.split(separator) if e.strip()]
            return [event + separator for event in events]
        return [self.body]

    def json(self) -> Any:
        """The answer as JSON (not for streams)."""
        return json.loads(self.body)

    def events(self) -> list[Any]:
        """A streamed answer's JSON payloads in order: SSE `data:` lines, NDJSON lines, or the
        event-stream messages' payloads (`{"bytes": base64}` payloads decoded)."""
        kind = self.content_type.split(";")[0].strip()
        if kind == EVENT_STREAM:
            return [_event_stream_payload(m) for m in _event_stream_messages(self.body)]
        if kind == NDJSON:
            return [json.loads(piece) for piece in self.pieces()]
        found = []
        for event in self.pieces():
            for line in event.decode().splitlines():
                if line.startswith("data:"):
                    data = line[5:].strip()
                    if data and data != "[DONE]":
                        found.append(json.loads(data))
        return found


def _is_ndjson(body: bytes) -> bool:
    try:
        return all(json.loads(line) is not None for line in body.split(b"\n") if line.strip())
    except ValueError:
        return False


def _event_stream_messages(body: bytes) -> list[bytes]:
    """AWS event-stream messages: each begins with its total length (4 bytes, big-endian)."""
    messages, at = [], 0
    while at + 4 <= len(body):
        length = int.from_bytes(body[at : at + 4], "big")
        if length < 16:
            raise ValueError(f"not an event stream at byte {at}")
        messages.append(body[at : at + length])
        at += length
    return messages


def _event_stream_payload(message: bytes) -> dict[str, Any]:
    """`{"event": type, "payload": JSON}` of one event-stream message (prelude 12 bytes,
    headers, payload, CRC 4 bytes); a `{"bytes": ...}` chunk's payload decoded."""
    import base64

    headers_length = int.from_bytes(message[4:8], "big")
    headers, payload = message[12 : 12 + headers_length], message[12 + headers_length : -4]
    names: dict[str, str] = {}
    at = 0
    while at < len(headers):
        size = headers[at]
        name = headers[at + 1 : at + 1 + size].decode()
        at += 1 + size
        kind = headers[at]
        at += 1
        if kind != 7:  # only string headers appear in these streams
            raise ValueError(f"event-stream header {name} of type {kind}")
        length = int.from_bytes(headers[at : at + 2], "big")
        names[name] = headers[at + 2 : at + 2 + length].decode()
        at += 2 + length
    data = json.loads(payload) if payload else {}
    if isinstance(data, dict) and "bytes" in data:
        data = json.loads(base64.b64decode(data["bytes"]))
    return {"event": names.get(":event-type") or names.get(":exception-type"), "payload": data}


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value or "").encode()


def _request_body(raw: Any) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def load(path: Path) -> list[RecordedCall]:
    """Every interaction of one cassette."""
    interactions = yaml.safe_load(path.read_text(encoding="utf-8")).get("interactions") or []
    calls = []
    for index, interaction in enumerate(interactions):
        request, response = interaction["request"], interaction["response"]
        headers = {
            name.lower(): values[0] if isinstance(values, list) else str(values)
            for name, values in (response.get("headers") or {}).items()
        }
        body = _text((response.get("body") or {}).get("string"))
        if headers.get("content-encoding") == "gzip" or body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        calls.append(
            RecordedCall(
                provider=path.parent.name,
                cassette=path.stem,
                index=index,
                count=len(interactions),
                method=request["method"].upper(),
                uri=request["uri"],
                request_body=_request_body(request.get("body")),
                status=int(response["status"]["code"]),
                headers={k: v for k, v in headers.items() if k not in _CONNECTION_HEADERS},
                body=body,
            )
        )
    return calls


def recorded_calls(provider: str | None = None) -> list[RecordedCall]:
    """Every recorded call (of one provider's folder), in a stable order; none without the
    recordings folder."""
    if not RECORDINGS.is_dir():
        return []
    folders = [RECORDINGS / provider] if provider else sorted(RECORDINGS.iterdir())
    return [
        call
        for folder in folders
        if folder.is_dir()
        for path in sorted(folder.glob("*.yaml"))
        for call in load(path)
    ]
