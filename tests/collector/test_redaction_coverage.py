"""No dialect can carry content past redaction: the attributes each dialect reader reads are found
by running the readers on recording mappings (growing a span until they read nothing new), and

- every attribute whose value the reader puts into a content column is a content key (so it is
  redacted on any span, not only on the calls a dialect recognises);
- no never-redacted attribute (models, ids, token counts, ...) reaches a content column;
- through the receiver's redaction and the normalizer, no canary survives in a content column,
  and none in the span's attributes but the never-redacted ones.

A new dialect must be given its marks here (the test fails until it is), and a new attribute a
reader reads is found by the recording without anyone listing it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector.normalize import dialects
from assay.collector.normalize.dialects import DIALECTS, _shape, call_attributes
from assay.collector.normalize.llm_calls import llm_call_row
from assay.collector.normalize.traces import normalize_traces
from assay.collector.receivers.content import NEVER_REDACTED, is_content_key, redact_request
from assay.collector.redaction import Redactor
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span

# What makes each dialect recognise a span as its own LLM call.
MARKS: dict[str, dict[str, Any]] = {
    "openinference": {"openinference.span.kind": "LLM"},
    "openllmetry": {"llm.request.type": "chat"},
    "openlit": {"telemetry.sdk.name": "openlit", sc.OPERATION_NAME: "chat"},
    "genai": {sc.OPERATION_NAME: "chat"},
}
CONTENT_COLUMNS = ("input_messages", "output_messages", "system_instructions", "tool_definitions")


def test_every_dialect_is_probed() -> None:
    assert set(MARKS) == {dialect.NAME for dialect in DIALECTS}, (
        "a dialect without marks here is not probed: add what makes it recognise a call"
    )


class Recording(dict[str, Any]):
    """A mapping that notes every key read from it, under its path in the span's attributes."""

    def __init__(self, data: dict[str, Any], path: str, seen: set[str]) -> None:
        super().__init__(data)
        self.path, self.seen = path, seen

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(self.path + key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(self.path + key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.seen.add(self.path + str(key))
        return super().__contains__(key)


@pytest.fixture
def prefixes(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The indexed prefixes (`llm.input_messages`, then `llm.input_messages.0.message.contents`)
    the readers scan, each group handed on as a Recording under its own path."""
    found: set[str] = set()
    original = _shape.indexed

    def indexed(attrs: Any, prefix: str) -> dict[int, dict[str, Any]]:
        path, seen = getattr(attrs, "path", ""), getattr(attrs, "seen", set())
        found.add(path + prefix)
        return {
            n: Recording(fields, f"{path}{prefix}.{n}.", seen)
            for n, fields in original(attrs, prefix).items()
        }

    for module in (_shape, *DIALECTS):
        if hasattr(module, "indexed"):
            monkeypatch.setattr(module, "indexed", indexed)
    yield found


_counter = itertools.count()


def _canaries(keys: set[str], shape: str) -> tuple[dict[str, str], dict[str, str]]:
    """A distinct e-mail address per key (what redaction masks), as plain text or inside the
    JSON a reader may parse (an OpenAI request and response, or a list of messages); returns
    the values and the addresses."""
    values, mails = {}, {}
    for key in sorted(keys):
        mail = mails[key] = f"c{next(_counter)}c@canary.test"
        if shape == "object":
            values[key] = json.dumps(
                {
                    "model": "m",
                    "messages": [{"role": "user", "content": mail}],
                    "choices": [{"message": {"role": "assistant", "content": mail}}],
                }
            )
        elif shape == "list":
            values[key] = json.dumps([{"role": "user", "content": mail}])
        else:
            values[key] = f"text {mail}"
    return values, mails


def _row(attrs: dict[str, Any], seen: set[str]) -> Any:
    call = call_attributes(Recording(attrs, "", seen))
    assert call is not None
    row = llm_call_row(
        Recording(call.attributes, "", seen),
        dialect=call.dialect,
        start_ns=1,
        end_ns=2,
        trace_id="t",
        span_id="s",
        parent_span_id="",
        service_name="svc",
        is_error=False,
        status_message="",
    )
    return row


Span = tuple[dict[str, Any], dict[str, str]]  # attributes, and the canary address per key


def _probe(name: str, prefixes: set[str]) -> tuple[set[str], list[Span]]:
    """The attributes the reader of `name` reads, found by growing a span round by round; and
    the last round's span in each canary shape."""
    marks = MARKS[name]
    # What the dialects look at to recognise a call is left out: a canary there would make
    # another dialect's call (these attributes say what a span is, they hold no content).
    recognising: set[str] = set()
    for dialect in DIALECTS:
        dialect.matches(Recording({}, "", recognising))
    keys: set[str] = set()
    spans: dict[str, Span] = {}
    for _ in range(8):
        before = set(keys)
        for shape in ("plain", "object", "list"):
            probe = keys | {f"{prefix}.0.probe" for prefix in prefixes}
            values, mails = _canaries(probe - recognising, shape)
            attrs = {**values, **marks}
            seen: set[str] = set()
            row = _row(attrs, seen)
            assert row.dialect == name, f"{name}: a {row.dialect} call of {sorted(attrs)}"
            for key in {key for key in seen if not key.endswith(".probe")} - keys - recognising:
                # gen_ai.prompt.name, say, makes a span OpenLLMetry's (its indexed prompts)
                scanned = set(prefixes)  # what another dialect's reader scans is not ours
                alone = call_attributes({**_canaries({key}, shape)[0], **marks})
                prefixes.intersection_update(scanned)
                (keys if alone and alone.dialect == name else recognising).add(key)
            spans[shape] = (attrs, mails)
        if keys == before:
            return keys, list(spans.values())
    raise AssertionError(f"{name}: the probed attributes kept growing: {sorted(keys)}")


@pytest.mark.parametrize("name", sorted(MARKS))
def test_what_a_reader_turns_into_content_is_always_redacted(name: str, prefixes: set[str]) -> None:
    keys, spans = _probe(name, prefixes)
    assert keys, f"{name}: the reader read no attribute"
    # One attribute at a time: together, the conventions' own names would shadow the rest.
    flows: set[str] = set()
    for shape, key in itertools.product(("plain", "object", "list"), sorted(keys)):
        values, mails = _canaries({key}, shape)
        row = _row({**values, **MARKS[name]}, set())
        content = " ".join(getattr(row, column) for column in CONTENT_COLUMNS)
        if mails[key] in content:
            flows.add(key)
    assert flows, f"{name}: no attribute reached a content column; the probe is broken"
    not_content = sorted(key for key in flows if not is_content_key(key))
    assert not not_content, f"{name} reads content from attributes redaction misses: {not_content}"
    assert not flows & NEVER_REDACTED

    redactor = Redactor(["email"])
    for attrs, _ in spans:
        request = make_request("svc", make_span(attrs=attrs))
        redact_request(request, redactor)
        batch = normalize_traces(request)
        (call,) = batch.llm_calls
        stored = " ".join(getattr(call, column) for column in CONTENT_COLUMNS)
        assert "@canary" not in stored, stored
        leaked = {
            key: value
            for key, value in batch.traces[0].SpanAttributes.items()
            if "@canary" in value and key not in NEVER_REDACTED
        }
        assert not leaked, f"{name}: unredacted after the receiver: {leaked}"


def test_the_lists_are_consistent() -> None:
    # A content key never redacted would be a contradiction; every dialect declares content.
    for dialect in DIALECTS:
        assert dialect.CONTENT_KEYS or dialect.CONTENT_PREFIXES, dialect.NAME
        assert not dialect.CONTENT_KEYS & NEVER_REDACTED, dialect.NAME
    assert dialects.DIALECTS  # the package exposes the tuple the receiver reads
