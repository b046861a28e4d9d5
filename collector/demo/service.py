"""One demo service: an app instrumented with the one-line import, calling a (fake) LLM provider.

Run by `assay demo` as `python -m assay.collector.demo.service`, with OTEL_SERVICE_NAME, the
collector endpoint and the fake provider's URL in the environment, like a real service would be.
"""

from __future__ import annotations

import os
import random
import sys

import openai
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry import trace

import assay.instrumentation.auto  # noqa: F401  (the one line a user adds)
from assay.collector.demo.fake_server import FAIL_HEADER
from assay.collector.demo.profiles import PROFILES
from assay.instrumentation import context, force_flush


def run(service: str, calls: int, base_url: str, seed: int) -> int:
    profile = PROFILES[service]
    rng = random.Random(seed)
    client = openai.OpenAI(base_url=base_url, api_key="demo-key", max_retries=0)
    tracer = trace.get_tracer("assay.demo")
    response_format = profile.get("response_format", openai.omit)
    failures = 0
    for i in range(calls):
        prompt_name = rng.choice(list(profile["prompts"]))
        version = rng.choice(profile["prompts"][prompt_name])
        user = f"user-{rng.randint(1, 12)}"
        question = rng.choice(profile["questions"]).format(n=rng.randint(2, 999))
        model = rng.choice(profile["models"])
        roll = rng.random()
        # The provider refuses now and then, as real ones do: a rate limit, a server error.
        failure = {FAIL_HEADER: rng.choice(["429", "500"])} if roll < 0.04 else None
        messages: list[ChatCompletionMessageParam] = [
            {
                "role": "system",
                "content": f"You are the {service} assistant ({prompt_name} {version}).",
            },
            {"role": "user", "content": question},
        ]
        with (
            tracer.start_as_current_span(profile["route"]),
            context(
                user_id=user,
                session_id=f"{user}-s{i // 5}",
                prompt_name=prompt_name,
                prompt_version=version,
                tags=[service, "demo"],
            ),
        ):
            try:
                if service == "search" and roll > 0.7:
                    client.embeddings.create(
                        model="text-embedding-3-small", input=question, extra_headers=failure
                    )
                elif roll > 0.6:
                    stream = client.chat.completions.create(
                        model=model,
                        messages=messages,
                        stream=True,
                        # One stream in three without usage: the span says tokens are unknown.
                        stream_options={"include_usage": True} if roll > 0.73 else openai.omit,
                        response_format=response_format,
                        extra_headers=failure,
                    )
                    for _chunk in stream:
                        pass
                else:
                    client.chat.completions.create(
                        model=model,
                        messages=messages,
                        temperature=0.2,
                        response_format=response_format,
                        extra_headers=failure,
                    )
            except openai.APIError:
                failures += 1
    force_flush()
    return failures


if __name__ == "__main__":
    name = os.environ.get("OTEL_SERVICE_NAME", "checkout")
    failed = run(
        name,
        int(os.environ.get("ASSAY_DEMO_CALLS", "50")),
        os.environ["ASSAY_DEMO_BASE_URL"],
        int(os.environ.get("ASSAY_DEMO_SEED", "1")),
    )
    print(f"{name}: {failed} calls failed (on purpose)", file=sys.stderr)
