"""Ambient attributes stamped on every LLM span: `context(...)` and the contextvar behind it.

The attributes live in a `contextvars.ContextVar`, so what holds is what holds for
contextvars:

- Code running inside `with context(...)` in the same thread sees them, however deep.
- asyncio tasks copy the current context when they are created, so tasks started inside
  the block (`asyncio.gather`, `create_task`, `TaskGroup`) see them, even after the block
  has exited. `asyncio.to_thread` copies the context too.
- A new thread starts with an empty context: a plain `threading.Thread`, and the workers
  of `concurrent.futures.ThreadPoolExecutor` and `loop.run_in_executor`, do NOT see them.
  Hand the context over explicitly, one copy per task (a `Context` cannot be entered by
  two threads at once)::

      with context(user_id="u1"):
          future = pool.submit(contextvars.copy_context().run, work, arg)
          thread = threading.Thread(target=contextvars.copy_context().run, args=(work,))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType

from assay.instrumentation import semconv

# What an OTel attribute on our spans can hold; a subset of `opentelemetry.util.types`.
AmbientValue = str | tuple[str, ...]

_EMPTY: Mapping[str, AmbientValue] = MappingProxyType({})
# Keyed by attribute name (not by `context()` argument) so the span builder merges it as is.
_AMBIENT: ContextVar[Mapping[str, AmbientValue]] = ContextVar("assay_context", default=_EMPTY)


def current_attributes() -> Mapping[str, AmbientValue]:
    """The attributes the innermost `context(...)` stamps on LLM spans (empty outside one)."""
    return _AMBIENT.get()


class CallContext:
    """Stamps its attributes on every LLM span opened while it is active.

    Use with `with` or `async with`. Nested contexts merge: keys given by the inner one
    win, keys it leaves out are inherited (this holds for `tags` too: the inner list
    replaces the outer one). The same object may be entered again once it has exited.
    """

    __slots__ = ("_attributes", "_tokens")

    def __init__(self, attributes: Mapping[str, AmbientValue]) -> None:
        self._attributes = attributes
        self._tokens: list[Token[Mapping[str, AmbientValue]]] = []

    @property
    def attributes(self) -> Mapping[str, AmbientValue]:
        """The attributes this context adds (by attribute name), before merging."""
        return self._attributes

    def __enter__(self) -> CallContext:
        merged = {**_AMBIENT.get(), **self._attributes}
        self._tokens.append(_AMBIENT.set(MappingProxyType(merged)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _AMBIENT.reset(self._tokens.pop())

    async def __aenter__(self) -> CallContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)


def context(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    prompt_name: str | None = None,
    prompt_version: str | int | None = None,
    tags: Iterable[str] | None = None,
    experiment_id: str | None = None,
    dataset_item_id: str | None = None,
) -> CallContext:
    """Stamp these attributes on every LLM span opened inside the returned context manager.

    `None` means "not given": the value of an enclosing context (if any) stays. The
    argument names are the keys of `semconv.CONTEXT_ATTRIBUTES`.
    """
    given = {
        "user_id": user_id,
        "session_id": session_id,
        "prompt_name": prompt_name,
        "prompt_version": prompt_version,
        "experiment_id": experiment_id,
        "dataset_item_id": dataset_item_id,
    }
    attributes: dict[str, AmbientValue] = {
        semconv.CONTEXT_ATTRIBUTES[key]: str(value)
        for key, value in given.items()
        if value is not None
    }
    if tags is not None:
        if isinstance(tags, str):  # a lone string would otherwise become one tag per letter
            tags = (tags,)
        attributes[semconv.CONTEXT_ATTRIBUTES["tags"]] = tuple(str(tag) for tag in tags)
    return CallContext(MappingProxyType(attributes))
