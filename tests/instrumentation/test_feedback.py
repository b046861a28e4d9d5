"""`assay.instrumentation.feedback()`: an application's end-user grade reaches the collector."""

from __future__ import annotations

import logging
import os

import pytest

from assay.instrumentation import feedback
from tests.conftest import RunningCollector, free_port


def test_feedback_on_a_trace_is_stored(collector: RunningCollector) -> None:
    trace_id = os.urandom(16).hex()
    assert feedback(trace_id, 0, "did not answer", author="user-7", url=collector.http_url)
    rows = collector.query(
        "SELECT span_id, value, explanation, author, source FROM assay.scores FINAL"
        f" WHERE trace_id = '{trace_id}'"
    )
    assert rows == [
        {
            "span_id": "",
            "value": 0.0,
            "explanation": "did not answer",
            "author": "user-7",
            "source": "human",
        }
    ]


def test_feedback_takes_the_trace_id_of_a_span_context(
    collector: RunningCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_URL", collector.http_url)
    trace_id = int.from_bytes(os.urandom(16), "big")
    assert feedback(trace_id, True)
    rows = collector.query(
        f"SELECT value FROM assay.scores WHERE trace_id = '{trace_id:032x}' AND name = 'feedback'"
    )
    assert rows == [{"value": 1.0}]


def test_an_unreachable_collector_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, "assay.instrumentation"):
        assert feedback("ab" * 8, 1, url=url, timeout=2) is False
    assert "could not reach the collector" in caplog.text


def test_a_refusal_is_logged_with_the_collectors_reason(
    collector: RunningCollector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "assay.instrumentation"):
        assert feedback("ab" * 8, 1, "x" * 10_001, url=collector.http_url) is False
    assert "refused (400)" in caplog.text and "over 10000" in caplog.text


@pytest.mark.parametrize(
    ("target", "value", "fragment"),
    [("nope", 1, "neither a trace id"), ("ab" * 8, 5, "value must be"), (None, 1, "give a")],
)
def test_arguments_that_cannot_be_a_grade_raise(target: object, value: int, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        feedback(target, value)  # type: ignore[arg-type]
