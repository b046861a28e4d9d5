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
from collections.abc import Awaitable, Callable
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


def _on_chunk(call: LLMCall, add: Callable[[Any], None], chunk: Any) -> None:
    if call.time_to_first_chunk is None:
        call.mark_first_chunk()
    try:
        add(chunk)
    except Exception:
        report_internal_error("reading a stream chunk")


def _hidden(hide: Callable[[Any], bool], chunk: Any) -> bool:
    try:
        return hide(chunk)
    except Exception:
        report_internal_error("reading a stream chunk")
        return False  # when in doubt, the application gets it


# Each attribute read on a wrapt proxy costs about 0.3 µs (its C `getattro` runs for
# `_self_*` names too), more than the chunk's own bookkeeping. So the per-chunk path
# reads one attribute: a closure over the wrapped stream's method, the call and the
# accumulator that fetches the next chunk and accounts for it.


def _sync_chunk_reader(
    next_chunk: Callable[[], Any],
    call: LLMCall,
    add: Callable[[Any], None],
    hide: Callable[[Any], bool] | None,
) -> Callable[[], Any]:
    def read() -> Any:
        chunk = next_chunk()
        _on_chunk(call, add, chunk)
        return chunk

    def read_shown() -> Any:
        assert hide is not None
        while True:
            chunk = next_chunk()
            _on_chunk(call, add, chunk)
            if not _hidden(hide, chunk):
                return chunk

    return read if hide is None else read_shown


def _async_chunk_reader(
    next_chunk: Callable[[], Awaitable[Any]],
    call: LLMCall,
    add: Callable[[Any], None],
    hide: Callable[[Any], bool] | None,
) -> Callable[[], Awaitable[Any]]:
    async def read() -> Any:
        chunk = await next_chunk()
        _on_chunk(call, add, chunk)
        return chunk

    async def read_shown() -> Any:
        assert hide is not None
        while True:
            chunk = await next_chunk()
            _on_chunk(call, add, chunk)
            if not _hidden(hide, chunk):
                return chunk

    return read if hide is None else read_shown


class _StreamProxyBase(wrapt.ObjectProxy):
    # wrapt stores attributes named `_self_*` on the proxy instead of the wrapped object.
    _self_call: LLMCall
    _self_accumulator: StreamAccumulator

    def __init__(self, stream: Any, call: LLMCall, accumulator: StreamAccumulator) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_accumulator = accumulator

    def _self_finish(self, error: BaseException | None = None, *, complete: bool = False) -> None:
        call = self._self_call
        if call.ended:
            return
        try:
            attributes = self._self_accumulator.attributes(call)
            if not complete and error is None:
                attributes[semconv.STREAM_CLOSED_EARLY] = True
        except Exception:
            report_internal_error("finishing a stream")
            attributes = {}
        call.end(attributes, error)

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
        self._self_read = _sync_chunk_reader(stream.__next__, call, accumulator.add, hide)

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            return self._self_read()  # the next chunk, accounted for
        except StopIteration:
            self._self_finish(complete=True)
            raise
        except BaseException as error:
            self._self_finish(error)
            raise

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
        self._self_read = _async_chunk_reader(stream.__anext__, call, accumulator.add, hide)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._self_read()  # the next chunk, accounted for
        except StopAsyncIteration:
            self._self_finish(complete=True)
            raise
        except BaseException as error:
            self._self_finish(error)
            raise

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
