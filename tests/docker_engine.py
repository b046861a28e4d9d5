"""Tests that need a Docker engine (ClickHouse server, Grafana, compose) skip cleanly without."""

from __future__ import annotations

import pytest

from tests import tiers


def require_docker(what: str) -> None:
    """Skip the calling test, saying why, when no Docker engine answers here."""
    tiers.require_tier("docker", f"runs {what}")
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine here ({type(exc).__name__}): {what} runs where it is")
