"""The client library versions each provider instrumentation supports."""

from __future__ import annotations

# Chat completions (`create`, `parse`, the `stream` helper) and embeddings keep the same
# class paths from 1.40 through 3.x; `parse` left `beta` in 1.92 and is patched where it is.
OPENAI_INSTRUMENTS: tuple[str, ...] = ("openai >= 1.40",)

# botocore gained the Bedrock Converse API in 1.34.116; `_make_api_call` is older than that.
BEDROCK_INSTRUMENTS: tuple[str, ...] = ("botocore >= 1.34.116",)

# `completion` and `acompletion` keep their module-level names in litellm.main throughout 1.x.
LITELLM_INSTRUMENTS: tuple[str, ...] = ("litellm >= 1.40",)

# What `instrument()` walks: (the client library's import name, "module:Class" of its
# instrumentor). A library that is not installed is skipped silently.
INSTRUMENTORS: tuple[tuple[str, str], ...] = (
    ("openai", "assay.instrumentation.providers.openai:OpenAIInstrumentor"),
    ("botocore", "assay.instrumentation.providers.bedrock:BedrockInstrumentor"),
    ("litellm", "assay.instrumentation.providers.litellm:LiteLLMInstrumentor"),
)
