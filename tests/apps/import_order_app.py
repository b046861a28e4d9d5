"""The README's order in a fresh interpreter: `instrument()` first, then `import <client>`, then
one call against the client's local fake. Run as `python -m tests.apps.import_order_app <client>`.

It prints, as JSON, whether the client was already loaded when `instrument()` ran (it must not
be: that is the order under test) and the LLM spans the call made (name and provider).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm stays offline

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.instrumentation import instrument
from assay.instrumentation import semconv as sc

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def call_openai() -> None:
    from assay.collector.demo.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        import openai

        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)


def call_anthropic() -> None:
    from tests.fakes.fake_anthropic import FakeAnthropic

    with FakeAnthropic() as fake:
        import anthropic

        client = anthropic.Anthropic(base_url=fake.base_url, api_key="k", max_retries=0)
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=QUESTION)


def call_bedrock() -> None:
    from tests.fakes.fake_bedrock import FakeBedrock

    with FakeBedrock() as fake:
        import boto3

        boto3.client("bedrock-runtime", **fake.client_options()).converse(
            modelId="amazon.nova-lite-v1:0",
            messages=[{"role": "user", "content": [{"text": "Capital of France?"}]}],
        )


def call_gemini() -> None:
    from tests.fakes.fake_gemini import FakeGemini

    with FakeGemini() as fake:
        from google import genai
        from google.genai import types

        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))
        client.models.generate_content(model="gemini-2.5-flash", contents="Capital?")


def call_mistral() -> None:
    from tests.fakes.fake_mistral import FakeMistral

    with FakeMistral() as fake:
        # mistralai 2 and later: a namespace package (no mistralai/__init__.py)
        from mistralai.client import Mistral

        Mistral(api_key="k", server_url=fake.base_url).chat.complete(
            model="mistral-small-latest", messages=QUESTION
        )


def call_cohere() -> None:
    from tests.fakes.fake_cohere import FakeCohere

    with FakeCohere() as fake:
        import cohere

        cohere.ClientV2(api_key="k", base_url=fake.base_url, max_retries=0).chat(
            model="command-r", messages=QUESTION
        )


def call_ollama() -> None:
    from tests.fakes.fake_ollama import FakeOllama

    with FakeOllama() as fake:
        import ollama

        ollama.Client(host=fake.base_url).chat("llama3.2", QUESTION)


def call_litellm() -> None:
    from assay.collector.demo.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        import litellm

        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=QUESTION,
            api_base=fake.base_url,
            api_key="k",
            num_retries=0,
        )


def call_openai_agents() -> None:
    import asyncio

    from assay.collector.demo.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        import agents
        import openai

        agents.set_default_openai_client(
            openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        )
        agent = agents.Agent(name="capitals", model="gpt-4o-mini")
        asyncio.run(agents.Runner.run(agent, "What is the capital of France?"))


# client → (the top-level name the application imports, the call)
CLIENTS: dict[str, tuple[str, Callable[[], None]]] = {
    "openai": ("openai", call_openai),
    "anthropic": ("anthropic", call_anthropic),
    "bedrock": ("boto3", call_bedrock),
    "google-genai": ("google.genai", call_gemini),
    "mistralai": ("mistralai", call_mistral),
    "cohere": ("cohere", call_cohere),
    "ollama": ("ollama", call_ollama),
    "litellm": ("litellm", call_litellm),
    # an agent framework: its workflow and agent spans (no provider) around the client's LLM span
    "openai-agents": ("agents", call_openai_agents),
}


def main() -> None:
    module, call = CLIENTS[sys.argv[1]]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    loaded_before = module in sys.modules or any(
        name.startswith(module + ".") for name in sys.modules
    )
    call()
    spans = [
        {"name": span.name, "provider": span.attributes.get(sc.PROVIDER_NAME)}
        for span in exporter.get_finished_spans()
        if sc.OPERATION_NAME in (span.attributes or {})
    ]
    print(json.dumps({"loaded_before": loaded_before, "spans": spans}))


if __name__ == "__main__":
    main()
