"""`python -m tests.reliability.outage_collector FLAG collector ...`: the real `assay collector`
(its CLI, settings, signals and store) whose store fails every write and ping while the file
FLAG exists: a store outage for a collector running in its own process, switched from outside
by creating and removing FLAG."""

from __future__ import annotations

import sys
from pathlib import Path

from assay.collector import service
from assay.collector.cli import main
from assay.collector.store import StoreConfig
from assay.collector.store.base import ClickHouseStore
from tests.faults import FaultyStore


class SwitchedStore(FaultyStore):
    """Down while the flag file exists; closed with the collector (it owns the store here)."""

    def __init__(self, store: ClickHouseStore, flag: Path) -> None:
        self.flag = flag
        super().__init__(store)

    @property  # type: ignore[override]
    def down(self) -> bool:
        return self.flag.exists()

    @down.setter
    def down(self, value: bool) -> None:
        """The flag file decides."""

    def close(self) -> None:
        self.store.close()


def run() -> None:
    flag = Path(sys.argv.pop(1))
    open_store = service.open_store

    def switched(config: StoreConfig) -> ClickHouseStore:
        return SwitchedStore(open_store(config), flag)  # type: ignore[return-value]

    service.open_store = switched  # type: ignore[assignment]
    main()


if __name__ == "__main__":
    run()
