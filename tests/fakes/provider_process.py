"""`assay fake-provider` started as a user starts it: a process of this venv's `assay` command."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port

ASSAY = Path(sys.executable).parent / "assay"


@contextmanager
def fake_provider_process(*arguments: str, timeout: float = 60.0) -> Iterator[str]:
    """`assay fake-provider ARGUMENTS` on a free port: yields its address, checks a clean stop
    (SIGTERM, exit code 0) and that it said how to point the clients at it."""
    port = free_port()
    process = subprocess.Popen(
        [str(ASSAY), "fake-provider", "--port", str(port), *arguments],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"nothing listens on {port}"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in stderr, stderr
