"""The dead-letter folder's retry hand-off between a person (`assay deadletter retry`) and the
writer: an entry is never lost, whatever moment the person asks and whenever the collector
stops."""

from __future__ import annotations

from pathlib import Path

from assay.collector.deadletter import DeadLetter

ROWS = [["a", 1], ["b", 2]]


def folder_with_entry(tmp_path: Path) -> DeadLetter:
    letters = DeadLetter(tmp_path / "deadletter", max_bytes=10**6)
    letters.add("seg-1-otel_traces", "otel_traces", ["note", "n"], ROWS, "refused", attempts=1)
    return letters


def states(letters: DeadLetter) -> list[tuple[str, int, bool]]:
    return [(e.id, e.attempts, e.waiting_retry) for e in letters.entries()]


def test_a_retry_asked_for_while_the_writer_writes_back_a_refusal_is_kept(tmp_path: Path) -> None:
    letters = folder_with_entry(tmp_path)
    assert letters.request_retry("seg-1-otel_traces")
    taken = letters.take_retry("seg-1-otel_traces")  # the writer's retry: refused again
    assert taken is not None and taken.attempts == 1
    letters.add("seg-1-otel_traces", "otel_traces", taken.columns, taken.rows, "again", 2)
    # The person sees the entry dead-lettered again, and asks once more before the writer ends.
    assert letters.request_retry("seg-1-otel_traces")
    letters.retried("seg-1-otel_traces")
    assert states(letters) == [("seg-1-otel_traces", 2, True)]
    again = letters.take_retry("seg-1-otel_traces")
    assert again is not None and again.rows == ROWS


def test_a_retry_the_writer_could_not_do_now_stays_asked_for(tmp_path: Path) -> None:
    letters = folder_with_entry(tmp_path)
    letters.request_retry("seg-1-otel_traces")
    assert letters.take_retry("seg-1-otel_traces") is not None
    assert not letters.request_retry("seg-1-otel_traces")  # it is being retried
    assert letters.retries() == []
    letters.retry_later("seg-1-otel_traces")  # the store is down
    assert letters.retries() == ["seg-1-otel_traces"]


def test_a_retry_cut_short_by_a_stop_is_asked_for_again_at_the_next_start(tmp_path: Path) -> None:
    letters = folder_with_entry(tmp_path)
    letters.request_retry("seg-1-otel_traces")
    assert letters.take_retry("seg-1-otel_traces") is not None
    assert states(letters) == [("seg-1-otel_traces", 1, True)]  # listed while it is retried
    restarted = DeadLetter(letters.folder, max_bytes=10**6)
    assert restarted.retries() == ["seg-1-otel_traces"]
    assert states(restarted) == [("seg-1-otel_traces", 1, True)]


def test_a_stop_after_the_refusal_was_written_back_keeps_the_newer_entry(tmp_path: Path) -> None:
    letters = folder_with_entry(tmp_path)
    letters.request_retry("seg-1-otel_traces")
    taken = letters.take_retry("seg-1-otel_traces")
    assert taken is not None
    letters.add("seg-1-otel_traces", "otel_traces", taken.columns, taken.rows, "again", 2)
    restarted = DeadLetter(letters.folder, max_bytes=10**6)  # stopped before `retried`
    assert states(restarted) == [("seg-1-otel_traces", 2, False)]
    assert restarted.retries() == []
