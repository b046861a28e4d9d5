"""The spool keeps accepted records on disk until released, survives restarts, and skips torn
or corrupt records without losing the rest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assay.collector.spool import HEADER, DiskSpool, SpoolFull, decode_records, encode_record


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
    assert segment.token.startswith(spool.instance)
    spool.release(segment)
    assert spool.stats().bytes == 0
    assert [p.stat().st_size for p in tmp_path.glob("*.seg")] == [0]  # just the new active one
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


def test_a_restart_replays_what_was_not_released(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    first.append("traces", b"one")
    first.seal()
    first.append("traces", b"two")  # still in the active segment when the process "dies"
    token = f"{first.instance}-1"
    del first  # no close(): like kill -9, the files are all that is left

    second = _spool(tmp_path)
    replayed = second.next_segment(timeout=1)
    assert replayed is not None and replayed.token == token
    assert replayed.records == [("traces", b"one")]
    second.release(replayed)
    unsealed = second.next_segment(timeout=1)  # the active segment of the dead run, sealed now
    assert unsealed is not None and unsealed.records == [("traces", b"two")]
    second.release(unsealed)
    assert second.stats().bytes == 0
    second.close()


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


def test_a_full_disk_refuses_and_never_leaves_a_partial_record(tmp_path: Path) -> None:
    """The process' file-size limit stands in for a full disk: writes fail with EFBIG."""
    script = textwrap.dedent(f"""
        import resource, signal
        from pathlib import Path
        from assay.collector.spool import DiskSpool, SpoolFull, decode_records
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
        records, corrupt = decode_records(seg.read_bytes())
        assert corrupt == 0 and len(records) == accepted > 0, (corrupt, len(records), accepted)
        print("accepted", accepted)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "accepted 6" in result.stdout
