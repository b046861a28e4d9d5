"""The receivers' check of a trace request: every kind of span the store cannot hold among sound
ones, each refused or changed as the README's "What the collector refuses" says, with one
reason per kind, in the order of the spans from the last."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from assay.collector.receivers.validation import MAX_TIME_NS, check_request, export_response
from assay.collector.schema import (
    LlmCallRow,
    LogRow,
    MetricGaugeRow,
    MetricSumRow,
    TraceRow,
)
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_log_record, make_log_request, make_request, make_span

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
    admission = check_request(request, {TraceRow.table: oldest, LlmCallRow.table: oldest})
    assert [span.name for span in _spans(request)] == ["at the bound"]  # type: ignore[attr-defined]
    assert (admission.rejected, admission.clamped) == (2, 0)
    assert admission.message == (
        "span start time before 2035-01-01 00:00 UTC, older than the store keeps (its retention)"
        " (x2)"
    )


DAY = 86_400 * 10**9
NOW = MAX_TIME_NS // 2
LLM = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "gpt-4o"}


def _aged(days: float, llm: bool) -> object:
    name = f"{'llm' if llm else 'plain'} {days}d"
    return make_span(name, LLM if llm else {"http.route": "/"}, start_ns=NOW - int(days * DAY))


def _check_ages(spans_kept: int, calls_kept: int) -> tuple[list[str], object]:
    """Plain and LLM spans of several ages against tables keeping spans `spans_kept` days and
    calls `calls_kept` days (0: forever)."""
    request = make_request(
        "svc", *(_aged(days, llm) for days in (1, 10, 100) for llm in (False, True))
    )
    oldest = {
        table: NOW - kept * DAY
        for table, kept in ((TraceRow.table, spans_kept), (LlmCallRow.table, calls_kept))
        if kept
    }
    admission = check_request(request, oldest)
    return [span.name for span in _spans(request)], admission  # type: ignore[attr-defined]


def test_a_span_is_kept_as_long_as_the_tables_it_lives_in_keep_it() -> None:
    """Spans kept 7 days, calls 90: a plain span older than 7 days is refused; an LLM call is
    taken until 90 days, told that its span row expires (its call row stays)."""
    kept, admission = _check_ages(7, 90)
    assert kept == ["plain 1d", "llm 1d", "llm 10d"]
    assert (admission.rejected, admission.clamped, admission.warned) == (3, 0, 1)  # type: ignore[attr-defined]
    message = admission.message  # type: ignore[attr-defined]
    assert "span start time before 2034-12-25 00:00 UTC, older than the store keeps" in message
    assert "LLM span start time before 2034-10-03 00:00 UTC, older than the store keeps" in message
    assert "kept as an LLM call (llm_calls) without its span row (otel_traces" in message
    response = export_response("traces", admission)  # type: ignore[arg-type]
    assert response.partial_success.rejected_spans == 3  # type: ignore[attr-defined]


def test_an_llm_call_older_than_its_calls_table_keeps_is_kept_as_a_span() -> None:
    kept, admission = _check_ages(90, 7)
    assert kept == ["plain 1d", "llm 1d", "plain 10d", "llm 10d"]
    assert (admission.rejected, admission.warned) == (2, 1)  # type: ignore[attr-defined]
    assert "kept as a span (otel_traces) without its call row" in admission.message  # type: ignore[attr-defined]


def test_spans_every_table_keeps_are_not_asked_whether_they_are_calls() -> None:
    kept, admission = _check_ages(0, 0)
    assert len(kept) == 6 and not admission.to_tell  # type: ignore[attr-defined]
    # A warning alone is still told: a partial success of 0 rejected, with the reason.
    request = make_request("svc", _aged(10, True))  # type: ignore[arg-type]
    told = check_request(request, {TraceRow.table: NOW - 7 * DAY})
    assert not told.changed and told.to_tell
    answer = export_response("traces", told).partial_success  # type: ignore[attr-defined]
    assert answer.rejected_spans == 0 and "kept as an LLM call" in answer.error_message


def test_logs_and_metric_points_are_held_to_their_own_tables() -> None:
    old, recent = NOW - 10 * DAY, NOW - DAY
    logs = make_log_request(
        "svc", make_log_record("a", body="old"), make_log_record("a", body="recent")
    )
    records = logs.resource_logs[0].scope_logs[0].log_records
    records[0].time_unix_nano, records[1].time_unix_nano = old, recent
    week = NOW - 7 * DAY
    assert check_request(logs, {LogRow.table: week, TraceRow.table: NOW}).rejected == 1
    assert [r.body.string_value for r in records] == ["recent"]

    metrics = ExportMetricsServiceRequest()
    scope = metrics.resource_metrics.add().scope_metrics.add()
    for kind in ("gauge", "sum", "summary"):
        points = getattr(scope.metrics.add(name=kind), kind).data_points
        points.add(time_unix_nano=old)
        points.add(time_unix_nano=recent)
    # gauges kept 7 days, sums forever; summaries have no table and are not stored anyway
    admission = check_request(metrics, {MetricGaugeRow.table: week, MetricSumRow.table: 0})
    assert admission.rejected == 1
    assert [len(getattr(m, m.name).data_points) for m in scope.metrics] == [1, 2, 2]
