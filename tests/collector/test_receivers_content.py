"""Which spans the receivers treat as LLM calls when redacting: the answer remembered by the
names of a span's attributes is always the one every dialect's test gives, whatever order the
spans come in and whichever values differ between spans of the same names."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector.normalize.dialects import is_llm_call
from assay.collector.normalize.traces import normalize_traces
from assay.collector.receivers import content
from assay.collector.receivers.content import _Attributes, _is_llm, is_llm_call_span
from assay.instrumentation import semconv as sc
from tests.collector.golden.rows import corpus
from tests.collector.otlp_builders import key_values


@pytest.fixture(autouse=True)
def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "_LLM_BY_NAMES", {})


def _span_attributes() -> Iterator[list[Any]]:
    for request in corpus():
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    yield list(span.attributes)


def _answers(spans: list[list[Any]]) -> list[tuple[bool, bool]]:
    return [(_is_llm(_Attributes(pairs)), is_llm_call(_Attributes(pairs))) for pairs in spans]


def test_the_golden_corpus_gets_every_dialects_answer_in_any_order() -> None:
    spans = list(_span_attributes())
    assert any(is_llm_call(_Attributes(pairs)) for pairs in spans)
    assert not all(is_llm_call(_Attributes(pairs)) for pairs in spans)
    for seed in range(3):
        random.Random(seed).shuffle(spans)
        answers = _answers(spans) + _answers(spans)  # then all remembered
        assert all(remembered == tested for remembered, tested in answers)
    assert content._LLM_BY_NAMES  # the names were remembered, not tested each time


def _same_names(operation: Any, extra: Any) -> list[Any]:
    return key_values({sc.OPERATION_NAME: operation, sc.REQUEST_MODEL: "m", "x": extra})


@pytest.mark.parametrize(
    "values",
    [
        # the operation names a call, then names none, then is not a string
        [sc.OP_CHAT, "db.query", sc.OP_CHAT, 7, "", sc.OP_EMBEDDINGS, "db.query"],
        # what the dialects do not read changes alone
        [sc.OP_CHAT] * 3,
    ],
)
def test_spans_of_the_same_names_with_other_values_get_their_own_answer(
    values: list[Any],
) -> None:
    spans = [_same_names(operation, index) for index, operation in enumerate(values)]
    assert all(remembered == tested for remembered, tested in _answers(spans))
    (answers,) = content._LLM_BY_NAMES.values()
    assert len(answers) == len(set(map(repr, values)))  # one per value the dialects read


def test_a_request_redacts_a_plain_span_like_a_call_only_when_it_is_one() -> None:
    """The remembered answer of a span's names does not follow a span of the same names whose
    operation says it is no call: its attributes are not content, and stay."""
    from assay.collector.redaction import Redactor
    from tests.collector.otlp_builders import make_request, make_span

    redactor = Redactor(["email"])
    mail = "write to a@b.example"
    call = make_span(attrs={sc.OPERATION_NAME: sc.OP_CHAT, "note": mail})
    query = make_span(attrs={sc.OPERATION_NAME: "db.query", "note": mail})
    request = make_request("svc", call, query, call)
    content.redact_request(request, redactor)
    notes = [
        span.attributes[1].value.string_value
        for span in request.resource_spans[0].scope_spans[0].spans
    ]
    assert notes == ["write to [REDACTED:email]", mail, "write to [REDACTED:email]"]


def test_the_remembered_names_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "_MAX_NAME_SETS", 3)
    spans = [key_values({f"k{i}": "v", sc.OPERATION_NAME: sc.OP_CHAT}) for i in range(10)]
    assert all(remembered == tested for remembered, tested in _answers(spans))
    assert len(content._LLM_BY_NAMES) == 3


def test_the_receivers_answer_is_the_one_normalize_acts_on() -> None:
    """A span the receivers take for an LLM call (for redaction, and for how long the store
    keeps it: receivers/validation.py) is exactly one normalize gives an `llm_calls` row."""
    for request in corpus():
        calls = {row.span_id for row in normalize_traces(request).llm_calls}
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    assert is_llm_call_span(span) == (span.span_id.hex() in calls), span.name
