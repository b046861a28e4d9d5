"""Setting up the google-genai, mistralai, cohere and ollama instrumentations.

`instrument()` finds whichever of them is installed; a missing one is skipped silently;
each is also an `opentelemetry_instrumentor` entry point; `uninstrument()` restores them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

import cohere
import ollama
import pytest
import wrapt
from cohere.v2 import client as cohere_v2
from google.genai import models as genai_models
from mistralai.client import chat as mistral_chat
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.instrumentation import uninstrument
from assay.instrumentation.providers.cohere import CohereInstrumentor
from assay.instrumentation.providers.google_genai import GoogleGenAIInstrumentor
from assay.instrumentation.providers.mistral import MistralInstrumentor
from assay.instrumentation.providers.ollama import OllamaInstrumentor
from tests.fakes.fake_cohere import FakeCohere
from tests.instrumentation.test_setup import run_python

INSTRUMENTORS = {
    "assay_google_genai": GoogleGenAIInstrumentor,
    "assay_mistralai": MistralInstrumentor,
    "assay_cohere": CohereInstrumentor,
    "assay_ollama": OllamaInstrumentor,
}
# One method each instrumentor patches, per class it patches.
PATCHED = [
    (genai_models.Models, "_generate_content"),
    (genai_models.AsyncModels, "_generate_content_stream"),
    (mistral_chat.Chat, "complete"),
    (mistral_chat.Chat, "stream_async"),
    (cohere_v2.V2Client, "chat"),
    (cohere_v2.AsyncV2Client, "chat_stream"),
    (ollama.Client, "chat"),
    (ollama.AsyncClient, "generate"),
]


@pytest.mark.parametrize(("name", "cls"), INSTRUMENTORS.items())
def test_each_is_an_opentelemetry_instrumentor_entry_point(name: str, cls: type) -> None:
    (entry_point,) = [
        ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == name
    ]
    assert entry_point.load() is cls


def test_instrument_patches_every_installed_client_and_uninstrument_restores_them(
    instrument_with: Callable[..., TracerProvider],
) -> None:
    instrument_with()
    assert all(isinstance(vars(cls)[method], wrapt.FunctionWrapper) for cls, method in PATCHED)
    for cls in INSTRUMENTORS.values():
        assert cls().is_instrumented_by_opentelemetry

    uninstrument()
    assert not any(isinstance(vars(cls)[method], wrapt.FunctionWrapper) for cls, method in PATCHED)


def test_a_client_bound_before_uninstrument_stops_making_spans(
    instrument_with: Callable[..., TracerProvider], span_exporter: InMemorySpanExporter
) -> None:
    instrument_with()
    with FakeCohere() as fake:
        client = cohere.ClientV2(api_key="k", base_url=fake.base_url, max_retries=0)
        chat = client.chat  # bound while instrumented
        uninstrument()
        chat(model="command-r", messages=[{"role": "user", "content": "hi"}])

    assert span_exporter.get_finished_spans() == ()


@pytest.mark.subprocess
def test_missing_client_libraries_are_skipped_silently() -> None:
    result = run_python(
        """
        import sys
        for name in ("google.genai", "mistralai", "cohere"):
            sys.modules[name] = None  # as if not installed
        from opentelemetry.sdk.trace import TracerProvider
        from assay.instrumentation import instrument
        from assay.instrumentation.providers.ollama import OllamaInstrumentor
        instrument(tracer_provider=TracerProvider())
        print(OllamaInstrumentor().is_instrumented_by_opentelemetry)
        """
    )
    assert result.stdout.strip() == "True"
    assert result.stderr == ""


@pytest.mark.subprocess
def test_instrument_imports_no_client_library_and_patches_one_when_the_app_imports_it() -> None:
    result = run_python(
        """
        import sys
        import wrapt
        from opentelemetry.sdk.trace import TracerProvider
        from assay.instrumentation import instrument
        instrument(tracer_provider=TracerProvider())
        print([m for m in ("google.genai", "mistralai", "cohere", "ollama") if m in sys.modules])
        import ollama
        print(isinstance(vars(ollama.Client)["chat"], wrapt.FunctionWrapper))
        """
    )
    assert result.stdout.split() == ["[]", "True"]


@pytest.mark.subprocess
def test_auto_import_traces_a_client_call() -> None:
    result = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # reused by instrument(): no OTLP exporter

        import assay.instrumentation.auto
        import ollama
        from tests.fakes.fake_ollama import FakeOllama

        with FakeOllama() as fake:
            ollama.Client(host=fake.base_url).chat("llama3.2", [{"role": "user", "content": "hi"}])
        print([span.name for span in exporter.get_finished_spans()])
        """
    )
    assert result.stdout.strip() == "['chat llama3.2']"
