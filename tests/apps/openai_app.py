"""A small service instrumented with the one-line import, run by the end-to-end tests.

It makes a fixed set of OpenAI calls against ASSAY_TEST_BASE_URL and prints, as JSON, what the
tests need to find its spans (trace and span ids, the responses' usage).
"""

from __future__ import annotations

import json
import os

import openai
from opentelemetry import trace

import assay.instrumentation.auto  # noqa: F401
from assay.instrumentation import context, force_flush
from tests.apps.values import QUESTION


def main() -> None:
    client = openai.OpenAI(base_url=os.environ["ASSAY_TEST_BASE_URL"], api_key="k", max_retries=0)
    tracer = trace.get_tracer("tests.app")
    out: dict[str, object] = {}
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": QUESTION},
    ]
    with (
        tracer.start_as_current_span("handle question") as parent,
        context(
            user_id="u-e2e",
            session_id="s-e2e",
            prompt_name="capitals",
            prompt_version="v2",
            tags=["e2e", "geo"],
        ),
    ):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        out["chat"] = {
            "usage": reply.usage.model_dump() if reply.usage else None,
            "model": reply.model,
            "id": reply.id,
            "text": reply.choices[0].message.content,
        }
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=messages,
                stream=True,  # type: ignore[arg-type]
                stream_options={"include_usage": True},
            )
        )
        usage = next(c.usage for c in chunks if c.usage)
        out["stream_usage"] = usage.model_dump()
        unasked = list(
            client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)  # type: ignore[arg-type]
        )
        # What the application saw of a stream it asked no usage for: chunks, none with usage.
        out["unasked_stream"] = {
            "chunks": len(unasked),
            "with_usage": sum(c.usage is not None for c in unasked),
            "without_choices": sum(not c.choices for c in unasked),
        }
        embedding = client.embeddings.create(model="text-embedding-3-small", input=QUESTION)
        out["embedding_usage"] = embedding.usage.model_dump()
        for model in ("fail-429", "fail-500"):
            try:
                client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
            except openai.APIStatusError as exc:
                out[model] = type(exc).__name__
        context_ = parent.get_span_context()
        out["trace_id"] = format(context_.trace_id, "032x")
        out["parent_span_id"] = format(context_.span_id, "016x")
    force_flush()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
