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
