"""The stream wrapper shared by providers: chunks pass through untouched, the span ends once.

A provider hands its client's stream object, the call's `LLMCall` and a
`StreamAccumulator` (which reads what the span needs from each chunk) to
`SyncStreamProxy` or `AsyncStreamProxy`. The proxy is a `wrapt.ObjectProxy`: every
attribute, `isinstance` check and method of the client's stream still works, and each
chunk the user receives is the very object the client produced. A `hide` predicate keeps
back chunks the application did not ask for (the usage chunk Assay requested on its
behalf): they are read for the span and never handed over.

The span ends exactly once, on whichever comes first: the stream is exhausted, it
raises (recorded as the call's error, then re-raised unchanged), `close()`/`aclose()`,
context-manager exit, or garbage collection of an unfinished stream. The last three
mark the span `STREAM_CLOSED_EARLY`: the consumer stopped before the API finished.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Protocol

import wrapt

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error


class ResponseState:
    """What every stream accumulator keeps: the request's model, whether content is captured,
    and the response's id and model as the stream states them."""

    __slots__ = ("_capture", "_model", "_request_model", "_response_id")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._model: str | None = None

    @property
    def model(self) -> str | None:
        """The model to price: the response's, else the request's."""
        return self._model or self._request_model

    def identity(self, attributes: Attributes) -> None:
        """The response's id and model, those the stream stated."""
        if self._response_id:
            attributes[semconv.RESPONSE_ID] = self._response_id
        if self._model:
            attributes[semconv.RESPONSE_MODEL] = self._model


class StreamAccumulator(Protocol):
    """Provider-specific reader of stream chunks."""

    def add(self, chunk: Any) -> None:
        """Take what the span needs from one chunk; keep it cheap, it runs per chunk."""

    def attributes(self, call: LLMCall) -> Attributes:
        """The response attributes for the span (usage through `call.add_usage`)."""
        ...


def _hidden(hide: Callable[[Any], bool], chunk: Any) -> bool:
    try:
        return hide(chunk)
    except Exception:
        report_internal_error("reading a stream chunk")
        return False  # when in doubt, the application gets it


def _finish(
    call: LLMCall,
    accumulator: StreamAccumulator,
    error: BaseException | None = None,
    *,
    complete: bool = False,
) -> None:
    if call.ended:
        return
    try:
        attributes = accumulator.attributes(call)
        if not complete and error is None:
            attributes[semconv.STREAM_CLOSED_EARLY] = True
    except Exception:
        report_internal_error("finishing a stream")
        attributes = {}
    call.end(attributes, error)


# The per-chunk path is a stream's cost: each Python frame entered per chunk costs about a
# microsecond, and each attribute read on a wrapt proxy 0.3 µs (its C `getattro` runs for
# `_self_*` names too). So each proxy reads its chunks in one generator that holds what it
# needs in locals: per chunk it resumes, asks the client's stream for the next chunk and
# hands that to the accumulator. A `for` loop over the proxy gets a generator of its own that
# keeps the proxy alive (`keep`: the loop may hold the only reference); `next()` on the proxy
# resumes one the proxy holds, which must not refer back to it (a cycle would leave an
# abandoned stream's span to the cycle collector, not to its last reference).


def _sync_chunks(
    next_chunk: Callable[[], Any],
    call: LLMCall,
    accumulator: StreamAccumulator,
    hide: Callable[[Any], bool] | None,
    keep: object = None,
) -> Iterator[Any]:
    add = accumulator.add
    while True:
        try:
            chunk = next_chunk()
        except StopIteration:
            _finish(call, accumulator, complete=True)
            return
        except BaseException as error:
            _finish(call, accumulator, error)
            raise
        if call.time_to_first_chunk is None:
            call.mark_first_chunk()
        try:
            add(chunk)
        except Exception:
            report_internal_error("reading a stream chunk")
        # GeneratorExit at the yield (the generator let go) ends nothing: the proxy's close(),
        # context exit or finalizer ends the span.
        if hide is None or not _hidden(hide, chunk):
            yield chunk


async def _async_chunks(
    next_chunk: Callable[[], Awaitable[Any]],
    call: LLMCall,
    accumulator: StreamAccumulator,
    hide: Callable[[Any], bool] | None,
    keep: object = None,
) -> AsyncIterator[Any]:
    add = accumulator.add
    while True:
        try:
            chunk = await next_chunk()
        except StopAsyncIteration:
            _finish(call, accumulator, complete=True)
            return
        except BaseException as error:
            _finish(call, accumulator, error)
            raise
        if call.time_to_first_chunk is None:
            call.mark_first_chunk()
        try:
            add(chunk)
        except Exception:
            report_internal_error("reading a stream chunk")
        if hide is None or not _hidden(hide, chunk):
            yield chunk


class _StreamProxyBase(wrapt.ObjectProxy):
    # wrapt stores attributes named `_self_*` on the proxy instead of the wrapped object.
    _self_call: LLMCall
    _self_accumulator: StreamAccumulator

    def __init__(self, stream: Any, call: LLMCall, accumulator: StreamAccumulator) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_accumulator = accumulator

    def _self_finish(self, error: BaseException | None = None, *, complete: bool = False) -> None:
        _finish(self._self_call, self._self_accumulator, error, complete=complete)

    def __del__(self) -> None:
        # An abandoned stream still reports its call. Never raise from a finalizer.
        with contextlib.suppress(Exception):
            self._self_finish()


class SyncStreamProxy(_StreamProxyBase):
    """Wraps a synchronous stream of chunks."""

    def __init__(
        self,
        stream: Any,
        call: LLMCall,
        accumulator: StreamAccumulator,
        hide: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(stream, call, accumulator)
        self._self_next = stream.__next__
        self._self_hide = hide
        self._self_chunks = _sync_chunks(self._self_next, call, accumulator, hide)

    def __iter__(self) -> Iterator[Any]:
        return _sync_chunks(
            self._self_next, self._self_call, self._self_accumulator, self._self_hide, self
        )

    def __next__(self) -> Any:
        return next(self._self_chunks)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self  # not the client's stream: iterating it must go through the proxy

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, traceback)
        finally:
            self._self_finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finish()


class AsyncStreamProxy(_StreamProxyBase):
    """Wraps an asynchronous stream of chunks."""

    def __init__(
        self,
        stream: Any,
        call: LLMCall,
        accumulator: StreamAccumulator,
        hide: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(stream, call, accumulator)
        self._self_next = stream.__anext__
        self._self_hide = hide
        self._self_chunks = _async_chunks(self._self_next, call, accumulator, hide)

    def __aiter__(self) -> AsyncIterator[Any]:
        return _async_chunks(
            self._self_next, self._self_call, self._self_accumulator, self._self_hide, self
        )

    def __anext__(self) -> Awaitable[Any]:
        return self._self_chunks.__anext__()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, traceback)
        finally:
            self._self_finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finish()

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_finish()


def end_stream_early(stream: object) -> None:
    """End the span of a stream proxy whose consumer stopped reading it (closed early).

    For helpers that wrap a client stream and close its HTTP response without closing the
    stream object itself. Anything that is not a stream proxy, or a finished one, is left.
    """
    if isinstance(stream, _StreamProxyBase):
        stream._self_finish()
