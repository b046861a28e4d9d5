"""Collector test fixtures: one in-process embedded store (chDB allows one folder per process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assay.collector.store.embedded import EmbeddedStore


@pytest.fixture(scope="session")
def embedded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("embedded"), "assay")
    store.migrate()
    yield store
    store.close()
