"""Storage: the Store interface and its embedded (chDB) and server (ClickHouse) forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assay.collector.store.base import ClickHouseStore, Store, StoreError


@dataclass(frozen=True)
class StoreConfig:
    """Which store to open (the settings' part of it: `CollectorSettings.store`)."""

    storage: Path  # the embedded store's folder
    database: str
    clickhouse_url: str | None = None  # a ClickHouse server instead
    cluster: str | None = None  # the server's cluster to distribute the schema over


def open_store(config: StoreConfig) -> ClickHouseStore:
    """The server store when a ClickHouse URL is configured, else the embedded one."""
    if config.clickhouse_url:
        from assay.collector.store.server import ServerStore

        return ServerStore(config.clickhouse_url, cluster=config.cluster)
    if config.cluster:
        raise StoreError("--cluster needs a ClickHouse server (--clickhouse-url)")
    from assay.collector.store.embedded import EmbeddedStore

    return EmbeddedStore(config.storage, config.database)


__all__ = ["ClickHouseStore", "Store", "StoreConfig", "StoreError", "open_store"]
