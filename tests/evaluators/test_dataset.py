"""Datasets: items from dicts, files and frames; stable ids; content versions; push and pull."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.evaluators import CollectorError, Dataset
from tests.conftest import RunningCollector
from tests.lazy import lazy_import

pd = lazy_import("pandas")  # imported by the test that builds a frame, not at collection

ITEMS = [
    {"input": "What is 2 + 2?", "expected": "4"},
    {"input": "Capital of Peru?", "expected": "Lima", "metadata": {"topic": "geo"}},
    {"id": "custom", "input": {"question": "q", "lang": "fr"}, "context": ["passage"]},
]


def test_ids_are_stable_and_the_version_is_the_content() -> None:
    first = Dataset("d", ITEMS)
    again = Dataset("d", list(reversed(ITEMS)))
    assert [item.id for item in first][2] == "custom"
    assert {item.id for item in first} == {item.id for item in again}
    assert first.version == again.version  # order does not change the content
    edited = Dataset("d", [{**ITEMS[0], "expected": "four"}, *ITEMS[1:]])
    assert edited[0].id == first[0].id  # the item keeps its identity when its answer changes
    assert edited.version != first.version
    assert first[first[1].id].expected == "Lima"


def test_items_with_the_same_input_get_distinct_ids() -> None:
    dataset = Dataset("d", [{"input": "same"}, {"input": "same", "expected": "x"}])
    assert len({item.id for item in dataset}) == 2


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"expected": "no input"}], "needs an 'input'"),
        ([{"input": "x", "expeted": "typo"}], "unknown key"),
        ([{"input": "x", "metadata": "not a dict"}], "'metadata' must be a dict"),
        ([{"id": "a", "input": "x"}, {"id": "a", "input": "y"}], "used twice"),
        (["just a string"], "is a dict"),
        ([{"input": {1, 2}}], "not JSON-serialisable"),
    ],
)
def test_bad_items_are_refused_with_the_reason(items: list[object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Dataset("d", items)  # type: ignore[arg-type]


def test_a_dataset_needs_a_usable_name() -> None:
    for name in ("", "  ", "a/b"):
        with pytest.raises(ValueError, match="name"):
            Dataset(name, ITEMS)


def test_from_jsonl_csv_and_pandas_give_the_same_dataset(tmp_path: Path) -> None:
    records = [
        {"input": "Capital of Peru?", "expected": "Lima", "metadata": {"topic": "geo"}},
        {"input": "2 + 2?", "expected": "4", "metadata": {"topic": "math"}},
    ]
    jsonl = tmp_path / "golden.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    csv_file = tmp_path / "golden.csv"
    csv_file.write_text("input,expected,topic\nCapital of Peru?,Lima,geo\n2 + 2?,4,math\n")
    frame = pd.DataFrame(
        {
            "input": ["Capital of Peru?", "2 + 2?"],
            "expected": ["Lima", "4"],
            "topic": ["geo", "math"],
        }
    )
    from_jsonl = Dataset.from_jsonl(jsonl)
    from_csv = Dataset.from_csv(csv_file, name="golden")
    from_frame = Dataset.from_pandas(frame, "golden")
    assert from_jsonl.name == "golden"
    assert from_jsonl.version == from_csv.version == from_frame.version
    assert from_frame.to_pandas()["expected"].tolist() == ["Lima", "4"]


def test_csv_columns_can_form_a_dict_input_and_blank_cells_are_missing(tmp_path: Path) -> None:
    csv_file = tmp_path / "qa.csv"
    csv_file.write_text("question,lang,expected\nBonjour?,fr,\nHello?,en,Hi\n")
    dataset = Dataset.from_csv(csv_file, input=["question", "lang"])
    assert dataset[0].input == {"question": "Bonjour?", "lang": "fr"}
    assert dataset[0].expected is None and dataset[1].expected == "Hi"
    with pytest.raises(ValueError, match="no column 'prompt'"):
        Dataset.from_csv(csv_file, input="prompt")


def test_a_bad_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "ok"}\n{not json}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        Dataset.from_jsonl(path)


def test_push_and_pull_through_the_collector(collector: RunningCollector) -> None:
    name = "test-dataset-push-pull"
    first = Dataset(name, ITEMS, description="golden v1").push(collector.http_url)
    second = Dataset(name, [*ITEMS, {"input": "one more"}]).push(collector.http_url)
    latest = Dataset.pull(name, url=collector.http_url)
    assert latest.version == second.version and len(latest) == 4
    assert [item.id for item in latest] == [item.id for item in second]  # in its own order
    older = Dataset.pull(name, version=first.version, url=collector.http_url)
    assert older.version == first.version and older.description == "golden v1"
    assert older[2].input == {"question": "q", "lang": "fr"} and older[2].context == ["passage"]
    assert older[1].metadata == {"topic": "geo"}
    with pytest.raises(CollectorError, match="no dataset"):
        Dataset.pull("no-such-dataset", url=collector.http_url)


def test_the_api_refuses_a_version_that_does_not_match_the_items(
    collector: RunningCollector,
) -> None:
    import httpx

    payload = {**Dataset("mismatch", ITEMS).to_payload(), "version": "0123456789ab"}
    response = httpx.post(f"{collector.http_url}/api/datasets", json=payload)
    assert response.status_code == 400
    assert "does not match" in response.json()["error"]
    response = httpx.post(f"{collector.http_url}/api/datasets", json={"name": "x", "items": [{}]})
    assert response.status_code == 400 and "input" in response.json()["error"]
