"""A service that calls every instrumented client, every operation Assay records, inside one
`context(prompt_name=..., prompt_version=...)`; run by the dialect test against local fakes.

It prints, as JSON, the number of LLM calls it made. It exits without flushing: the exit handler
delivers the spans.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm stays offline

import anthropic
import boto3
import cohere
import litellm
import ollama
import openai
from google import genai
from google.genai import types
from mistralai.client import Mistral

import assay.instrumentation.auto  # noqa: F401
from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import context
from tests.apps.values import MESSAGES, PROMPT_NAME, PROMPT_VERSION
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_bedrock import FakeBedrock
from tests.fakes.fake_cohere import FakeCohere
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_mistral import FakeMistral
from tests.fakes.fake_ollama import FakeOllama

BEDROCK_TEXT = json.dumps({"inputText": "Capital of France?"})


def main() -> None:
    made = 0
    with context(prompt_name=PROMPT_NAME, prompt_version=PROMPT_VERSION):
        with FakeOpenAI() as fake:
            client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            list(
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=MESSAGES,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Capital?")
            client.embeddings.create(model="text-embedding-3-small", input="Paris")
            client.responses.create(model="gpt-4.1-mini", input="Capital of France?")
            litellm.completion(
                model="openai/gpt-4o-mini",
                messages=MESSAGES,
                api_base=fake.base_url,
                api_key="k",
                num_retries=0,
            )
            made += 6
        with FakeAnthropic() as fake:
            claude = anthropic.Anthropic(base_url=fake.base_url, api_key="k", max_retries=0)
            claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES)
            made += 1
        with FakeBedrock() as fake:
            bedrock = boto3.client("bedrock-runtime", **fake.client_options())
            bedrock.converse(
                modelId="amazon.nova-lite-v1:0",
                messages=[{"role": "user", "content": [{"text": "Capital of France?"}]}],
            )
            bedrock.invoke_model(modelId="amazon.titan-text-express-v1", body=BEDROCK_TEXT)
            bedrock.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=BEDROCK_TEXT)
            bedrock.invoke_model(
                modelId="meta.llama3-2-1b-instruct-v1:0",
                body=json.dumps({"prompt": "Capital of France?", "max_gen_len": 50}),
            )
            made += 4
        with FakeGemini() as fake:
            gemini = genai.Client(
                api_key="k", http_options=types.HttpOptions(base_url=fake.base_url)
            )
            gemini.models.generate_content(model="gemini-2.5-flash", contents="Capital?")
            made += 1
        with FakeMistral() as fake:
            Mistral(api_key="k", server_url=fake.base_url).chat.complete(
                model="mistral-small-latest", messages=MESSAGES
            )
            made += 1
        with FakeCohere() as fake:
            cohere.ClientV2(api_key="k", base_url=fake.base_url, max_retries=0).chat(
                model="command-r", messages=MESSAGES
            )
            made += 1
        with FakeOllama() as fake:
            local = ollama.Client(host=fake.base_url)
            local.chat("llama3.2", MESSAGES)
            local.generate("llama3.2", "Capital of France?")
            made += 2
    print(json.dumps({"calls": made}))


if __name__ == "__main__":
    main()
