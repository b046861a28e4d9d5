"""One vocabulary for what a span is (an agent, a tool, an LLM call, ...), whatever dialect it
came in, and the fields of a tool call every dialect's reader fills.

Each dialect module maps its own marks onto these kinds (`KINDS`, read by `span_kind`)::

    kind        GenAI `gen_ai.operation.name`           OpenInference      OpenLLMetry
    workflow    invoke_workflow                                            workflow
    agent       invoke_agent, create_agent              AGENT              agent
    chain       plan                                    CHAIN, PROMPT      task
    llm         chat, text_completion, generate_content LLM                (its LLM calls)
    embedding   embeddings                              EMBEDDING          (its embeddings)
    tool        execute_tool                            TOOL               tool
    retriever   retrieval                               RETRIEVER
    reranker                                            RERANKER
    guardrail   (assay.guardrail.name: Assay's own)     GUARDRAIL
    evaluator                                           EVALUATOR
    span        anything else: HTTP, database, the application's own spans
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WORKFLOW: Final = "workflow"
AGENT: Final = "agent"
CHAIN: Final = "chain"
LLM: Final = "llm"
EMBEDDING: Final = "embedding"
TOOL: Final = "tool"
RETRIEVER: Final = "retriever"
RERANKER: Final = "reranker"
GUARDRAIL: Final = "guardrail"
EVALUATOR: Final = "evaluator"
SPAN: Final = "span"  # no GenAI meaning: HTTP, database, the application's own spans

KINDS: Final = (
    WORKFLOW,
    AGENT,
    CHAIN,
    LLM,
    EMBEDDING,
    TOOL,
    RETRIEVER,
    RERANKER,
    GUARDRAIL,
    EVALUATOR,
    SPAN,
)


@dataclass(frozen=True, slots=True)
class ToolFields:
    """What a tool span says about the call it made, as its dialect spells it. `arguments` and
    `result` are JSON text when the span carried JSON or structured values, else the text."""

    name: str
    call_id: str = ""
    type: str = ""  # function | extension | datastore (GenAI), or as the dialect says
    arguments: str = ""
    result: str = ""
