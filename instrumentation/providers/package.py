"""The client library versions each provider instrumentation supports, and where each lives."""

from __future__ import annotations

# By the provider's library name (its wrappers' `library`): the requirements that
# `instrumentation_dependencies()` reports to OpenTelemetry's instrumentor.
SUPPORTED: dict[str, tuple[str, ...]] = {
    # Chat completions (`create`, `parse`, the `stream` helper) and embeddings keep the same
    # class paths from 1.40 through 3.x; `parse` left `beta` in 1.92 and is patched where it is.
    "openai": ("openai >= 1.40",),
    # botocore gained the Bedrock Converse API in 1.34.116; `_make_api_call` is older than that.
    "bedrock": ("botocore >= 1.34.116",),
    # `completion` and `acompletion` keep their module-level names in litellm.main throughout 1.x.
    "litellm": ("litellm >= 1.40",),
    # `models._generate_content(_stream)` (one per HTTP request) exist from 1.0 through 3.x;
    # older or newer clients without them get the public methods patched instead.
    "google-genai": ("google-genai >= 1.0",),
    # `chat.complete/stream(_async)` live in `mistralai.chat` in 1.x, `mistralai.client.chat` in
    # 2.x and later.
    "mistralai": ("mistralai >= 1.0",),
    # The v2 chat API (`ClientV2.chat`, `chat_stream`) arrived in 5.9.
    "cohere": ("cohere >= 5.9",),
    # `Client.chat/generate` with `tools` and pydantic responses since 0.4.
    "ollama": ("ollama >= 0.4",),
    # Messages `create` / `parse` / `stream` (a MessageStream reading `_raw_stream`) and the
    # beta twins.
    "anthropic": ("anthropic >= 0.40",),
    # What the processor reads (`add_trace_processor`, each span data's `type` and fields, trace
    # `group_id`, span `error`) is all in the 0.1.0 wheel already; tested on 0.24.
    "openai-agents": ("openai-agents >= 0.1",),
    # `ClientSession.call_tool(name, arguments, ...)` returning a `CallToolResult` (`isError`)
    # in `mcp.client.session` since 1.0.
    "mcp": ("mcp >= 1.0",),
}

# What `instrument()` walks: (the client library's import name, "module:Class" of its
# instrumentor). A library that is not installed is skipped silently.
INSTRUMENTORS: tuple[tuple[str, str], ...] = (
    ("openai", "assay.instrumentation.providers.openai:OpenAIInstrumentor"),
    ("anthropic", "assay.instrumentation.providers.anthropic:AnthropicInstrumentor"),
    ("botocore", "assay.instrumentation.providers.bedrock:BedrockInstrumentor"),
    ("litellm", "assay.instrumentation.providers.litellm:LiteLLMInstrumentor"),
    ("google.genai", "assay.instrumentation.providers.google_genai:GoogleGenAIInstrumentor"),
    ("mistralai", "assay.instrumentation.providers.mistral:MistralInstrumentor"),
    ("cohere", "assay.instrumentation.providers.cohere:CohereInstrumentor"),
    ("ollama", "assay.instrumentation.providers.ollama:OllamaInstrumentor"),
    ("agents", "assay.instrumentation.providers.openai_agents:OpenAIAgentsInstrumentor"),
    ("mcp", "assay.instrumentation.providers.mcp_client:MCPClientInstrumentor"),
)
