"""Odd input to the REST API gets a 400 that says what is wrong, never a 500; exports cannot
smuggle spreadsheet formulas; the datasets list answers on the embedded engine."""

from __future__ import annotations

import csv
import io
import uuid

import httpx
import pytest

from assay.collector.settings import CollectorSettings
from tests.conftest import RunningCollector

DEEP = "[" * 100_000 + "]" * 100_000


def _post(collector: RunningCollector, path: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{collector.http_url}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]


def test_the_datasets_list_answers(collector: RunningCollector) -> None:
    name = f"ds-{uuid.uuid4().hex[:8]}"
    for items in ([{"input": "a"}], [{"input": "a"}, {"input": "b"}]):
        assert _post(collector, "/api/datasets", json={"name": name, "items": items}).is_success
    response = httpx.get(f"{collector.http_url}/api/datasets", timeout=30)
    assert response.status_code == 200, response.text
    (listed,) = [d for d in response.json()["datasets"] if d["name"] == name]
    assert listed["versions"] == 2 and listed["item_count"] == 2


@pytest.mark.parametrize("max_rows", ["ten", -1, 0, [5], {"n": 5}, 1.5, True, None])
def test_a_malformed_max_rows_is_a_400(collector: RunningCollector, max_rows: object) -> None:
    response = _post(collector, "/api/query", json={"sql": "SELECT 1", "max_rows": max_rows})
    assert response.status_code == 400, response.text
    assert "max_rows" in response.json()["error"]


def test_a_good_max_rows_still_limits(collector: RunningCollector) -> None:
    sql = "SELECT number FROM numbers(10)"
    body = _post(collector, "/api/query", json={"sql": sql, "max_rows": 3}).json()
    assert body["row_count"] == 3 and body["truncated"] is True
    body = _post(collector, "/api/query", json={"sql": sql, "max_rows": 10**30}).json()
    assert body["row_count"] == 10 and body["truncated"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/api/query",
        "/api/feedback",
        "/api/datasets",
        "/api/datasets/x/items",
        "/api/experiments",
        "/api/experiments/x/items",
    ],
)
def test_a_deeply_nested_body_is_a_400(collector: RunningCollector, path: str) -> None:
    response = _post(collector, path, content=DEEP, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "nested" in error or "recursion limit" in error  # ours, or pydantic's
    assert httpx.get(f"{collector.http_url}/api/health").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"since": "99999999999d"},
        {"since": "0001-01-01"},
        {"until": "9999-12-31T00:00:00"},
        {"since": "1e9d"},
        {"limit": "ten"},
        {"offset": "1.5"},
    ],
)
def test_out_of_range_times_and_malformed_limits_are_a_400(
    collector: RunningCollector, params: dict[str, str]
) -> None:
    response = httpx.get(f"{collector.http_url}/api/calls", params=params, timeout=30)
    assert response.status_code == 400, response.text
    (name,) = params
    assert name in response.json()["error"]


def test_huge_limits_are_clamped_and_deep_offsets_refused(collector: RunningCollector) -> None:
    url = f"{collector.http_url}/api/calls"
    huge = "9" * 30
    response = httpx.get(url, params={"limit": huge, "service": "no-such-service"})
    assert response.status_code == 200, response.text
    assert response.json() == {"calls": [], "limit": 1000}
    deepest = CollectorSettings().read_max_offset
    assert httpx.get(url, params={"offset": str(deepest)}).status_code == 200
    for offset in (str(deepest + 1), huge):
        response = httpx.get(url, params={"offset": offset})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert "read_max_offset" in error and "until=" in error


def test_csv_exports_cannot_carry_formulas(collector: RunningCollector) -> None:
    sql = (
        "SELECT '=HYPERLINK(\"http://x\")' AS a, '+1+2' AS b, '-2+3' AS c, '@SUM(A1)' AS d, "
        "'\tx' AS e, '\rx' AS f, 'plain' AS g, -5 AS n, ['=1'] AS arr"
    )
    response = _post(collector, "/api/query", json={"sql": sql, "format": "csv"})
    assert response.status_code == 200, response.text
    header, row = list(csv.reader(io.StringIO(response.text)))
    cells = dict(zip(header, row, strict=True))
    for column in "abcdef":
        assert cells[column].startswith("'"), cells[column]
    assert cells["g"] == "plain" and cells["n"] == "-5"
    assert not cells["arr"].startswith(("=", "+", "-", "@"))
