"""A span a client sent again whose copy is in a segment replayed at the next start (a crash
and a resend together) is one call in every rollup, and a replayed segment its first attempt
stored only in part still completes every rollup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.collector.spool import DiskSpool
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.reliability.replay_writer import CALL_COUNTS, run_in_a_process

pytestmark = pytest.mark.integration


def _call(user: str) -> Any:
    return make_span(
        attrs={
            sc.REQUEST_MODEL: "gpt-4o",
            sc.USAGE_INPUT_TOKENS: 10,
            sc.USAGE_OUTPUT_TOKENS: 5,
            sc.USER_ID: user,
            sc.SESSION_ID: f"session-{user}",
        }
    )


def _spool(folder: Path, *spans: Any) -> Path:
    """A spool holding one segment of `spans`, as a run that spooled it and was killed before
    storing it leaves it."""
    spool = DiskSpool(folder, max_bytes=10**8, max_age=60)
    spool.append("traces", make_request("resent-replay", *spans).SerializeToString())
    spool.close()
    return folder


def test_a_resent_call_in_a_segment_replayed_at_a_start_counts_once(tmp_path: Path) -> None:
    sent = [_call(f"user-{i}") for i in range(3)]
    run_in_a_process(tmp_path / "data", _spool(tmp_path / "first", *sent))
    # The client sent the first call again (its acknowledgement was lost) with a new one; the
    # collector spooled them and was killed before storing them: the next start replays them.
    replay = run_in_a_process(
        tmp_path / "data", _spool(tmp_path / "resent", sent[0], _call("user-new"))
    )

    assert replay["counts"] == dict.fromkeys(CALL_COUNTS, 4)
    assert replay["deduplicated"] == {"otel_traces": 1, "llm_calls": 1}


def test_a_replayed_segment_stored_in_part_completes_every_rollup_and_counts_a_resend_once(
    tmp_path: Path,
) -> None:
    sent = [_call(f"user-{i}") for i in range(3)]
    run_in_a_process(tmp_path / "data", _spool(tmp_path / "first", *sent))
    resent = _spool(tmp_path / "resent", sent[0], _call("user-new"), _call("user-newer"))
    # The run that took the resend was killed after storing its calls and every rollup of
    # them but the hourly one: the hourly rollup lacks them, the other tables have them.
    killed = run_in_a_process(tmp_path / "data", resent, "--killed-before", "llm_calls_1h_mv")
    assert killed["counts"] == {**dict.fromkeys(CALL_COUNTS, 5), "llm_calls_1h": 3}

    replay = run_in_a_process(tmp_path / "data", resent)

    assert replay["counts"] == dict.fromkeys(CALL_COUNTS, 5)
