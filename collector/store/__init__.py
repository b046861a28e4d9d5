"""Storage: the Store interface and its embedded (chDB) and server (ClickHouse) forms."""

from __future__ import annotations

from assay.collector.settings import CollectorSettings
from assay.collector.store.base import ClickHouseStore, Store, StoreError


def open_store(settings: CollectorSettings) -> ClickHouseStore:
    """The server store when a ClickHouse URL is configured, else the embedded one."""
    if settings.clickhouse_url:
        from assay.collector.store.server import ServerStore

        return ServerStore(settings.clickhouse_url, cluster=settings.cluster)
    if settings.cluster:
        raise StoreError("--cluster needs a ClickHouse server (--clickhouse-url)")
    from assay.collector.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.storage, settings.database)


__all__ = ["ClickHouseStore", "Store", "StoreError", "open_store"]
