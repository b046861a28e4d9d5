"""The client library versions each provider instrumentation supports."""

from __future__ import annotations

# Chat completions (`create`, `parse`, the `stream` helper) and embeddings keep the same
# class paths from 1.40 through 3.x; `parse` left `beta` in 1.92 and is patched where it is.
OPENAI_INSTRUMENTS: tuple[str, ...] = ("openai >= 1.40",)

# Messages `create` / `parse` / `stream` (a MessageStream reading `_raw_stream`) and the beta twins.
ANTHROPIC_INSTRUMENTS: tuple[str, ...] = ("anthropic >= 0.40",)
