"""Every model the provider fixtures name has a price: the fakes and the tests of the
instrumented clients, and the real traffic recorded in ../shared/recordings (each request's
model, as the client sent it). A local model (Ollama) has none, and says so."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.instrumentation.recordings.cassettes import RECORDINGS

ROOT = Path(__file__).resolve().parents[2]

# How a model id names its provider, for a name found in a fixture's source.
FAMILIES = (
    (
        sc.PROVIDER_AWS_BEDROCK,
        r"(?:[a-z]{2}\.)?(?:anthropic|amazon|meta|mistral|cohere)\.[a-z0-9][\w.-]*-v\d[\w.:-]*",
    ),
    (
        sc.PROVIDER_OPENAI,
        r"gpt-[\w.-]+|o[1-4](?:-[\w.-]+)?|text-embedding-3-[\w-]+|text-embedding-ada-002",
    ),
    (sc.PROVIDER_ANTHROPIC, r"claude-[\w.@-]+"),
    (sc.PROVIDER_GCP_GEMINI, r"gemini-[\w.-]+"),
    (
        sc.PROVIDER_MISTRAL_AI,
        r"mistral-[\w.-]+|codestral[\w.-]*|ministral-[\w.-]+|open-mi[sx]tral-[\w.-]+"
        r"|pixtral-[\w.-]+|magistral-[\w.-]+|devstral[\w.-]*",
    ),
    (sc.PROVIDER_COHERE, r"command(?:-[\w.-]+)?|embed-[\w.-]+-v\d[\w.]*|c4ai-[\w.-]+"),
)
# Names the fixtures use on purpose for a model no table knows.
NOT_MODELS = re.compile(r"fail-|unheard-of|house-model|my-|missing|no-usage")
_LITERAL = re.compile(r"""["']([A-Za-z0-9][\w.:@/-]{2,80})["']""")
# The recordings' folders, and the provider their traffic went to (LiteLLM: by the model).
RECORDED_PROVIDERS = {
    "openai": sc.PROVIDER_OPENAI,
    "anthropic": sc.PROVIDER_ANTHROPIC,
    "bedrock": sc.PROVIDER_AWS_BEDROCK,
    "google-genai": sc.PROVIDER_GCP_GEMINI,
    "mistral": sc.PROVIDER_MISTRAL_AI,
    "ollama": sc.PROVIDER_OLLAMA,
    "together": sc.PROVIDER_TOGETHER_AI,
    "litellm": None,
}


def provider_of(name: str) -> str | None:
    for provider, pattern in FAMILIES:
        if re.fullmatch(pattern, name):
            return provider
    return None


def fixture_models() -> set[tuple[str, str]]:
    """(provider, model) for every model id spelled in the fakes, the provider tests and the
    test apps."""
    sources = [
        *(ROOT / "tests" / "fakes").glob("*.py"),
        *(ROOT / "tests" / "apps").glob("*.py"),
        *(p for p in (ROOT / "tests" / "instrumentation").glob("test_*.py")),
        ROOT / "collector" / "demo" / "fake_openai.py",
    ]
    found = set()
    for path in sources:
        if path.name in ("test_pricing.py", "test_price_coverage.py"):
            continue  # unknown names on purpose
        for match in _LITERAL.finditer(path.read_text(encoding="utf-8")):
            name = match.group(1).rsplit("/", 1)[-1]
            provider = provider_of(name)
            if provider and not NOT_MODELS.match(name):
                found.add((provider, name))
    return found


def recorded_models() -> set[tuple[str, str]]:
    """(provider, model) for every request recorded from the providers' live APIs."""
    found = set()
    for folder, provider in RECORDED_PROVIDERS.items():
        for cassette in sorted((RECORDINGS / folder).glob("*.yaml")):
            for interaction in yaml.safe_load(cassette.read_text()).get("interactions", []):
                request = interaction.get("request", {})
                uri, body = request.get("uri") or "", request.get("body")
                names = set(re.findall(r"/model/([^/]+)/", uri))
                names |= set(re.findall(r"/models/([^/:]+):", uri))
                if isinstance(body, bytes):
                    body = body.decode("utf-8", "replace")
                if isinstance(body, str):
                    names |= set(re.findall(r'"model"\s*:\s*"([^"]+)"', body))
                for name in map(unquote, names):
                    if NOT_MODELS.match(name) or name.startswith("nonexistent"):
                        continue
                    owner = provider or provider_of(name.rsplit("/", 1)[-1])
                    if owner:
                        found.add((owner, name))
    return found


@pytest.fixture(autouse=True)
def _builtin_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)
    pricing.reload()


def test_every_model_the_provider_fixtures_name_has_a_price() -> None:
    models = fixture_models()
    assert len({p for p, _ in models}) == 6 and len(models) > 40  # the scan finds them
    unpriced = sorted(m for m in models if pricing.lookup(m[1], m[0]) is None)
    assert unpriced == []


@pytest.mark.skipif(not RECORDINGS.is_dir(), reason="no ../shared/recordings here")
def test_every_model_in_the_recorded_traffic_has_a_price_but_local_ones() -> None:
    models = recorded_models()
    assert {p for p, _ in models} >= set(RECORDED_PROVIDERS.values()) - {None}
    local = {m for m in models if m[0] == sc.PROVIDER_OLLAMA}
    unpriced = sorted(m for m in models - local if pricing.lookup(m[1], m[0]) is None)
    assert unpriced == []
    # A model on the user's own machine is billed by no one: unpriced, never a list price.
    assert local and all(pricing.lookup(name, provider) is None for provider, name in local)
