"""One fault-injecting store for the tests: the real store behind switches that make writes fail."""

from __future__ import annotations

from typing import Any

from assay.collector.store.base import ClickHouseStore, DataError, Inserted, Store, StoreError


class FaultyStore:
    """Wraps a real store; reads and everything else pass through untouched.

    Writes fail while `down` is set (an outage), and the first `fail_first` writes fail (a flaky
    connection; with `table`, the first writes into that table only). With `lose_reply` those
    first failures happen after the rows landed: the store took the write but the
    acknowledgement was lost, so the writer retries a write that is already there. With
    `refuse` set, a write holding that string anywhere in its values fails as ClickHouse fails a
    value it cannot hold (a data error: it fails again every time), also while the store is
    down. The wrapper does not spell out the store's write signature, so it keeps working as
    that signature grows.
    """

    def __init__(
        self,
        store: Store,
        *,
        fail_first: int = 0,
        lose_reply: bool = False,
        table: str | None = None,
    ) -> None:
        self.store = store
        self.down = False
        self.fail_first = fail_first
        self.lose_reply = lose_reply
        self.table = table  # when set, only writes into this table fail (the first ones)
        self.table_writes = 0
        self.refuse: str | None = None
        self.attempts = 0  # every write tried, failed or not
        self.failed_writes = 0

    def insert(self, *args: Any, **kwargs: Any) -> Inserted:
        self.attempts += 1
        if self.refuse is not None and self.refuse in repr((args, kwargs)):
            self.failed_writes += 1
            raise DataError(f"Code: 53. DB::Exception: cannot hold {self.refuse!r} (injected)")
        if self.down:
            self.failed_writes += 1
            raise StoreError("ClickHouse unreachable (injected)")
        if self.table is not None:
            if args[0] != self.table:
                return self.store.insert(*args, **kwargs)
            self.table_writes += 1
        if (self.table_writes if self.table is not None else self.attempts) <= self.fail_first:
            self.failed_writes += 1
            if self.lose_reply:
                self.store.insert(*args, **kwargs)
            raise StoreError("connection reset (injected)")
        return self.store.insert(*args, **kwargs)

    insert_rows = ClickHouseStore.insert_rows  # through this wrapper's `insert`, faults and all

    def ping(self) -> bool:
        return not self.down and self.store.ping()

    def close(self) -> None:
        """The test session owns the real store: whoever is handed this one must not close it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)
