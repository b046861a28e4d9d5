"""A bounded libFuzzer run (atheris) over the decoders and normalizer finds no crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_otlp.py")


@pytest.mark.subprocess
def test_coverage_guided_fuzzing_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris has no build for this platform")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    from tests.collector.otlp_builders import make_request, make_span

    (seeds / "proto").write_bytes(b"\x00" + make_request("s", make_span()).SerializeToString())
    (seeds / "json").write_bytes(
        b'\x01{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}'
    )
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(seeds),
            "-runs=60000",
            "-max_len=4096",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 60000 runs" in result.stderr
