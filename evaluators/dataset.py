"""Golden datasets: items with an input, an optional expected output, context and metadata.

::

    dataset = Dataset("capitals", [{"input": "Capital of France?", "expected": "Paris"}])
    dataset = Dataset.from_jsonl("golden.jsonl")            # name: the file's stem
    dataset.push()                                            # stored through the collector
    same = Dataset.pull("capitals", version=dataset.version)

An item's id is stable: the `id` given, else a hash of its input and context, so editing an
expected answer keeps the item's identity (and its history across experiments). A dataset's
version is a hash of its content: the same items, the same version, whatever their order.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

    from assay.evaluators.client import CollectorClient

__all__ = ["ITEM_FIELDS", "Dataset", "DatasetItem", "canonical_json", "dataset_version", "item_id"]

ITEM_FIELDS = ("id", "input", "expected", "context", "metadata")
_MAX_NAME = 200


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, so equal content hashes equally."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def item_id(input: Any, context: Any = None, occurrence: int = 0) -> str:
    """The id of an item without an explicit one: its input and context, hashed.

    `occurrence` tells apart items with the same input and context (the second one is 1).
    """
    parts: list[Any] = [input, context]
    if occurrence:
        parts.append(occurrence)
    return _hash(canonical_json(parts), 16)


@dataclass(frozen=True)
class DatasetItem:
    """One dataset item. `input` is text, chat messages or any JSON value the task takes."""

    id: str
    input: Any
    expected: Any = None
    context: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source_trace_id: str = ""  # set when the item was promoted from a production call
    source_span_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "input": self.input,
            "expected": self.expected,
            "context": self.context,
            "metadata": dict(self.metadata),
        }
        if self.source_trace_id or self.source_span_id:
            data["source_trace_id"] = self.source_trace_id
            data["source_span_id"] = self.source_span_id
        return data


def _check_json(value: Any, what: str) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc
    return value


def _items_from_dicts(records: Iterable[Any]) -> list[DatasetItem]:
    """Validated items; ids filled in, duplicates refused or numbered (see `item_id`)."""
    items: list[DatasetItem] = []
    seen_ids: set[str] = set()
    occurrences: dict[str, int] = {}
    for index, record in enumerate(records):
        where = f"item {index}"
        if isinstance(record, DatasetItem):
            record = record.to_dict()
        if not isinstance(record, Mapping):
            raise TypeError(f"{where}: a dataset item is a dict, not {type(record).__name__}")
        unknown = sorted(
            set(record) - set(ITEM_FIELDS) - {"source_trace_id", "source_span_id"}, key=str
        )
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {unknown}; an item has {', '.join(ITEM_FIELDS)}"
            )
        if "input" not in record or record["input"] is None:
            raise ValueError(f"{where}: every item needs an 'input'")
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise TypeError(f"{where}: 'metadata' must be a dict, not {type(metadata).__name__}")
        for key in ("input", "expected", "context", "metadata"):
            _check_json(record.get(key), f"{where}: {key!r}")
        given = record.get("id")
        if given is not None and given != "":
            identifier = str(given)
        else:
            base = item_id(record["input"], record.get("context"))
            occurrence = occurrences.get(base, 0)
            occurrences[base] = occurrence + 1
            identifier = (
                base
                if not occurrence
                else item_id(record["input"], record.get("context"), occurrence)
            )
        if identifier in seen_ids:
            raise ValueError(f"{where}: the id {identifier!r} is used twice")
        seen_ids.add(identifier)
        items.append(
            DatasetItem(
                id=identifier,
                input=record["input"],
                expected=record.get("expected"),
                context=record.get("context"),
                metadata=dict(metadata),
                source_trace_id=str(record.get("source_trace_id") or ""),
                source_span_id=str(record.get("source_span_id") or ""),
            )
        )
    return items


def dataset_version(items: Sequence[DatasetItem]) -> str:
    """The content hash of a dataset: its items in id order, every field included."""
    content = sorted((item.to_dict() for item in items), key=lambda item: item["id"])
    return _hash(canonical_json(content), 12)


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):  # pandas' missing value
        return True
    return isinstance(value, str) and value == ""


def _plain(value: Any) -> Any:
    """A numpy scalar (a pandas cell) as the Python value it holds."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def _records_from_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    input: str | Sequence[str],
    expected: str | None,
    context: str | None,
    id: str | None,
    metadata: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Table rows (CSV, DataFrame) as item dicts; columns not mapped go into metadata."""
    input_columns = [input] if isinstance(input, str) else list(input)
    records = []
    for index, row in enumerate(rows):
        missing = [column for column in input_columns if column not in row]
        if missing:
            raise ValueError(
                f"row {index}: no column {missing[0]!r}; columns are {sorted(map(str, row))}"
            )
        used = {*input_columns, expected, context, id, "metadata"}
        extra_columns = [c for c in row if c not in used] if metadata is None else list(metadata)
        meta: dict[str, Any] = {}
        raw_meta = row.get("metadata")
        if isinstance(raw_meta, str) and raw_meta.strip():
            try:
                loaded = json.loads(raw_meta)
            except ValueError as exc:
                raise ValueError(f"row {index}: the metadata column is not JSON: {exc}") from exc
            if not isinstance(loaded, dict):
                raise ValueError(f"row {index}: the metadata column must hold a JSON object")
            meta.update(loaded)
        elif isinstance(raw_meta, Mapping):
            meta.update(raw_meta)
        for column in extra_columns:
            value = row.get(column)
            if not _blank(value):
                meta[str(column)] = _plain(value)
        record: dict[str, Any] = {
            "input": _plain(row[input])
            if isinstance(input, str)
            else {column: _plain(row[column]) for column in input_columns},
            "metadata": meta,
        }
        optional: tuple[tuple[str, str | None], ...] = (
            ("expected", expected),
            ("context", context),
            ("id", id),
        )
        for key, name in optional:
            if name is not None and name in row and not _blank(row[name]):
                record[key] = _plain(row[name])
        records.append(record)
    return records


class Dataset:
    """A named, versioned list of `DatasetItem`s."""

    def __init__(
        self,
        name: str,
        items: Iterable[Mapping[str, Any] | DatasetItem],
        *,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a dataset needs a name")
        if len(name) > _MAX_NAME or any(ord(c) < 32 for c in name) or "/" in name:
            raise ValueError(
                f"dataset name {name!r}: at most {_MAX_NAME} characters, no '/' or control "
                "characters"
            )
        self.name = name.strip()
        self.items: list[DatasetItem] = _items_from_dicts(items)
        self.description = description
        self.metadata = dict(metadata or {})
        self._by_id = {item.id: item for item in self.items}

    @property
    def version(self) -> str:
        return dataset_version(self.items)

    # --- from files and frames --------------------------------------------------------------
    @classmethod
    def from_jsonl(cls, path: str | Path, name: str | None = None, **options: Any) -> Dataset:
        """One JSON object per line with the item keys (`input`, `expected`, ...)."""
        path = Path(path)
        records = []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
        return cls(name or path.stem, records, **options)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        name: str | None = None,
        *,
        input: str | Sequence[str] = "input",
        expected: str | None = "expected",
        context: str | None = "context",
        id: str | None = "id",
        metadata: Sequence[str] | None = None,
        delimiter: str = ",",
        **options: Any,
    ) -> Dataset:
        """A CSV file with a header. `input` names the input column, or several columns that
        become a dict input; other columns go into each item's metadata (or only those named
        in `metadata`). Empty cells are missing values."""
        path = Path(path)
        with path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file, delimiter=delimiter))
        records = _records_from_rows(
            rows, input=input, expected=expected, context=context, id=id, metadata=metadata
        )
        return cls(name or path.stem, records, **options)

    @classmethod
    def from_pandas(
        cls,
        frame: pandas.DataFrame,
        name: str,
        *,
        input: str | Sequence[str] = "input",
        expected: str | None = "expected",
        context: str | None = "context",
        id: str | None = "id",
        metadata: Sequence[str] | None = None,
        **options: Any,
    ) -> Dataset:
        """A DataFrame, one item per row; the columns are mapped as in `from_csv`."""
        rows = frame.to_dict(orient="records")
        records = _records_from_rows(
            rows, input=input, expected=expected, context=context, id=id, metadata=metadata
        )
        return cls(name, records, **options)

    # --- through the collector --------------------------------------------------------------
    def to_payload(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "metadata": self.metadata,
            "items": [item.to_dict() for item in self.items],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Dataset:
        return cls(
            payload["name"],
            payload.get("items") or [],
            description=payload.get("description") or "",
            metadata=payload.get("metadata") or {},
        )

    def push(self, url: str | None = None, *, client: CollectorClient | None = None) -> Dataset:
        """Store this version (`datasets`, `dataset_items`) through the collector; idempotent."""
        from assay.evaluators.client import CollectorClient

        (client or CollectorClient(url)).push_dataset(self.to_payload())
        return self

    @classmethod
    def pull(
        cls,
        name: str,
        version: str | None = None,
        *,
        url: str | None = None,
        client: CollectorClient | None = None,
    ) -> Dataset:
        """Load a stored dataset: the given version, else the one pushed last."""
        from assay.evaluators.client import CollectorClient

        payload = (client or CollectorClient(url)).get_dataset(name, version)
        dataset = cls.from_payload(payload)
        if dataset.version != payload.get("version"):
            raise ValueError(
                f"dataset {name!r}: stored as version {payload.get('version')!r} but its items "
                f"hash to {dataset.version!r}"
            )
        return dataset

    # --- reading it ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    def __getitem__(self, key: int | str) -> DatasetItem:
        """By position, or by item id."""
        return self.items[key] if isinstance(key, int) else self._by_id[key]

    def __repr__(self) -> str:
        return f"<Dataset {self.name!r} version={self.version} items={len(self)}>"

    def to_pandas(self) -> pandas.DataFrame:
        import pandas as pd

        return pd.DataFrame([item.to_dict() for item in self.items])

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(_short(value))}</td>"
                for value in (item.id, item.input, item.expected, item.context)
            )
            + "</tr>"
            for item in self.items[:20]
        )
        more = f"<p>… {len(self) - 20} more</p>" if len(self) > 20 else ""
        return (
            f"<p><b>Dataset {html.escape(self.name)}</b>"
            f" · version <code>{html.escape(self.version)}</code>"
            f" · {len(self)} items</p><table><thead><tr><th>id</th><th>input</th>"
            f"<th>expected</th><th>context</th></tr></thead><tbody>{rows}</tbody></table>{more}"
        )


def _short(value: Any, limit: int = 120) -> str:
    text = "" if value is None else value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
