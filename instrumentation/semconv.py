"""Every span attribute name Assay writes or reads: the one place they are spelled."""

from __future__ import annotations

from enum import Enum
from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import server_attributes as _server

# --- OpenTelemetry GenAI semantic conventions -------------------------------------------------
OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = _gen_ai.GEN_AI_PROVIDER_NAME
SYSTEM: Final = _gen_ai.GEN_AI_SYSTEM  # the older name of the provider attribute, still read
REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
REQUEST_MAX_TOKENS: Final = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
REQUEST_TEMPERATURE: Final = _gen_ai.GEN_AI_REQUEST_TEMPERATURE
REQUEST_TOP_P: Final = _gen_ai.GEN_AI_REQUEST_TOP_P
REQUEST_TOP_K: Final = _gen_ai.GEN_AI_REQUEST_TOP_K
REQUEST_FREQUENCY_PENALTY: Final = _gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY
REQUEST_PRESENCE_PENALTY: Final = _gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY
REQUEST_STOP_SEQUENCES: Final = _gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
REQUEST_SEED: Final = _gen_ai.GEN_AI_REQUEST_SEED
REQUEST_CHOICE_COUNT: Final = _gen_ai.GEN_AI_REQUEST_CHOICE_COUNT
REQUEST_STREAM: Final = _gen_ai.GEN_AI_REQUEST_STREAM
REQUEST_ENCODING_FORMATS: Final = _gen_ai.GEN_AI_REQUEST_ENCODING_FORMATS
RESPONSE_ID: Final = _gen_ai.GEN_AI_RESPONSE_ID
RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
RESPONSE_TIME_TO_FIRST_CHUNK: Final = _gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK  # seconds
USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
INPUT_MESSAGES: Final = _gen_ai.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES: Final = _gen_ai.GEN_AI_OUTPUT_MESSAGES
SYSTEM_INSTRUCTIONS: Final = _gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
TOOL_DEFINITIONS: Final = _gen_ai.GEN_AI_TOOL_DEFINITIONS
EMBEDDINGS_DIMENSION_COUNT: Final = _gen_ai.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
PROMPT_NAME: Final = _gen_ai.GEN_AI_PROMPT_NAME
# Newer GenAI names than the installed semconv package has (the GenAI conventions moved to their
# own repository): read by the collector wherever a span carries them.
GEN_AI_PROMPT_VERSION: Final = "gen_ai.prompt.version"
USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"  # = cache_creation
USAGE_AUDIO_INPUT_TOKENS: Final = "gen_ai.usage.audio.input_tokens"  # included in input_tokens
USAGE_AUDIO_OUTPUT_TOKENS: Final = "gen_ai.usage.audio.output_tokens"  # included in output_tokens
USAGE_IMAGE_INPUT_TOKENS: Final = "gen_ai.usage.image.input_tokens"
USAGE_IMAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.image.output_tokens"
CONVERSATION_ID: Final = _gen_ai.GEN_AI_CONVERSATION_ID
# Content the collector redacts; tool call arguments and results also fill tool_calls rows,
# retrieval and the older single-attribute prompt and completion it reads nothing from
# (evaluation explanations: below).
TOOL_CALL_ARGUMENTS: Final = _gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_CALL_RESULT: Final = _gen_ai.GEN_AI_TOOL_CALL_RESULT
RETRIEVAL_DOCUMENTS: Final = _gen_ai.GEN_AI_RETRIEVAL_DOCUMENTS
RETRIEVAL_QUERY_TEXT: Final = _gen_ai.GEN_AI_RETRIEVAL_QUERY_TEXT
PROMPT: Final = _gen_ai.GEN_AI_PROMPT
COMPLETION: Final = _gen_ai.GEN_AI_COMPLETION
# Agents, workflows and tools (agent spans: invoke_agent, create_agent, invoke_workflow,
# execute_tool); the collector reads them into trace_spans and tool_calls rows.
AGENT_NAME: Final = _gen_ai.GEN_AI_AGENT_NAME
AGENT_ID: Final = _gen_ai.GEN_AI_AGENT_ID
WORKFLOW_NAME: Final = _gen_ai.GEN_AI_WORKFLOW_NAME
TOOL_NAME: Final = _gen_ai.GEN_AI_TOOL_NAME
TOOL_TYPE: Final = _gen_ai.GEN_AI_TOOL_TYPE  # function | extension | datastore
TOOL_CALL_ID: Final = _gen_ai.GEN_AI_TOOL_CALL_ID
# gen_ai.tool.type values
TOOL_TYPE_FUNCTION: Final = "function"  # a function the application runs for the agent
TOOL_TYPE_EXTENSION: Final = "extension"  # a tool run elsewhere (an MCP server's)
# Model Context Protocol client calls (the MCP conventions; literal names: newer than the lower
# bound of opentelemetry-semantic-conventions)
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_SESSION_ID: Final = "mcp.session.id"
MCP_METHOD_TOOLS_CALL: Final = "tools/call"
MCP_METHOD_TOOLS_LIST: Final = "tools/list"

ERROR_TYPE: Final = _error.ERROR_TYPE
SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT
SERVICE_NAME: Final = "service.name"  # resource attribute
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_GENERATE_CONTENT: Final = "generate_content"
LLM_OPERATIONS: Final = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_EMBEDDINGS, OP_GENERATE_CONTENT})
# The operations of agent and framework spans (no LLM call of their own)
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CREATE_AGENT: Final = "create_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_RETRIEVAL: Final = "retrieval"
OP_PLAN: Final = "plan"  # newer than the installed semconv package

# gen_ai.provider.name values
PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"
PROVIDER_AZURE_AI_INFERENCE: Final = "azure.ai.inference"
PROVIDER_IBM_WATSONX_AI: Final = "ibm.watsonx.ai"
PROVIDER_ANTHROPIC: Final = "anthropic"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
PROVIDER_GCP_GEMINI: Final = "gcp.gemini"  # the Gemini Developer API (AI Studio keys)
PROVIDER_GCP_VERTEX_AI: Final = "gcp.vertex_ai"
PROVIDER_MISTRAL_AI: Final = "mistral_ai"
PROVIDER_COHERE: Final = "cohere"
# Not (yet) in the conventions: a custom value, lower case like theirs.
PROVIDER_OLLAMA: Final = "ollama"
PROVIDER_GROQ: Final = "groq"
PROVIDER_DEEPSEEK: Final = "deepseek"
PROVIDER_X_AI: Final = "x_ai"
PROVIDER_PERPLEXITY: Final = "perplexity"
# Not (yet) in the conventions: custom values, lower case like theirs.
PROVIDER_TOGETHER_AI: Final = "together_ai"
PROVIDER_OPENROUTER: Final = "openrouter"
PROVIDER_FIREWORKS_AI: Final = "fireworks_ai"
PROVIDER_VLLM: Final = "vllm"

# --- What the conventions lack: Assay's own names ---------------------------------------------
COST_USD: Final = "assay.usage.cost_usd"
# false when the API reported no usage (e.g. a stream without include_usage): tokens are unknown
USAGE_REPORTED: Final = "assay.usage.reported"
# Where the span's token counts came from: one of USAGE_SOURCES
USAGE_SOURCE: Final = "assay.usage.source"
USAGE_SOURCE_REPORTED: Final = "reported"  # the provider's own usage object
USAGE_SOURCE_ESTIMATED: Final = "estimated"  # counted by the instrumentation (a tokenizer)
USAGE_SOURCE_NONE: Final = "none"  # no usage could be had: the token counts are unknown
USAGE_SOURCES: Final = frozenset({USAGE_SOURCE_REPORTED, USAGE_SOURCE_ESTIMATED, USAGE_SOURCE_NONE})
PROMPT_VERSION: Final = "assay.prompt.version"
TAGS: Final = "assay.tags"
EXPERIMENT_ID: Final = "assay.experiment.id"
DATASET_ITEM_ID: Final = "assay.dataset.item.id"
# On the root span of each experiment item's trace (with the two ids above)
EXPERIMENT_NAME: Final = "assay.experiment.name"
EXPERIMENT_REPETITION: Final = "assay.experiment.repetition"  # 0-based, on an item's root span
# Set by the collector on an `otel_traces` row whose long content it keeps once, in the span's
# `llm_calls` row: JSON {attribute: where its full text is} (collector/normalize/trace_content.py)
CONTENT_LOCATION: Final = "assay.content.location"

# An evaluation result as an event (a log record, or a span event), the GenAI conventions'
# `gen_ai.evaluation.result`, parented to the span it judged. Literal names: older releases of
# opentelemetry-semantic-conventions (the lower bound) do not have them.
EVALUATION_RESULT_EVENT: Final = "gen_ai.evaluation.result"
EVALUATION_NAME: Final = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
ERROR_MESSAGE: Final = "error.message"
# Not in the conventions: Splunk's opentelemetry-util-genai sends a verdict under this name.
EVALUATION_PASSED_SPLUNK: Final = "gen_ai.evaluation.passed"
# What Assay adds to the events it sends, so that a score keeps its meaning between tools.
SCORE_SOURCE: Final = "assay.score.source"  # a ScoreSource
SCORE_PASSED: Final = "assay.score.passed"
SCORE_DIRECTION: Final = "assay.score.direction"  # higher_is_better | lower_is_better
SCORE_AUTHOR: Final = "assay.score.author"
EVALUATOR_VERSION: Final = "assay.evaluator.version"
DATASET_NAME: Final = "assay.dataset.name"

# Attributes copied from the ambient `context(...)` onto every LLM span, keyed by its argument.
CONTEXT_ATTRIBUTES: Final = {
    "user_id": USER_ID,
    "session_id": SESSION_ID,
    "prompt_name": PROMPT_NAME,
    "prompt_version": PROMPT_VERSION,
    "tags": TAGS,
    "experiment_id": EXPERIMENT_ID,
    "dataset_item_id": DATASET_ITEM_ID,
}

# Agent framework steps the GenAI conventions have no names for (the OpenAI Agents SDK's handoffs,
# guardrails and MCP servers)
AGENT_HANDOFF_FROM: Final = "assay.agent.handoff.from"
AGENT_HANDOFF_TO: Final = "assay.agent.handoff.to"
GUARDRAIL_NAME: Final = "assay.guardrail.name"
GUARDRAIL_TRIGGERED: Final = "assay.guardrail.triggered"
MCP_SERVER_NAME: Final = "assay.mcp.server.name"

# --- Appended by the instrumentation ----------------------------------------------------------
# true when the consumer closed a stream (close, context-manager exit, garbage collection) before
# the API finished it: output messages are partial and usage is usually unknown
STREAM_CLOSED_EARLY: Final = "assay.stream.closed_early"

# --- GenAI events (span events, or log records correlated to their span) -----------------------
# The current conventions: one event per operation carrying the message attributes above.
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"
# The earlier conventions (still the default of the official openai-v2 instrumentation): one event
# per message, the message in the body.
EVENT_SYSTEM_MESSAGE: Final = "gen_ai.system.message"
EVENT_USER_MESSAGE: Final = "gen_ai.user.message"
EVENT_ASSISTANT_MESSAGE: Final = "gen_ai.assistant.message"
EVENT_TOOL_MESSAGE: Final = "gen_ai.tool.message"
EVENT_CHOICE: Final = "gen_ai.choice"
EVENT_NAME: Final = "event.name"  # where SDKs before the log record's event_name field put it

# --- GenAI metrics ---------------------------------------------------------------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TOKEN_TYPE: Final = "gen_ai.token.type"


class ScoreSource(str, Enum):
    """Who made a score: the values of `assay.score.source` and of the `scores.source` column,
    for Python, the UI's templates and the dashboards' SQL alike."""

    ONLINE = "online"  # the collector's online evaluation rules
    EXPERIMENT = "experiment"  # an experiment run (assay.evaluators.evaluate)
    HUMAN = "human"  # a person's grade: the UI, the API, instrumentation.feedback()
    OTEL = "otel"  # an OpenTelemetry evaluation event from another tool

    def __str__(self) -> str:  # the value in f-strings and SQL, on every Python version
        return self.value


FEEDBACK_NAME: Final = "feedback"  # the name of a person's 👍/👎 score (source human)
