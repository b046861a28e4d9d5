"""Instrumentation settings read from `ASSAY_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

CAPTURE_CONTENT_ENV = "ASSAY_CAPTURE_CONTENT"

_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def capture_content_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether prompts and responses go on spans: `ASSAY_CAPTURE_CONTENT`, default true.

    Only an explicit "false", "0", "no" or "off" (any case) turns capture off, so a typo
    never silently hides the content a user expects to see.
    """
    value = (os.environ if environ is None else environ).get(CAPTURE_CONTENT_ENV)
    if value is None:
        return True
    return value.strip().lower() not in _FALSE_WORDS


EXIT_FLUSH_TIMEOUT_ENV = "ASSAY_EXIT_FLUSH_TIMEOUT"
DEFAULT_EXIT_FLUSH_TIMEOUT = 5.0  # seconds


def exit_flush_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """How long, in seconds, the exit flush may hold a process up: `ASSAY_EXIT_FLUSH_TIMEOUT`.

    Default 5 s: a healthy collector takes a full queue (2,048 spans) in about a second, and a
    script or a serverless function must not wait out the exporter's retries (10 s for each
    batch of 512) against a collector that is down or does not answer. A value that is not a
    non-negative number is ignored (the default applies), as a typo must not make exits hang.
    """
    value = (os.environ if environ is None else environ).get(EXIT_FLUSH_TIMEOUT_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_EXIT_FLUSH_TIMEOUT
    return seconds if seconds >= 0 and seconds != float("inf") else DEFAULT_EXIT_FLUSH_TIMEOUT
