"""The schema as a store written before a migration had it, for the tests of that migration."""

from __future__ import annotations

import textwrap


def old_schema(skipped: str) -> str:
    """The opening of a script (run with the store's folder as its argument, in a process of its
    own: chDB keeps one engine per process) that creates the schema with every migration but
    those for which the Python condition `skipped` on `migration` holds, and leaves `store` open
    for the rows an older collector wrote."""
    return textwrap.dedent(
        f"""
        import sys, time
        from assay.collector.store.embedded import EmbeddedStore
        from assay.collector.store.migrations import load_migrations, preamble

        store = EmbeddedStore(sys.argv[1], "assay")
        for statement in preamble("assay"):
            store.command(statement)
        for migration in load_migrations("assay"):
            if {skipped}:
                continue
            for statement in migration.statements:
                store.command(statement)
            store.command(
                f"INSERT INTO assay.schema_migrations (version, name) "
                f"VALUES ({{migration.version}}, '{{migration.name}}')"
            )
        """
    )
