"""Talking to the collector's REST API: datasets and experiments go in and come back here.

The collector is found at `url`, else `ASSAY_URL`, else http://localhost:4318; `ASSAY_TOKEN`
is sent as a bearer token when set. Every failure is a `CollectorError` saying what to do.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_URL", "CollectorClient", "CollectorError", "collector_url"]

DEFAULT_URL = "http://localhost:4318"
_RETRIES = 3  # for connection errors and 503: every write is idempotent


class CollectorError(RuntimeError):
    """The collector could not be reached, or refused a request (the message says why)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def refusal(status: int, message: str) -> str:
    """The collector's reason for a refusal, with what a person at the CLI can do about a
    missing or wrong token (the API speaks of headers; the CLI sends ASSAY_TOKEN as one)."""
    if status == 401:
        return f"{message} (set ASSAY_TOKEN to one of the collector's API tokens)"
    return message


def unreachable(url: str, exc: Exception) -> str:
    """Why nothing usable answered at `url`: the error, and the likely mistake when a server
    answered in another protocol (the URL names the OTLP gRPC port, where HTTP/2 answers)."""
    import httpx

    why = f"({exc})"
    if isinstance(exc, httpx.RemoteProtocolError):
        why += (
            ": something answers there, but not the API; the OTLP gRPC port (4317)? The API is"
            " on the collector's HTTP port (4318 by default)"
        )
    return f"no collector answers at {url} {why}"


def collector_url(url: str | None = None) -> str:
    return (url or os.environ.get("ASSAY_URL") or DEFAULT_URL).rstrip("/")


def auth_headers(token: str | None = None) -> dict[str, str]:
    """The bearer token `token`, else `ASSAY_TOKEN`, as the API takes it (none: no header)."""
    token = token if token is not None else os.environ.get("ASSAY_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


class CollectorClient:
    def __init__(self, url: str | None = None, *, token: str | None = None, timeout: float = 60):
        self.url = collector_url(url)
        import httpx  # here, not at import: `assay.evaluators` stays light to import

        self._http: httpx.Client = httpx.Client(
            base_url=self.url, headers=auth_headers(token), timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        import httpx

        for attempt in range(_RETRIES):
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.HTTPError as exc:
                if attempt + 1 < _RETRIES:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise CollectorError(
                    f"{unreachable(self.url, exc)}. Start one with "
                    "`assay collector`, or point ASSAY_URL (or url=...) at it."
                ) from exc
            if response.status_code == 503 and attempt + 1 < _RETRIES:
                time.sleep(0.2 * 2**attempt)
                continue
            break
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise CollectorError(
                f"{method} {path}: {response.status_code} {refusal(response.status_code, message)}",
                response.status_code,
            )
        return response.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/api/health")
        return result

    # --- datasets -------------------------------------------------------------------------------
    def push_dataset(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/api/datasets", json=payload)
        return result

    def get_dataset(self, name: str, version: str | None = None) -> dict[str, Any]:
        params = {"version": version} if version else None
        result: dict[str, Any] = self._request(
            "GET", f"/api/datasets/{quote(name, safe='')}", params=params
        )
        return result

    def list_datasets(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/datasets")["datasets"])

    def promote_call(self, dataset: str, span_id: str, expected: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"span_id": span_id}
        if expected is not None:
            body["expected"] = expected
        result: dict[str, Any] = self._request(
            "POST", f"/api/datasets/{quote(dataset, safe='')}/items", json=body
        )
        return result

    # --- experiments ----------------------------------------------------------------------------
    def record_experiment(self, record: dict[str, Any]) -> None:
        self._request("POST", "/api/experiments", json=record)

    def add_experiment_items(self, experiment_id: str, items: list[dict[str, Any]]) -> None:
        self._request(
            "POST", f"/api/experiments/{quote(experiment_id, safe='')}/items", json={"items": items}
        )

    def list_experiments(
        self, name: str | None = None, limit: int = 50, *, baseline: bool = False
    ) -> list[dict[str, Any]]:
        """Runs, newest first; `baseline=True`: only those that can be a baseline (completed,
        not failed by a gate)."""
        params: dict[str, Any] = {"limit": limit}
        if name:
            params["name"] = name
        if baseline:
            params["baseline"] = "true"
        return list(self._request("GET", "/api/experiments", params=params)["experiments"])

    def get_experiment(self, ref: str) -> dict[str, Any]:
        """An experiment by id, or the latest run of that name, with its items and scores."""
        result: dict[str, Any] = self._request("GET", f"/api/experiments/{quote(ref, safe='')}")
        return result

    # --- prices ---------------------------------------------------------------------------------
    def prices(self) -> dict[str, Any]:
        """The price table the collector prices calls with."""
        result: dict[str, Any] = self._request("GET", "/api/prices")
        return result

    def load_prices(self, price_file: Any) -> dict[str, Any]:
        """Put a price file (the shape of prices.json) in force; returns its version."""
        result: dict[str, Any] = self._request("POST", "/api/prices", json=price_file)
        return result

    def recompute_costs(self, since: str, until: str | None = None) -> dict[str, Any]:
        """Price the calls stored in [since, until) again with the table in force."""
        body = {"since": since, **({"until": until} if until else {})}
        result: dict[str, Any] = self._request("POST", "/api/prices/recompute", json=body)
        return result
