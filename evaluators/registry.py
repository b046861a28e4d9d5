"""Evaluators by name: the presets' factories and the users' `@evaluator` functions.

The collector resolves the names of `assay.yaml` here (`evaluators: [json_valid, pii]`).
A preset is a factory (`contains("refund")`, `latency_budget(ms=2000)`); its name alone
gives its default instance, built on first use and then shared, when the factory has
defaults for every parameter. `get_evaluator(name, **options)` calls the factory with
options, for presets that need them. A preset that was renamed (its old name would say the
opposite of its value, as `pii` did) still answers to the old name, with a deprecation warning.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

from assay.evaluators.base import Evaluator

__all__ = [
    "UnknownEvaluatorError",
    "get_evaluator",
    "is_preset",
    "preset",
    "preset_names",
    "register",
    "registered",
    "renamed",
]

_log = logging.getLogger("assay.evaluators")

Factory = Callable[..., Evaluator]
F = TypeVar("F", bound=Factory)

_presets: dict[str, Factory] = {}
_defaults: dict[str, Evaluator] = {}
_registered: dict[str, Evaluator] = {}
_renamed: dict[str, str] = {}  # a preset's former name → its name now
# Evaluation workers of the collector may resolve names from several threads.
_lock = threading.RLock()


class UnknownEvaluatorError(KeyError):
    """No evaluator has this name."""

    def __str__(self) -> str:  # KeyError's own str() quotes the message like a key
        return str(self.args[0]) if self.args else ""


def preset(factory: F) -> F:
    """Register a preset factory under its function name (used by the preset modules)."""
    _presets[factory.__name__] = factory
    return factory


def renamed(new_name: str, *, note: str = "") -> Callable[[F], F]:
    """Keep a renamed preset's old factory working: calling it, or asking for its old name,
    warns (DeprecationWarning, and the log, since the collector resolves assay.yaml's names)
    and gives the preset `new_name` stands for; the old factory picks among new ones."""

    def keep(factory: F) -> F:
        old_name = factory.__name__

        @functools.wraps(factory)
        def warned(*args: Any, **kwargs: Any) -> Evaluator:
            message = (
                f"evaluator {old_name!r} is deprecated: use {new_name!r}{note}, which scores 1 "
                "for the good outcome (every Assay evaluator is higher-is-better)"
            )
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            _log.warning(message)
            return factory(*args, **kwargs)

        _renamed[old_name] = new_name
        _presets[old_name] = warned
        return cast(F, warned)

    return keep


def is_preset(obj: Any) -> bool:
    """True for a preset factory (`exact_match`, not `exact_match()`), the old names' too."""
    return any(obj is factory for factory in _presets.values())


def register(evaluator: Evaluator) -> Evaluator:
    """Make `evaluator` available by its name; a later one with the same name replaces it."""
    with _lock:
        earlier = _registered.get(evaluator.name)
        if evaluator.name in _presets:
            _log.warning("evaluator %r replaces the preset of that name", evaluator.name)
        elif earlier is not None and _origin(earlier) != _origin(evaluator):
            _log.warning("evaluator %r replaces an earlier one of that name", evaluator.name)
        _registered[evaluator.name] = evaluator
    return evaluator


def _origin(evaluator: Evaluator) -> str:
    fn = getattr(evaluator, "fn", None)
    target = fn if fn is not None else type(evaluator)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"


def get_evaluator(name: str, **options: Any) -> Evaluator:
    """The evaluator called `name`: a registered one, else a preset (with `options`)."""
    with _lock:
        found = _registered.get(name)
        if found is not None:
            if options:
                raise TypeError(f"evaluator {name!r} takes no options; it is already configured")
            return found
        factory = _presets.get(name)
        if factory is None:
            raise UnknownEvaluatorError(
                f"no evaluator named {name!r}; known: {', '.join(_names())}. "
                "Import the module that defines your own before asking for it."
            )
        if options:
            return factory(**options)
        default = _defaults.get(name)
        if default is None:
            missing = _required_parameters(factory)
            if missing:
                raise TypeError(
                    f"evaluator {name!r} needs {', '.join(missing)}: "
                    f"get_evaluator({name!r}, {missing[0]}=...)"
                )
            default = _defaults[name] = factory()
        return default


def preset_names() -> list[str]:
    """The presets' names (current ones: renamed presets answer to their old names too)."""
    with _lock:
        return sorted(set(_presets) - set(_renamed))


def registered() -> list[str]:
    """Every name `get_evaluator` knows, sorted."""
    with _lock:
        return _names()


def _names() -> list[str]:
    return sorted({*_presets, *_registered} - set(_renamed))


def _required_parameters(factory: Factory) -> list[str]:
    return [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
