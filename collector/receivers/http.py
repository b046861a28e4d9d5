"""The OTLP/HTTP receiver: `/v1/traces`, `/v1/logs` and `/v1/metrics`, protobuf or JSON,
optionally gzipped."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable

from google.protobuf import json_format
from google.rpc import status_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from assay.collector.auth import TokenCheck, challenge_headers
from assay.collector.normalize.otlp import InvalidRequest, decode_json, read_protobuf
from assay.collector.pipeline import Overloaded, Pipeline
from assay.collector.receivers.intake import take
from assay.collector.stage_timing import stage

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code values the OTLP spec puts in error bodies
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE, _UNAUTHENTICATED = 3, 8, 14, 16


# Members decoded at most: each costs a fresh inflater, so an endless run of empty members must
# not keep the event loop busy.
MAX_GZIP_MEMBERS = 64


class PayloadTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, refusing anything past `limit` bytes either way."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        return gunzip(body, limit)
    if encoding not in ("identity", ""):
        raise InvalidRequest(f"unsupported content-encoding {encoding!r} (use gzip or none)")
    return body


def gunzip(body: bytes, limit: int) -> bytes:
    """Every member of a gzip body, refusing output past `limit` bytes. A body may hold several
    members (RFC 1952; `gzip.compress(a) + gzip.compress(b)`): all are decoded, never only the
    first, so nothing is acknowledged half-read."""
    parts: list[bytes] = []
    size, rest = 0, body
    for _ in range(MAX_GZIP_MEMBERS):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length bounds the output, so a small gzip bomb cannot blow up memory.
            part = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise InvalidRequest(f"body is not valid gzip: {exc}") from exc
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body is over the {limit}-byte limit")
        if not inflater.eof:
            raise InvalidRequest("gzip body is truncated")
        parts.append(part)
        rest = inflater.unused_data
        if not rest.strip(b"\0"):  # the end, or the zero padding some writers add
            return b"".join(parts)
    raise InvalidRequest(f"gzip body has more than {MAX_GZIP_MEMBERS} members")


def _error(
    content_type: str,
    http_status: int,
    code: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """An OTLP error response: a google.rpc.Status in the request's own encoding."""
    if content_type == PROTOBUF:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return Response(body, http_status, headers=headers, media_type=PROTOBUF)
    return Response(
        json.dumps({"code": code, "message": message}),
        http_status,
        headers=headers,
        media_type=JSON,
    )


def otlp_routes(
    pipeline: Pipeline, max_request_bytes: int, auth: TokenCheck | None = None
) -> list[Route]:
    """The OTLP/HTTP routes; with `auth`, each request must carry one of its bearer tokens."""
    check = auth if auth is not None and auth.enabled else None

    def endpoint(signal: str) -> Callable[[Request], Awaitable[Response]]:
        async def export(request: Request) -> Response:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if check is not None:
                # Checked before the body is read: a refused client costs no more than a header.
                reason = check.refusal(request.headers.get("authorization"))
                if reason is not None:
                    pipeline.stats.refuse("unauthenticated")
                    encoding = PROTOBUF if content_type == PROTOBUF else JSON
                    return _error(encoding, 401, _UNAUTHENTICATED, reason, challenge_headers())
            if content_type not in (PROTOBUF, JSON):
                pipeline.stats.refuse("media_type")
                return Response(
                    f"unsupported content type {content_type or '(none)'!r}: "
                    f"send {PROTOBUF} or {JSON}",
                    415,
                    media_type="text/plain",
                )
            try:
                body = await read_body(request, max_request_bytes)
                if not body:
                    raise InvalidRequest("empty request body")
                mended = 0
                with stage("decode"):
                    if content_type == PROTOBUF:
                        decoded, mended = read_protobuf(signal, body)
                        spooled: bytes | None = body
                    else:  # the spool keeps one encoding: JSON requests are stored as protobuf
                        decoded, spooled = decode_json(signal, body), None
                response = await take(pipeline, signal, decoded, spooled, mended)
            except PayloadTooLarge as exc:
                pipeline.stats.refuse("too_large")
                return _error(content_type, 413, _RESOURCE_EXHAUSTED, str(exc))
            except InvalidRequest as exc:
                pipeline.stats.refuse("invalid")
                return _error(content_type, 400, _INVALID_ARGUMENT, str(exc))
            except Overloaded as exc:
                retry_after = {"Retry-After": str(max(1, round(exc.retry_after)))}
                return _error(content_type, 429, _UNAVAILABLE, str(exc), retry_after)
            if content_type == PROTOBUF:
                return Response(response.SerializeToString(), 200, media_type=PROTOBUF)
            return Response(json_format.MessageToJson(response, indent=None), 200, media_type=JSON)

        return export

    return [
        Route("/v1/traces", endpoint("traces"), methods=["POST"]),
        Route("/v1/logs", endpoint("logs"), methods=["POST"]),
        Route("/v1/metrics", endpoint("metrics"), methods=["POST"]),
    ]
