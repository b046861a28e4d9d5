"""Raw responses of the Stainless-built clients (openai, anthropic): the call's span waits for
the body the application reads itself.

`with_raw_response.create(stream=True)` and every `with_streaming_response` call return a
response object whose body is not read yet; the answer (a stream of chunks, or a message) is
whatever the application's `parse()` makes of it. So such a call is *deferred*: its span stays
open, `parse()` (patched on the client's response classes) hands the parsed stream to the same
stream proxy a plain stream gets, or reads a parsed message as a plain call would, and the span
ends with the answer. A body read in other ways (`iter_lines()`, `read()`, the HTTP response)
ends the span without usage, when the response is closed (`with_streaming_response`'s block)
or let go. What the application receives is unchanged: the very response object, and from
`parse()` the client's stream behind the proxy every plain stream has.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from assay.instrumentation._spans import LLMCall, report_internal_error
from assay.instrumentation._streams import end_stream_early
from assay.instrumentation.providers._instrumentor import Target

if TYPE_CHECKING:
    from assay.instrumentation.providers._call import CallStart, CallWrappers, Wrapper

PARSE = "raw_parse"
CLOSE = "raw_close"


def targets(library: str) -> tuple[Target, ...]:
    """The response classes' `parse` and `close` of a Stainless-built `library`."""
    response = f"{library}._response"
    legacy = f"{library}._legacy_response"  # what `with_raw_response` returns (openai)
    return (
        Target(response, "APIResponse", ("parse",), PARSE),
        Target(response, "AsyncAPIResponse", ("parse",), PARSE, is_async=True),
        Target(legacy, "LegacyAPIResponse", ("parse",), PARSE),
        Target(response, "APIResponse", ("close",), CLOSE),
        Target(response, "AsyncAPIResponse", ("close",), CLOSE, is_async=True),
    )


def is_raw_response(result: Any) -> bool:
    """A client's raw response object (its body the application's to read)."""
    return hasattr(result, "http_response") and hasattr(result, "parse")


class _Deferred:
    """A call whose span waits for the application's `parse()` of its raw response."""

    __slots__ = ("call", "start", "stream")

    def __init__(self, call: LLMCall, start: CallStart) -> None:
        self.call = call
        self.start = start
        self.stream: Any = None  # the proxy handed out by parse(), handed out again

    def let_go(self, closed: bool = False) -> None:
        # A body parse() never read ends the span here, without usage. A stream parse() handed
        # out ends with that stream, or early when its response is closed (the body is gone);
        # a response merely collected leaves it be: `create(...).parse()` drops the response
        # and keeps the stream.
        if self.stream is not None:
            if closed:
                end_stream_early(self.stream)
            return
        attributes: dict[str, Any] = {}
        self.call.add_usage(attributes, self.start.model, None, None)
        self.call.end(attributes)


class RawResponses:
    """The deferred calls of one provider's wrappers, keyed by their response objects."""

    def __init__(self, wrappers: CallWrappers) -> None:
        self._wrappers = wrappers
        self._pending: weakref.WeakKeyDictionary[Any, _Deferred] = weakref.WeakKeyDictionary()

    def defer(self, call: LLMCall, start: CallStart, response: Any) -> Any:
        """Leave the span of `call` open until `response` is parsed, closed or let go."""
        deferred = _Deferred(call, start)
        self._pending[response] = deferred
        weakref.finalize(response, deferred.let_go)
        return response

    def _parsed(self, response: Any, parsed: Any) -> Any:
        deferred = self._pending.get(response)
        if deferred is None:
            return parsed
        try:
            if deferred.stream is not None:
                # parse() is cached: the same stream again gets the same proxy.
                same = parsed is deferred.stream.__wrapped__
                return deferred.stream if same else parsed
            call, start = deferred.call, deferred.start
            if call.ended:
                return parsed
            if start.stream:
                if not (hasattr(parsed, "__next__") or hasattr(parsed, "__anext__")):
                    return parsed  # parse(to=...) of something else: not the answer
                deferred.stream = self._wrappers.stream(call, start, parsed)
                return deferred.stream
            call.end(self._wrappers.response_attributes(call, start, parsed))
        except Exception:
            report_internal_error(f"reading a {self._wrappers.library} raw response")
        return parsed

    def _closed(self, response: Any) -> None:
        deferred = self._pending.get(response)
        if deferred is None:
            return
        try:
            deferred.let_go(closed=True)
        except Exception:
            report_internal_error(f"reading a {self._wrappers.library} raw response")

    def wrapper(self, kind: str, is_async: bool) -> Wrapper:
        """The wrappers of the response classes' `parse` and `close`."""
        if kind == PARSE:
            if is_async:

                async def async_parse(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                    return self._parsed(instance, await wrapped(*args, **kwargs))

                return async_parse

            def parse(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return self._parsed(instance, wrapped(*args, **kwargs))

            return parse
        if is_async:

            async def async_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                try:
                    return await wrapped(*args, **kwargs)
                finally:
                    self._closed(instance)

            return async_close

        def close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            try:
                return wrapped(*args, **kwargs)
            finally:
                self._closed(instance)

        return close
