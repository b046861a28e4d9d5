"""Reading a JSON request body for the API: size, syntax and nesting are checked, and each
refusal is a BadBody whose message says what is wrong (the endpoints answer it with a 400)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

# Deeper than any dataset item or experiment parameter needs, and far from Python's recursion
# limit, which the code that later walks the value (rendering, canonical JSON) must not reach.
MAX_JSON_DEPTH = 64


class BadBody(ValueError):
    """The request body is not JSON the API can take; the message says why, `status` is the
    HTTP answer (400, or 413 when it is too large)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def nesting_depth(value: Any) -> int:
    """How deep lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((child, depth) for child in item)
    return deepest


async def json_body(request: Request) -> Any:
    """The request's JSON value; BadBody when the body is not JSON or nests too deeply."""
    limit: int = request.app.state.settings.max_request_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadBody(f"the body is {declared} bytes, over the {limit}-byte limit", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadBody(f"the body is over the {limit}-byte limit", 413)
        chunks.append(chunk)
    try:
        value = json.loads(b"".join(chunks))
    except RecursionError:
        raise BadBody(f"the body's JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise BadBody(f"the body is not JSON: {exc}") from exc
    if nesting_depth(value) > MAX_JSON_DEPTH:
        raise BadBody(f"the body's JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    return value
