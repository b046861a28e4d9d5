"""What a person's SQL may reach: the tables and functions ClickHouse's own parser finds in it.

`POST /api/query` runs on a read-only session, which stops writes but not reads of other
databases, nor (on a server, where readonly=2) table functions that open files or URLs. So
before the query runs, ClickHouse parses it (`EXPLAIN AST`, which executes nothing) and, for
SELECTs, resolves it (`EXPLAIN QUERY TREE`, which names every table the query reads, CTEs and
`IN table` included). Allowed:
- every table of the Assay database; unqualified names resolve there (the reader's current
  database) or to a CTE;
- from `system`, only tables that hold no data of anyone's: `one`, `numbers(_mt)`,
  `zeros(_mt)` and the reference lists `functions`, `table_functions`, `formats`,
  `data_type_families`, `time_zones`. Not `system.tables`/`columns` (they list every database):
  `SHOW TABLES` and `DESCRIBE <table>` answer that for Assay's tables;
- the table functions that generate rows: `numbers`, `zeros`, `generate_series`, `values`;
- statements: SELECT/WITH (UNION, INTERSECT, EXCEPT), EXPLAIN, DESCRIBE, `SHOW TABLES`,
  `SHOW CREATE TABLE` and `EXISTS` on Assay's tables.
Refused besides: functions that read files or other tables (`file`, `dictGet*`, `joinGet`),
`INTO OUTFILE` (the embedded engine runs in this process and would write the file), and a
SETTINGS clause (it could lift the time and row limits where the session allows settings).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

SYSTEM_TABLES = frozenset(
    {
        "one",
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "functions",
        "table_functions",
        "formats",
        "data_type_families",
        "time_zones",
    }
)
TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "values"}
)
# Ordinary functions that read files, models, dictionaries or tables named in a string
# argument, and table-function names, in case one appears where the parser sees a plain call.
_REFUSED_FUNCTIONS = frozenset(
    {
        "file",
        "joinget",
        "joingetornull",
        "hascolumnintable",
        "catboostevaluate",
        "url",
        "s3",
        "s3cluster",
        "gcs",
        "azureblobstorage",
        "hdfs",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "mongodb",
        "redis",
        "sqlite",
        "odbc",
        "jdbc",
        "executable",
        "input",
        "filecluster",
        "urlcluster",
        "merge",
        "dictionary",
    }
)
# The right side of these is a table when it is a bare name.
_IN_FUNCTIONS = frozenset(
    {
        "in",
        "notIn",
        "globalIn",
        "globalNotIn",
        "nullIn",
        "notNullIn",
        "globalNullIn",
        "globalNotNullIn",
    }
)
_STATEMENTS = "SELECT/WITH, EXPLAIN, DESCRIBE, SHOW TABLES, SHOW CREATE TABLE and EXISTS"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_QUERY_TREE_NAME = re.compile(r"\b(table_name|table_function_name): ([^,]*)")


class OutOfScope(ValueError):
    """The query reaches beyond what the API serves; the message names what and why."""


# Runs an EXPLAIN on the read-only session and returns its single-column rows.
ReadOnlyRunner = Callable[[str], list[str]]


@dataclass
class _Node:
    kind: str
    rest: str  # what follows the kind on its line: a name, "(alias x)", ...
    children: list[_Node] = field(default_factory=list)

    def walk(self) -> Iterator[tuple[_Node, _Node | None]]:
        """Every node under this one, this one included, with its parent."""
        stack: list[tuple[_Node, _Node | None]] = [(self, None)]
        while stack:
            node, parent = stack.pop()
            yield node, parent
            stack.extend((child, node) for child in reversed(node.children))


_CHILD_COUNT = re.compile(r"\s*\(children \d+\)$")


def _parse_ast(lines: list[str]) -> _Node:
    """EXPLAIN AST's indented text as a tree (one space of indent per level)."""
    root = _Node("", "")
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for line in lines:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        text = _CHILD_COUNT.sub("", line.strip())
        kind, _, rest = text.partition(" ")
        node = _Node(kind, rest)
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((depth, node))
    return root


def _name(rest: str) -> str:
    """The name in `assay.llm_calls (alias c)` or `numbers (alias n)`."""
    return rest.split(" (alias ", 1)[0].strip()


class QueryScope:
    """Checks one query against the tables of `database` (see the module docstring)."""

    def __init__(self, database: str) -> None:
        self.database = database

    def check(self, sql: str, first_words: list[str], run: ReadOnlyRunner) -> None:
        """Raise OutOfScope unless `sql` stays in scope. `first_words` are its first words,
        upper case, comments removed; `run` executes EXPLAINs on the read-only session."""
        tree = _parse_ast(run(f"EXPLAIN AST {sql}"))
        if not tree.children:
            raise OutOfScope("ClickHouse could not parse the query")
        statement = tree.children[0]
        self._check_statement(statement, first_words)
        for node, parent in statement.walk():
            self._check_node(node, parent)
        if statement.kind == "SelectWithUnionQuery":
            # Now that nothing in it can open a file or URL while it is analysed, let the
            # analyzer say which tables the names resolve to (CTEs, `IN t`, unqualified names).
            for line in run(f"EXPLAIN QUERY TREE {sql}"):
                for kind, value in _QUERY_TREE_NAME.findall(line):
                    if kind == "table_name":
                        self._check_table(value.strip())
                    else:
                        self._check_table_function(value.strip())

    def _check_statement(self, statement: _Node, first_words: list[str]) -> None:
        kind = statement.kind
        if kind in ("SelectWithUnionQuery", "Explain", "DescribeQuery"):
            return
        # SHOW DATABASES, SHOW SETTINGS, SHOW CLUSTERS ... share SHOW TABLES' parse node.
        if kind == "ShowTables" and (
            first_words[1:2] == ["TABLES"] or first_words[1:3] == ["FULL", "TABLES"]
        ):
            # Identifiers: the database when named, then the FORMAT (clickhouse-connect always
            # sends one), so all but the last are database names.
            identifiers = [c.rest for c in statement.children if c.kind == "Identifier"]
            for database in identifiers[:-1]:
                if database != self.database:
                    raise OutOfScope(
                        f"SHOW TABLES FROM {database} is not allowed: "
                        f"queries read the {self.database} database only"
                    )
            return
        if kind in ("ShowCreateTableQuery", "ExistsTableQuery"):
            # The node's line names them: "ShowCreateTableQuery assay llm_calls" ("" database
            # when unqualified).
            database, _, table = statement.rest.partition(" ")
            self._check_table(f"{database}.{table}" if database else table)
            return
        words = " ".join(first_words[:3]) or kind
        raise OutOfScope(f"{words} is not allowed here: the API runs {_STATEMENTS}")

    def _check_node(self, node: _Node, parent: _Node | None) -> None:
        if node.kind == "Set" and (parent is None or parent.kind != "Explain"):
            # On a server the session is readonly=2, which lets a query change its settings:
            # max_execution_time and max_result_rows among them.
            raise OutOfScope(
                "a SETTINGS clause is not allowed: the API's time and row limits apply"
            )
        if node.kind == "TableIdentifier":
            self._check_table(_name(node.rest))
        elif node.kind == "TableExpression":
            for child in node.children:
                if child.kind == "Function":
                    self._check_table_function(_name(child.rest))
        elif node.kind == "Function":
            name = _name(node.rest)
            if name.lower() in _REFUSED_FUNCTIONS or name.lower().startswith("dict"):
                raise OutOfScope(
                    f"function {name}() is not allowed: queries read Assay's tables only"
                )
            # A bare name right of IN is a table (a call there is an ordinary function:
            # ClickHouse resolves no table functions in that place).
            if name in _IN_FUNCTIONS and node.children and len(node.children[0].children) == 2:
                right = node.children[0].children[1]
                if right.kind == "Identifier":
                    self._check_table(_name(right.rest))
        elif node.kind == "SelectWithUnionQuery" and any(
            # Its direct children are the selects, FORMAT and SETTINGS; a literal is the file
            # of INTO OUTFILE.
            child.kind == "Literal"
            for child in node.children
        ):
            raise OutOfScope("INTO OUTFILE is not allowed: results come back in the response")

    def _check_table(self, name: str) -> None:
        if not _PLAIN_NAME.fullmatch(name):
            raise OutOfScope(f"table name {name!r} is not allowed: use plain names")
        database, _, table = name.rpartition(".")
        if not database or database == self.database:
            return
        if database == "system" and table in SYSTEM_TABLES:
            return
        hint = ""
        if database == "system" and table in ("tables", "columns"):
            hint = f"; use SHOW TABLES or DESCRIBE {self.database}.<table>"
        raise OutOfScope(
            f"table {name} is not allowed: queries read the {self.database} database "
            f"(and system.{', system.'.join(sorted(SYSTEM_TABLES))}){hint}"
        )

    def _check_table_function(self, name: str) -> None:
        if name not in TABLE_FUNCTIONS:
            raise OutOfScope(
                f"table function {name}() is not allowed: queries read Assay's tables only "
                f"(row generators allowed: {', '.join(sorted(TABLE_FUNCTIONS))})"
            )
