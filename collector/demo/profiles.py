"""What each demo service does: its route, its prompts (name → versions), models and questions.

Apart from `service.py`, which instruments the process it runs in (the one line a user adds), so
that `assay demo` and `assay collector --demo` can name the services without instrumenting
themselves.
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "checkout": {
        "route": "POST /checkout/assist",
        "prompts": {"order-assistant": ["v1", "v2"]},
        "models": ["gpt-4o-mini", "gpt-4o"],
        # The checkout front end parses the answer: it asks for JSON of this shape.
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "checkout_answer",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {
                        "intent": {
                            "type": "string",
                            "enum": ["order_status", "change_address", "discount", "payment"],
                        },
                        "reply": {"type": "string"},
                        "needs_human": {"type": "boolean"},
                    },
                    "required": ["intent", "reply", "needs_human"],
                    "additionalProperties": False,
                },
            },
        },
        "questions": [
            "Where is my order #{n}?",
            "Can I change the delivery address for order #{n}?",
            "Apply my discount code SAVE{n} to the cart",
            "Why was my card declined on order #{n}?",
        ],
    },
    "support-bot": {
        "route": "POST /support/chat",
        "prompts": {"support-answer": ["v3", "v4"], "triage": ["v1"]},
        "models": ["gpt-4.1-mini", "gpt-4o", "o4-mini"],
        "questions": [
            "How do I reset my password?",
            "My invoice {n} shows the wrong VAT number",
            "Cancel my subscription please",
            "The app crashes when I upload a file of {n} MB",
        ],
    },
    "search": {
        "route": "GET /search",
        "prompts": {"query-rewrite": ["v1", "v2"]},
        "models": ["gpt-4.1-nano", "llama-3.1-8b-local"],  # the local model has no list price
        "questions": [
            "waterproof hiking boots size {n}",
            "gift ideas under {n} dollars",
            "laptop with {n} GB ram",
        ],
    },
}
# The demo's agent service (agent.py): multi-step runs with tool calls, in conversations.
AGENT_SERVICE = "travel-agent"
AGENT_NAME = "trip-planner"
AGENT_FAILING_TOOL = "book_hotel"  # times out one call in three, and is tried again
