"""The spool keeps accepted records on disk until released, survives restarts, skips torn or
corrupt records without losing the rest, and gives every segment a token of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assay.collector.spool import (
    HEADER,
    SEGMENT_HEADER,
    SEGMENT_MAGIC,
    DiskSpool,
    MemorySpool,
    Spool,
    SpoolFormatError,
    SpoolFull,
    decode_records,
    encode_record,
)


def _spool(folder: Path, **kw: object) -> DiskSpool:
    return DiskSpool(folder, **{"max_bytes": 10**7, "max_age": 60.0, **kw})  # type: ignore[arg-type]


def test_records_come_back_in_order_in_sealed_segments(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for i in range(5):
        spool.sync(spool.append("traces", f"payload-{i}".encode()))
    assert spool.next_segment(timeout=0.01) is None  # not sealed yet: neither big nor old
    spool.seal()
    segment = spool.next_segment(timeout=1)
    assert segment is not None
    assert segment.records == [("traces", f"payload-{i}".encode()) for i in range(5)]
    spool.release(segment)
    assert spool.stats().bytes == 0
    # Just the new active segment is left: its header, no record.
    assert [p.stat().st_size for p in tmp_path.glob("*.seg")] == [SEGMENT_HEADER.size]
    spool.close()


def test_a_segment_is_sealed_when_big_or_old(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment_bytes=1000, max_age=0.05)
    spool.append("logs", b"x" * 1200)  # bigger than a segment: sealed at once
    big = spool.next_segment(timeout=0.01)
    assert big is not None and big.records == [("logs", b"x" * 1200)]
    spool.release(big)
    spool.append("traces", b"small")
    old = spool.next_segment(timeout=2)  # sealed by age
    assert old is not None and old.records == [("traces", b"small")]
    spool.close()


@pytest.mark.parametrize("kind", ["disk", "memory"])
def test_the_writer_can_read_ahead_while_earlier_segments_stay_until_released(
    tmp_path: Path, kind: str
) -> None:
    spool: Spool = _spool(tmp_path) if kind == "disk" else MemorySpool(10**7, max_age=60.0)
    for i in range(3):
        spool.append("traces", f"payload-{i}".encode())
        spool.seal()
    first = spool.next_segment(timeout=0.01)
    assert first is not None and first.records == [("traces", b"payload-0")]
    assert not first.replayed  # its first reading in the run that spooled it
    again = spool.next_segment(timeout=0.01)
    assert again == first  # still the oldest: not released
    assert again is not None and again.replayed and not first.replayed  # the store may have it
    second = spool.next_segment(timeout=0.01, after=first.seq)
    third = spool.next_segment(timeout=0.01, after=second.seq if second else 0)
    assert second is not None and second.records == [("traces", b"payload-1")]
    assert third is not None and third.records == [("traces", b"payload-2")]
    assert spool.next_segment(timeout=0.01, after=third.seq) is None  # nothing sealed after it
    spool.append("traces", b"payload-3")  # the active segment, sealed when asked for after a wait
    spool.max_age = 0.05
    fourth = spool.next_segment(timeout=2, after=third.seq)
    assert fourth is not None and fourth.records == [("traces", b"payload-3")]
    assert not (second.replayed or third.replayed or fourth.replayed)
    for segment in (first, second, third):
        spool.release(segment)
    fourth_again = spool.next_segment(timeout=0.01)
    assert fourth_again == fourth and fourth_again is not None and fourth_again.replayed
    assert spool.stats().segments == 1
    spool.close()


def test_a_restart_replays_what_was_not_released(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    first.append("traces", b"one")
    first.seal()
    first.append("traces", b"two")  # still in the active segment when the process "dies"
    sealed = first.next_segment(timeout=1)
    assert sealed is not None and not sealed.replayed
    del first  # no close(): like kill -9, the files are all that is left

    second = _spool(tmp_path)
    assert second.replaying()
    replayed = second.next_segment(timeout=1)
    assert replayed is not None and replayed.token == sealed.token  # the same, so deduplicated
    assert replayed.records == [("traces", b"one")]
    assert replayed.replayed  # the dead run may have stored some of it: the store counts
    second.release(replayed)
    unsealed = second.next_segment(timeout=1)  # the active segment of the dead run, sealed now
    assert unsealed is not None and unsealed.records == [("traces", b"two")]
    assert unsealed.replayed
    assert second.replaying()  # handed out, not stored yet
    second.release(unsealed)
    assert not second.replaying()
    second.append("traces", b"three")  # this run's own
    second.seal()
    own = second.next_segment(timeout=1)
    assert own is not None and own.records == [("traces", b"three")] and not own.replayed
    second.release(own)
    assert second.stats().bytes == 0
    second.close()


def test_the_resent_spans_of_a_segment_are_kept_until_it_is_released(tmp_path: Path) -> None:
    """What the writer left out of a segment as sent again survives a crash, so that a replay
    leaves out the same calls; a released segment's record goes with it."""
    first = _spool(tmp_path)
    first.append("traces", b"one")
    first.seal()
    segment = first.next_segment(timeout=1)
    assert segment is not None and first.resent_spans(segment) is None  # not yet looked up
    resent = {"llm_calls": [("t1", "s1")], "tool_calls": []}
    first.record_resent(segment, resent)
    del first  # kill -9

    second = _spool(tmp_path)
    replayed = second.next_segment(timeout=1)
    assert replayed is not None and second.resent_spans(replayed) == resent
    second.release(replayed)
    assert {p.suffix for p in tmp_path.iterdir()} == {".seg"}
    while (empty := second.next_segment(timeout=0.1)) is not None:  # the dead run's active one
        second.release(empty)
    # Numbers start again at 1 once the spool is empty: a later segment 1 has no record.
    second.close()
    third = _spool(tmp_path)
    third.append("traces", b"two")
    third.seal()
    later = third.next_segment(timeout=1)
    assert later is not None and later.seq == replayed.seq
    (tmp_path / f"{later.seq:012d}.resent").write_text(
        json.dumps({"token": segment.token, "spans": {"llm_calls": [["t1", "s1"]]}})
    )  # a record of an earlier segment 1: numbers are reused, tokens never
    assert third.resent_spans(later) is None
    third.close()


@pytest.mark.parametrize(
    "damaged", [b"", b"{not json", b"[1, 2]", b'{"token": "x"}', b"\xff\xfe", b'{"spans": 3}']
)
def test_a_damaged_resent_record_is_read_as_none(tmp_path: Path, damaged: bytes) -> None:
    """A record the disk damaged reads as no record (the replay looks its calls up again)
    rather than raising in the writer at every start."""
    first = _spool(tmp_path)
    first.append("traces", b"one")
    first.seal()
    segment = first.next_segment(timeout=1)
    assert segment is not None
    first.record_resent(segment, {"llm_calls": [("t1", "s1")]})
    del first  # kill -9
    (tmp_path / f"{segment.seq:012d}.resent").write_bytes(
        damaged.replace(b'"x"', json.dumps(segment.token).encode())
    )
    second = _spool(tmp_path)
    replayed = second.next_segment(timeout=1)
    assert replayed is not None and replayed.token == segment.token
    assert second.resent_spans(replayed) is None
    second.close()


def test_a_memory_spool_keeps_resent_spans_until_release() -> None:
    spool = MemorySpool(max_bytes=10**6)
    spool.append("traces", b"one")
    spool.seal()
    segment = spool.next_segment(timeout=1)
    assert segment is not None
    spool.record_resent(segment, {"llm_calls": []})
    assert spool.resent_spans(segment) == {"llm_calls": []}
    spool.release(segment)
    assert spool.resent_spans(segment) is None


def test_a_torn_record_at_the_end_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for payload in (b"alpha", b"beta", b"gamma-long-payload"):
        spool.append("traces", payload)
    spool.close()
    (segment_file,) = tmp_path.glob("*.seg")
    data = segment_file.read_bytes()
    segment_file.write_bytes(data[:-5])  # a crash in the middle of writing the last record

    reopened = _spool(tmp_path)
    segment = reopened.next_segment(timeout=1)
    assert segment is not None
    assert segment.records == [("traces", b"alpha"), ("traces", b"beta")]
    assert segment.corrupt == 1 and reopened.stats().corrupt_records == 1
    reopened.close()


def test_a_corrupt_record_in_the_middle_does_not_block_the_rest() -> None:
    good = [encode_record("traces", f"record-{i}".encode()) for i in range(4)]
    damaged = bytearray(good[1])
    damaged[HEADER.size + 2] ^= 0xFF  # flip a payload byte: the checksum fails
    lying = bytearray(good[2])
    lying[4:8] = (10**6).to_bytes(4, "little")  # a length far past the end
    records, corrupt = decode_records(b"".join([good[0], bytes(damaged), bytes(lying), good[3]]))
    assert records == [("traces", b"record-0"), ("traces", b"record-3")]
    assert corrupt == 2
    assert decode_records(b"garbage" + good[0]) == ([("traces", b"record-0")], 1)


def test_the_size_limit_refuses_new_records(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=100)
    spool.append("traces", b"x" * 50)
    with pytest.raises(SpoolFull, match="spool full"):
        spool.append("traces", b"x" * 50)
    assert spool.stats().refused_full == 1
    spool.close()


@pytest.mark.subprocess
def test_a_full_disk_refuses_and_never_leaves_a_partial_record(tmp_path: Path) -> None:
    """The process' file-size limit stands in for a full disk: writes fail with EFBIG."""
    script = textwrap.dedent(f"""
        import resource, signal
        from pathlib import Path
        from assay.collector.spool import SEGMENT_HEADER, DiskSpool, SpoolFull, decode_records
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        spool = DiskSpool(Path({str(tmp_path)!r}), max_bytes=10**9, max_age=600, fsync="never")
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
        accepted = 0
        try:
            for _ in range(100):
                spool.append("traces", b"y" * 3000)
                accepted += 1
        except SpoolFull as exc:
            assert "cannot write to the spool" in str(exc), exc
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert spool.stats().refused_disk == 1
        spool.close()
        (seg,) = Path({str(tmp_path)!r}).glob("*.seg")
        records, corrupt = decode_records(seg.read_bytes()[SEGMENT_HEADER.size :])
        assert corrupt == 0 and len(records) == accepted > 0, (corrupt, len(records), accepted)
        print("accepted", accepted)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "accepted 6" in result.stdout


@pytest.mark.subprocess
def test_a_full_disk_at_start_still_replays_what_the_spool_holds(tmp_path: Path) -> None:
    """A collector stopped by a full disk must start again to drain its spool (often what
    filled the disk): creating the new active segment fails, the start does not. Requests are
    refused until a probe write passes; then they are taken again."""
    earlier = DiskSpool(tmp_path, max_bytes=10**9, max_age=600, fsync="never")
    earlier.append("traces", b"kept" * 100)
    earlier.close()
    script = textwrap.dedent(f"""
        import resource, signal
        from pathlib import Path
        from assay.collector.spool import DiskSpool, SpoolFull
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        spool = DiskSpool(Path({str(tmp_path)!r}), max_bytes=10**9, max_age=600, fsync="never")
        assert spool.stats().disk_failing_since > 0
        assert "File too large" in spool.stats().disk_error, spool.stats().disk_error
        segment = spool.next_segment(timeout=1)
        assert segment is not None and segment.records == [("traces", b"kept" * 100)]
        spool.release(segment)
        try:
            spool.append("traces", b"refused")
            raise AssertionError("taken while the disk refuses")
        except SpoolFull as exc:
            assert exc.disk and "File too large" in str(exc), exc
        spool.probe_disk()
        assert spool.stats().disk_failing_since > 0  # the probe failed too
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        spool._next_probe = 0.0  # the next probe without waiting its second
        spool.probe_disk()
        assert spool.stats().disk_failing_since == 0 and spool.stats().disk_error == ""
        spool.append("traces", b"taken")
        spool.seal()
        segment = spool.next_segment(timeout=1)
        assert segment is not None and segment.records == [("traces", b"taken")]
        print("ok")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _drain(spool: DiskSpool | MemorySpool) -> list[str]:
    """Seal, write nowhere and release everything; the tokens of the segments, in order."""
    spool.seal()
    tokens = []
    while (segment := spool.next_segment(timeout=0.01)) is not None:
        tokens.append(segment.token)
        spool.release(segment)
    return tokens


def test_tokens_are_never_reused_across_lives_deleted_or_copied_folders(tmp_path: Path) -> None:
    """The bug of issue #14: a drained spool numbered its segments from 1 again, and its tokens
    repeated the previous life's, so the store dropped the new rows as duplicates."""
    seen: list[str] = []
    for life in range(3):  # clean stops: each life drains the spool and starts from number 1
        spool = _spool(tmp_path / "spool")
        for i in range(3):
            spool.append("traces", f"life {life} record {i}".encode())
            seen += _drain(spool)
        spool.close()
    shutil.rmtree(tmp_path / "spool")  # a deleted spool folder
    spool = _spool(tmp_path / "spool")
    spool.append("traces", b"after the folder was deleted")
    spool.seal()
    shutil.copytree(tmp_path / "spool", tmp_path / "copy")  # a copied one: the same data twice
    original, copy = spool.next_segment(timeout=1), _spool(tmp_path / "copy").next_segment(1)
    assert original is not None and copy is not None and original.token == copy.token
    seen.append(original.token)
    memory = MemorySpool(max_bytes=10**6, max_age=60)
    memory.append("traces", b"in memory")
    seen += _drain(memory)
    assert len(seen) == len(set(seen)) == 11


def test_a_segment_of_the_previous_format_is_replayed_with_a_stable_token(tmp_path: Path) -> None:
    """Format 1 (no header) is what the first releases wrote; it is replayed, never dropped."""
    old = encode_record("traces", b"written by 0.1") + encode_record("logs", b"and a log")
    (tmp_path / "000000000007.seg").write_bytes(old)
    tokens = []
    for _ in range(2):  # a replay that fails is replayed again with the same token
        spool = _spool(tmp_path)
        assert spool.stats().bytes == len(old)
        segment = spool.next_segment(timeout=1)
        assert segment is not None and segment.seq == 7
        assert segment.records == [("traces", b"written by 0.1"), ("logs", b"and a log")]
        tokens.append(segment.token)
        del spool
    assert tokens[0] == tokens[1] and tokens[0].startswith("v1-")
    spool = _spool(tmp_path)
    spool.append("traces", b"new")  # numbered after the old segment, in the new format
    drained = _drain(spool)  # the old one, the two empty ones the "crashes" left, the new one
    assert drained[0] == tokens[0] and len(set(drained)) == len(drained) == 4
    assert spool.stats().bytes == 0
    spool.close()


def test_a_segment_of_a_newer_format_stops_the_start_and_is_kept(tmp_path: Path) -> None:
    future = SEGMENT_HEADER.pack(SEGMENT_MAGIC, 99, bytes(16)) + encode_record("traces", b"x")
    path = tmp_path / "000000000003.seg"
    path.write_bytes(future)
    with pytest.raises(SpoolFormatError, match=r"000000000003.seg has format 99.*newer Assay"):
        _spool(tmp_path)
    assert path.read_bytes() == future and len(list(tmp_path.glob("*.seg"))) == 1


def test_a_segment_created_just_before_a_crash_is_replayed_as_empty(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    first.append("traces", b"one")
    first.seal()  # segment 2 is created now, with its header and no record
    del first
    (tmp_path / "000000000002.seg").write_bytes(b"AS")  # even its header cut short
    second = _spool(tmp_path)
    assert [s.records for s in iter(lambda: _take(second), None)] == [[("traces", b"one")], []]
    assert second.stats().bytes == 0
    second.close()


def _take(spool: DiskSpool) -> list[tuple[str, bytes]] | None:
    segment = spool.next_segment(timeout=0.01)
    if segment is not None:
        spool.release(segment)
    return segment


def test_a_failed_fsync_refuses_its_records_even_once_fsync_works_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync that fails (EIO: a bad disk) may leave the records behind it only in memory,
    and the kernel forgets the error, so a later fsync succeeds: every record written since
    the last good fsync is refused, then and later, whether the failure hit a request's fsync
    or the seal of its segment. (The failure is injected: no filesystem here fails on demand.)"""
    import errno
    import os

    from assay.collector import spool as spool_module

    real_fsync = os.fsync
    failing: list[int] = []

    def fsync(fd: int) -> None:
        if failing:
            failing.pop()
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", fsync)
    spool = _spool(tmp_path, fsync="always")
    durable = spool.append("traces", b"a")
    spool.sync(durable)

    lost = [spool.append("traces", b"b"), spool.append("traces", b"c")]
    failing.append(1)
    with pytest.raises(SpoolFull, match="fsync failed"):
        spool.sync(lost[0])
    after = spool.append("traces", b"d")
    spool.sync(after)  # fsync works again and covers the new record...
    for ticket in lost:  # ...but not those written before the failure
        with pytest.raises(SpoolFull):
            spool.sync(ticket)
    spool.sync(durable)

    unsealed = spool.append("traces", b"e")
    failing.append(1)
    spool.seal()  # the seal's fsync fails: sealed all the same, its unsynced record refused
    with pytest.raises(SpoolFull):
        spool.sync(unsealed)
    next_one = spool.append("traces", b"f")
    spool.sync(next_one)
    assert spool.stats().refused_disk == 4

    # Refused is not dropped: whatever reached the segment is still replayed (at least once).
    spool.close()
    assert [payload for payload in _payloads(tmp_path)] == [b"a", b"b", b"c", b"d", b"e", b"f"]


def _payloads(folder: Path) -> list[bytes]:
    replay = _spool(folder)
    payloads = []
    while (segment := replay.next_segment(timeout=0.01)) is not None:
        payloads += [payload for _, payload in segment.records]
        replay.release(segment)
    replay.close()
    return payloads
