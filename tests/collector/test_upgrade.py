"""Upgrades and downgrades of a store: what a collector of one version finds in a store another
version wrote."""

from __future__ import annotations

import pytest

from assay.collector.store.base import StoreError
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.migrations import load_migrations, preamble
from tests.conftest import own_database


def test_a_store_a_newer_assay_migrated_is_refused_by_name(embedded_store: EmbeddedStore) -> None:
    """A downgrade (an older checkout started on a store a newer one migrated) stops the start
    naming the migrations it lacks, and leaves the store as it was; it used to start silently
    and write rows the newer schema's code does not expect."""
    with own_database(embedded_store, "newer", migrate=False) as own:
        db = own.database
        for statement in preamble(db):
            own.command(statement)
        newest = load_migrations(db)[-1]
        future = f"{newest.version + 1:03d}_from_a_newer_assay.sql"
        own.command(
            f"INSERT INTO {db}.schema_migrations (version, name) "
            f"VALUES ({newest.version + 1}, '{future}')"
        )
        with pytest.raises(StoreError, match=f"migrated by a newer Assay \\({future}; "):
            own.migrate()
        _, rows = own.query(f"SELECT name FROM {db}.schema_migrations")
        assert rows == [(future,)]  # nothing applied
        _, tables = own.query(f"SELECT name FROM system.tables WHERE database = '{db}'")
        assert tables == [("schema_migrations",)]
