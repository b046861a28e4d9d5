"""The one instrumentor design: a library instrumented when its modules load (a client library's
`Target`s patched, or a framework's tracing hooked).

`instrument(tracer_provider=..., capture_content=...)`: without a provider the global one is
used; `capture_content` defaults to `ASSAY_CAPTURE_CONTENT` (true).

One patch timing for every provider: a target is patched when the module that defines it
is imported (at once if it already is), through a post-import hook on that very module.
So `instrument()` imports no client library (a service that never uses litellm does not
pay for importing it), the application may import its clients before or after
`instrument()`, and a namespace package without `__init__.py` (mistralai 2 and later,
whose own import never runs a hook) is covered through the regular modules inside it.
A method taken before the patch (bound, or stored) keeps the unpatched function: such
methods are counted as their module is patched, and named in a warning.
"""

from __future__ import annotations

import functools
import gc
import logging
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.dependencies import DependencyConflict, get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from assay.instrumentation import config
from assay.instrumentation._spans import report_internal_error
from assay.instrumentation.providers.package import SUPPORTED

if TYPE_CHECKING:
    from assay.instrumentation.providers._call import CallWrappers

logger = logging.getLogger("assay.instrumentation")


@dataclass(frozen=True)
class Target:
    """A function to patch: the first of `methods` that `module.owner` defines itself.

    `owner` is a class name, or "" for a module-level function. A target whose module or
    owner does not exist (an older or newer client) is skipped.
    """

    module: str
    owner: str
    methods: tuple[str, ...]
    kind: str  # handed to the wrappers: which request and response readers apply
    is_async: bool = False  # a coroutine function (an async generator function is not one)


# The versions installed do not change while the process runs, and each lookup parses a
# distribution's METADATA (about 10 ms): looked up once, not on every `instrument()`.
@functools.cache
def tracer_version() -> str:
    try:
        from importlib.metadata import version

        return version("assay")
    except Exception:
        return "0"


@functools.cache
def _dependency_conflict(library: str) -> DependencyConflict | None:
    return get_dependency_conflicts(SUPPORTED[library])


class _Calibration:
    def method(self) -> None:
        """A method only its class refers to."""


@functools.cache
def references_of_a_method_nobody_took() -> int:
    """`sys.getrefcount(vars(owner)[name])` of a method only its class holds: a target's count
    beyond it (taken the same way: the count depends on how many frames hold the function) is
    a bound method (`create = client.chat.completions.create`, a `with_raw_response` built) or
    the function stored elsewhere, which patching the class cannot reach."""
    return sys.getrefcount(vars(_Calibration)["method"])


def _ours(attribute: object) -> bool:
    """An alias of a function Assay patched already (`create = Messages.create` in a class
    made after the patch holds the patched one): wrapping it again would make two spans."""
    wrapper = getattr(attribute, "_self_wrapper", None)
    return getattr(wrapper, "__module__", "").startswith("assay.instrumentation.")


class LibraryInstrumentor(BaseInstrumentor):
    """Instruments one library when the modules it names load: the one patch timing.

    A subclass names its `library` (`package.SUPPORTED` has its versions) and says what to do
    with each of its `modules()` once imported (`_on_module`), what instrumenting starts
    (`_start`, with the tracer and the content setting) and what uninstrumenting undoes (`_stop`).
    """

    library: ClassVar[str]

    def __init__(self) -> None:
        # BaseInstrumentor is a singleton whose __init__ runs on every construction.
        if not hasattr(self, "_hooked"):
            self._hooked: set[str] = set()  # modules whose import hook is pending
            self._active = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return SUPPORTED[self.library]

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        return _dependency_conflict(self.library)

    def modules(self) -> Iterable[str]:
        """The modules `_on_module` is called with when they are imported."""
        raise NotImplementedError

    def _start(self, tracer: trace.Tracer, capture_content: bool) -> None:
        raise NotImplementedError

    def _on_module(self, module: ModuleType) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            f"assay.instrumentation.{self.library}",
            tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        self._start(tracer, bool(capture))
        self._active = True
        for name in dict.fromkeys(self.modules()):
            module = sys.modules.get(name)
            if module is not None:
                self._on_import(module)
            elif name not in self._hooked:
                # A hook cannot be removed: one per module, for this singleton's lifetime.
                self._hooked.add(name)
                wrapt.register_post_import_hook(self._on_import, name)

    def _on_import(self, module: ModuleType) -> None:
        # Runs inside the application's import statement, which must never fail because of
        # Assay; after `uninstrument()` it does nothing.
        self._hooked.discard(module.__name__)
        if not self._active:
            return
        try:
            self._on_module(module)
        except Exception:
            report_internal_error(f"instrumenting {self.library}")

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        self._stop()


class ClientInstrumentor(LibraryInstrumentor):
    """Patches a client library's targets with its wrappers.

    A subclass names its `wrappers` class, which declares everything else (the library,
    the targets; `package.SUPPORTED` the versions); `after_patching` / `after_unpatching` handle
    what patching a class misses (aliases bound when the library was imported).
    """

    wrappers: ClassVar[type[CallWrappers]]

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[Any, str]] = []
            self._wrappers: CallWrappers | None = None

    @property
    def library(self) -> str:  # type: ignore[override]
        return self.wrappers.library

    def modules(self) -> Iterable[str]:
        return (target.module for target in self.wrappers.targets)

    def after_patching(self) -> None:
        """Hook for what patching the targets misses; runs after each module is patched."""

    def after_unpatching(self) -> None:
        """Undoes `after_patching`."""

    def _start(self, tracer: trace.Tracer, capture_content: bool) -> None:
        self._wrappers = self.wrappers(tracer, capture_content)

    def _on_module(self, module: ModuleType) -> None:
        wrappers = self._wrappers
        if wrappers is None:
            return
        patched = self._patch(module, wrappers)
        self.after_patching()
        taken = self._taken_methods(patched, wrappers)
        if taken:
            # Only a module imported before `instrument()` can have methods taken already.
            logger.warning(
                "Assay cannot trace %s methods taken before instrument() (%s): each was bound "
                "or stored before it was patched (`create = client.chat.completions.create`, "
                "`with_raw_response` or `with_streaming_response` used, the method handed to "
                "a library), and calls through it make no span. Call instrument() (or import "
                "assay.instrumentation.auto) before that.",
                self.library,
                ", ".join(f"{name}: {count}" for name, count in taken.items()),
            )

    def _patch(self, module: ModuleType, wrappers: CallWrappers) -> list[tuple[Any, str]]:
        """Patch the targets `module` defines; returns the class methods patched."""
        patched = []
        for target in wrappers.targets:
            if target.module != module.__name__:
                continue
            owner = getattr(module, target.owner, None) if target.owner else module
            if owner is None:
                continue
            names = vars(owner)
            method = next((name for name in target.methods if name in names), None)
            # A class re-exported under a second path is patched once.
            if method is None or (owner, method) in self._patched or _ours(names[method]):
                continue
            wrapt.wrap_function_wrapper(
                owner, method, wrappers.wrapper(target.kind, target.is_async)
            )
            self._patched.append((owner, method))
            # A module-level function is referred to wherever it was imported: not counted.
            if target.owner:
                patched.append((owner, method))
        return patched

    def _taken_methods(
        self, patched: list[tuple[Any, str]], wrappers: CallWrappers
    ) -> dict[str, int]:
        """Of the methods just patched, those something took before, and how often."""

        def count() -> dict[str, int]:
            return {
                f"{owner.__name__}.{name}": self._taken(owner, name, wrappers)
                for owner, name in patched
            }

        counts = count()
        if any(counts.values()):
            # A client dropped but not collected yet (clients and their resources are cycles)
            # still holds its bound methods, taken by nobody alive. Rare: paid only here.
            gc.collect()
            counts = count()
        return {name: taken for name, taken in counts.items() if taken}

    @staticmethod
    def _taken(owner: Any, name: str, wrappers: CallWrappers) -> int:
        """References to the function patched as `owner.name` beyond its patch's and those of
        the targets that hold it too: the aliases among the targets (a class whose
        `create = Messages.create`) are patched, not taken."""
        # Counted first, as the calibration counts (the count depends on what holds it here):
        # the patch holds the function as its class did.
        beyond = sys.getrefcount(vars(owner)[name].__wrapped__)
        beyond -= references_of_a_method_nobody_took()
        function = vars(owner)[name].__wrapped__
        holders = set()
        for target in wrappers.targets:
            module = sys.modules.get(target.module)
            holder = getattr(module, target.owner, None) if target.owner else None
            for method in target.methods if holder is not None else ():
                attribute = vars(holder).get(method)
                if attribute is function or getattr(attribute, "__wrapped__", None) is function:
                    holders.add((id(holder), method))  # a class under two paths counts once
        return max(beyond - max(len(holders) - 1, 0), 0)

    def _stop(self) -> None:
        if self._wrappers is not None:
            self._wrappers.enabled = False
            self._wrappers = None
        for owner, method in reversed(self._patched):
            unwrap(owner, method)
        self._patched.clear()
        self.after_unpatching()
