"""A small service that uses google-genai, mistralai, cohere and ollama, instrumented by the
one-line import; run by the end-to-end test against local fakes of the four APIs.

It makes one plain and one streamed call per client and prints, as JSON, each call's usage
as the client reported it. It exits without flushing: the exit handler delivers the spans.
"""

from __future__ import annotations

import json

import cohere
import ollama
from google import genai
from google.genai import types
from mistralai.client import Mistral

import assay.instrumentation.auto  # noqa: F401  (before the clients: the usual order)
from tests.apps.values import MESSAGES, MODELS
from tests.fakes.fake_cohere import FakeCohere
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_mistral import FakeMistral
from tests.fakes.fake_ollama import FakeOllama


def main() -> None:
    usage: dict[str, object] = {}
    with FakeGemini() as fake:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))
        response = client.models.generate_content(model=MODELS["gemini"], contents="Capital?")
        chunks = list(client.models.generate_content_stream(model=MODELS["gemini"], contents="Hi"))
        usage["gemini"] = [
            r.usage_metadata.model_dump(exclude_none=True) for r in (response, chunks[-1])
        ]
    with FakeMistral() as fake:
        mistral = Mistral(api_key="k", server_url=fake.base_url)
        reply = mistral.chat.complete(model=MODELS["mistral"], messages=MESSAGES)
        events = list(mistral.chat.stream(model=MODELS["mistral"], messages=MESSAGES))
        usage["mistral"] = [u.model_dump() for u in (reply.usage, events[-1].data.usage)]
    with FakeCohere() as fake:
        co = cohere.ClientV2(api_key="k", base_url=fake.base_url, max_retries=0)
        answer = co.chat(model=MODELS["cohere"], messages=MESSAGES)
        streamed = list(co.chat_stream(model=MODELS["cohere"], messages=MESSAGES))
        usage["cohere"] = [
            u.billed_units.model_dump(exclude_none=True)
            for u in (answer.usage, streamed[-1].delta.usage)
        ]
    with FakeOllama() as fake:
        local = ollama.Client(host=fake.base_url)
        done = local.chat(MODELS["ollama"], MESSAGES)
        pieces = list(local.chat(MODELS["ollama"], MESSAGES, stream=True))
        usage["ollama"] = [
            {"prompt_eval_count": r.prompt_eval_count, "eval_count": r.eval_count}
            for r in (done, pieces[-1])
        ]
    print(json.dumps(usage))


if __name__ == "__main__":
    main()
