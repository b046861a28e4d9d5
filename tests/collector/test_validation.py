"""The receivers' check of a trace request: every kind of span the store cannot hold among sound
ones, each refused or changed as the README's "What the collector refuses" says, with one
reason per kind, in the order of the spans from the last."""

from __future__ import annotations

from assay.collector.receivers.validation import MAX_TIME_NS, check_request
from tests.collector.otlp_builders import make_request, make_span

LATE = MAX_TIME_NS + 1


def _spans(request: object) -> list[object]:
    return list(request.resource_spans[0].scope_spans[0].spans)  # type: ignore[attr-defined]


def test_bad_spans_among_sound_ones_are_refused_or_mended_and_the_rest_kept_as_sent() -> None:
    sound = make_span("sound", {"a": 1}, parent_span_id=b"\x01" * 8)
    late_event = make_span("late event", events=(("e", {}),))
    late_event.events[0].time_unix_nano = LATE
    request = make_request(
        "svc",
        make_span("late start", start_ns=LATE),
        sound,
        make_span("short trace id", trace_id=b"\x01" * 15),
        make_span("zero trace id", trace_id=bytes(16)),
        make_span("zero span id", span_id=bytes(8)),
        make_span("zero parent", parent_span_id=bytes(8)),
        make_span("short parent", parent_span_id=b"\x01" * 7),
        late_event,
    )
    admission = check_request(request)
    kept = _spans(request)
    assert [span.name for span in kept] == [  # type: ignore[attr-defined]
        "sound",
        "zero parent",
        "short parent",
        "late event",
    ]
    assert kept[0] == sound  # untouched, parent and all
    assert [span.parent_span_id for span in kept[1:3]] == [b"", b""]  # type: ignore[attr-defined]
    assert kept[3].events[0].time_unix_nano == MAX_TIME_NS  # type: ignore[attr-defined]
    assert (admission.rejected, admission.clamped) == (4, 3)
    assert admission.message == (
        "span event time after 2100-01-01, the latest time the store holds: set to 2100-01-01; "
        "parent span id not 8 bytes or all zero: the span is a root (x2); "
        "span id not 8 bytes or all zero (invalid in OTLP); "
        "span trace id not 16 bytes or all zero (invalid in OTLP) (x2); "
        "span start time after 2100-01-01, the latest time the store holds"
    )


def test_a_request_of_sound_spans_is_left_as_it_came() -> None:
    request = make_request(
        "svc", *(make_span(f"s{i}", {"i": i}, parent_span_id=b"\x02" * 8) for i in range(5))
    )
    sent = request.SerializeToString()
    admission = check_request(request)
    assert not admission.changed and admission.message == ""
    assert request.SerializeToString() == sent


def test_records_older_than_the_store_keeps_are_refused() -> None:
    """A time before `oldest_ns` (what the tables' retention keeps) is refused, as the TTL would
    drop the row as it is inserted; one at the bound and later is kept."""
    oldest = MAX_TIME_NS // 2
    request = make_request(
        "svc",
        make_span("old", start_ns=oldest - 1),
        make_span("at the bound", start_ns=oldest),
        make_span("epoch", start_ns=1),
    )
    admission = check_request(request, oldest)
    assert [span.name for span in _spans(request)] == ["at the bound"]  # type: ignore[attr-defined]
    assert (admission.rejected, admission.clamped) == (2, 0)
    assert admission.message == (
        "span start time before 2035-01-01 00:00 UTC, older than the store keeps (its retention)"
        " (x2)"
    )
