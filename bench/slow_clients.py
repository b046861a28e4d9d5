"""Slow-loris benchmark: does a collector keep serving while clients hold connections to its
HTTP port without finishing a request?

Starts one collector (embedded storage) under a low file-descriptor limit (`--fd-limit`, so a
few hundred connections reach it, where in production 20,000 would), opens `--held` TCP
connections to its HTTP port that send nothing, then probes `/api/health`, an OTLP/HTTP export
and an OTLP/gRPC export (5 s deadline each) and counts the held connections the collector has
not closed: right after opening them, and `--wait` seconds later.

Run: `.venv/bin/python bench/slow_clients.py [--held 400] [--fd-limit 256] [--wait 15]`; run
it with another checkout's Python (`/work/main/.venv/bin/python bench/slow_clients.py`) to
measure that checkout's collector.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import free_port


def _probe(http: str, grpc_target: str, held: list[socket.socket]) -> str:
    out = []
    try:
        out.append(f"health {httpx.get(f'{http}/api/health', timeout=5).status_code}")
    except httpx.HTTPError as exc:
        out.append(f"health {type(exc).__name__}")
    body = make_request("slow-clients", make_span()).SerializeToString()
    try:
        answer = httpx.post(
            f"{http}/v1/traces",
            content=body,
            headers={"content-type": "application/x-protobuf"},
            timeout=5,
        )
        out.append(f"OTLP/HTTP {answer.status_code}")
    except httpx.HTTPError as exc:
        out.append(f"OTLP/HTTP {type(exc).__name__}")
    try:
        with grpc.insecure_channel(grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            stub.Export(make_request("slow-clients", make_span()), timeout=5)
        out.append("OTLP/gRPC ok")
    except grpc.RpcError as exc:
        out.append(f"OTLP/gRPC {exc.code().name}")  # type: ignore[attr-defined]
    still_open = 0
    for sock in held:
        sock.setblocking(False)
        try:
            still_open += sock.recv(1) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
    return f"{', '.join(out)}; held connections still open {still_open}/{len(held)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--held", type=int, default=400)
    parser.add_argument("--fd-limit", type=int, default=256)
    parser.add_argument("--wait", type=float, default=15.0)
    args = parser.parse_args()
    grpc_port, http_port = free_port(), free_port()
    http = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryDirectory() as folder:
        command = (
            f"ulimit -n {args.fd_limit}; exec {sys.executable} -m assay.collector collector "
            f"--storage {folder}/data --grpc-port {grpc_port} --http-port {http_port}"
        )
        collector = subprocess.Popen(
            ["bash", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{http}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            held = [
                socket.create_connection(("127.0.0.1", http_port), timeout=2)
                for _ in range(args.held)
            ]
            target = f"127.0.0.1:{grpc_port}"
            print(f"{args.held} idle connections, fd limit {args.fd_limit}", flush=True)
            print(f"  right after opening: {_probe(http, target, held)}", flush=True)
            time.sleep(args.wait)
            print(f"  {args.wait:.0f} s later:         {_probe(http, target, held)}", flush=True)
            for sock in held:
                sock.close()
        finally:
            collector.terminate()
            collector.wait(60)
            os.sync()


if __name__ == "__main__":
    main()
