"""`fields`, the reader of several fields of one object at once: it answers what `field` does."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from openai.types.completion_usage import CompletionUsage, PromptTokensDetails
from pydantic import BaseModel, ConfigDict

from assay.instrumentation.providers._messages import field, fields

NAMES = ("prompt_tokens", "completion_tokens", "cache_write_tokens", "total", "missing")


class _WithProperty(BaseModel):
    """A model where one of the names read is a property, not a field."""

    model_config = ConfigDict(extra="allow")
    prompt_tokens: int = 3

    @property
    def total(self) -> int:
        return self.prompt_tokens + 1


OBJECTS: list[Any] = [
    None,
    {"prompt_tokens": 5, "cache_write_tokens": 2},
    CompletionUsage(prompt_tokens=5, completion_tokens=7, total_tokens=12),
    # An OpenAI-compatible gateway's extra count arrives as a pydantic extra.
    PromptTokensDetails.model_validate({"cached_tokens": 1, "cache_write_tokens": 4}),
    _WithProperty.model_validate({"completion_tokens": 9}),
    SimpleNamespace(prompt_tokens=1, total=2),
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda obj: type(obj).__name__)
def test_each_name_reads_as_field_reads_it(obj: Any) -> None:
    read = fields(obj, NAMES)
    assert {name: read.get(name) for name in NAMES} == {name: field(obj, name) for name in NAMES}


def test_a_gateway_extra_count_is_found() -> None:
    details = PromptTokensDetails.model_validate({"cached_tokens": 1, "cache_write_tokens": 4})
    assert fields(details, ("cache_write_tokens",)).get("cache_write_tokens") == 4


def test_a_property_among_the_names_is_read_as_the_property() -> None:
    assert fields(_WithProperty(), ("total",)).get("total") == 4
