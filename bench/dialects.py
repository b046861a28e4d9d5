"""Normalizer cost per dialect: CPU time to turn one chat span into its otel_traces and
llm_calls rows, for the same call as each instrumentation spells it.

Run: `.venv/bin/python bench/dialects.py [--spans 5000] [--rounds 3]`; prints µs per span (best
round). Compare within one run only: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assay.collector.normalize.traces import normalize_traces
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span

SYSTEM, QUESTION = "Answer briefly.", "What is the capital of France? " * 20
ANSWER = "Paris is the capital of France. " * 30
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
    {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]
BASE = {sc.REQUEST_MODEL: "gpt-4o-mini", sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18"}

SPELLINGS: dict[str, dict[str, Any]] = {
    "genai": {
        **BASE,
        sc.OPERATION_NAME: "chat",
        sc.PROVIDER_NAME: "openai",
        sc.USAGE_INPUT_TOKENS: 120,
        sc.USAGE_OUTPUT_TOKENS: 200,
        sc.INPUT_MESSAGES: json.dumps(INPUT),
        sc.OUTPUT_MESSAGES: json.dumps(OUTPUT),
    },
    "openllmetry (indexed)": {
        **BASE,
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 200,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": SYSTEM,
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": QUESTION,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": ANSWER,
    },
    "openinference": {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.model_name": BASE[sc.RESPONSE_MODEL],
        "llm.invocation_parameters": json.dumps({"model": BASE[sc.REQUEST_MODEL]}),
        "llm.token_count.prompt": 120,
        "llm.token_count.completion": 200,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": QUESTION,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": ANSWER,
        "input.value": json.dumps({"model": "gpt-4o-mini", "messages": [QUESTION]}),
        "output.value": json.dumps({"choices": [{"message": {"content": ANSWER}}]}),
    },
}
SPELLINGS["openlit"] = {
    **SPELLINGS["genai"],
    "telemetry.sdk.name": "openlit",
    "gen_ai.usage.cost": 0.0,
    "gen_ai.server.time_to_first_token": 0.2,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    plain = make_request(
        "bench", *(make_span("GET /", {"http.route": "/"}) for _ in range(args.spans))
    )
    requests = {"(no LLM: otel_traces only)": plain}
    for name, attrs in SPELLINGS.items():
        requests[name] = make_request("bench", *(make_span(attrs=attrs) for _ in range(args.spans)))
    print(f"{args.spans} spans per dialect, best of {args.rounds} rounds")
    for name, request in requests.items():
        best = float("inf")
        for _ in range(args.rounds):
            started = time.process_time()
            batch = normalize_traces(request)
            best = min(best, time.process_time() - started)
        assert len(batch.traces) == args.spans
        print(
            f"  {name:28s} {best / args.spans * 1e6:7.1f} µs/span  ({len(batch.llm_calls)} calls)"
        )


if __name__ == "__main__":
    main()
