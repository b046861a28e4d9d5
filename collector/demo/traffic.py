"""`assay demo`: a fake LLM provider and three instrumented services sending traffic through it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.profiles import PROFILES


def run_demo(endpoint: str, calls: int = 200, quiet: bool = False) -> str:
    """Send about `calls` LLM calls to the collector at `endpoint` (OTLP/gRPC); return a summary."""
    services = list(PROFILES)
    per_service = max(1, calls // len(services))
    started = time.monotonic()
    with FakeOpenAI(latency=0.01) as fake:
        processes = []
        for seed, service in enumerate(services, start=1):
            env = {
                **os.environ,
                "OTEL_SERVICE_NAME": service,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "ASSAY_DEMO_BASE_URL": fake.base_url,
                "ASSAY_DEMO_CALLS": str(per_service),
                "ASSAY_DEMO_SEED": str(seed),
            }
            env.pop("OTEL_TRACES_EXPORTER", None)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "assay.collector.demo.service"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL if quiet else None,
                )
            )
        codes = [p.wait() for p in processes]
    if any(codes):
        raise RuntimeError(f"a demo service failed (exit codes {codes})")
    seconds = time.monotonic() - started
    return (
        f"{per_service * len(services)} LLM calls from {len(services)} services "
        f"({', '.join(services)}) in {seconds:.1f}s"
    )
