"""Every alert rule, on the real engine: quiet on healthy traffic, firing (with the right labels)
once data is made to break it; and the provisioning files Grafana reads are well formed."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import clickhouse_connect
import pytest
import yaml
from clickhouse_connect.driver.exceptions import OperationalError

from assay.collector.grafana.alerts import ContactError, contact_point
from assay.collector.grafana.file_schema import ProvisioningError, validate, validate_together
from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import own_database
from tests.grafana.alert_rules import (
    ALERTING,
    ROOT,
    StoreUnreachable,
    checked_in_rules,
    evaluate,
    rule,
)
from tests.grafana.panel_queries import dashboards

_ids = itertools.count()


class Traffic:
    """Rows written into a database of their own, relative to `now`."""

    def __init__(self, store: EmbeddedStore, now: datetime) -> None:
        self.store, self.now = store, now

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        names = sorted({k for row in rows for k in row})
        columns = [[row.get(name) for row in rows] for name in names]
        self.store.insert(table, columns, names)

    def calls(self, n: int, ago: timedelta = timedelta(minutes=2), **fields: Any) -> list[str]:
        """`n` calls `ago` before now (spread over the minute before); their span ids."""
        base = {"operation": "chat", "provider": "openai", "model": "gpt-4o-mini"}
        base |= {"service_name": "shop", "prompt_name": "answer", "prompt_version": "v1"}
        base |= {"duration_ms": 900.0, "status": "ok", "input_tokens": 100, "output_tokens": 20}
        base |= {"cost_usd": 0.001, "cost_source": "priced"}
        rows = []
        for i in range(n):
            span = f"span-{next(_ids)}"
            row = base | fields | {"span_id": span, "trace_id": f"trace-{span}"}
            row["timestamp"] = self.now - ago - timedelta(seconds=i % 50)
            row["request_model"] = row["response_model"] = row["model"]
            rows.append(row)
        self._insert("llm_calls", rows)
        return [row["span_id"] for row in rows]

    def errors(self, n: int, error_type: str, message: str = "", **fields: Any) -> None:
        self.calls(n, status="error", error_type=error_type, error_message=message, **fields)

    def scores(self, spans: list[str], name: str, passing: int, **fields: Any) -> None:
        """Online scores of `name` on the calls `spans`, the first `passing` of them passed."""
        _, rows = self.store.query(
            f"SELECT span_id, trace_id, timestamp FROM {self.store.database}.llm_calls "
            f"WHERE span_id IN {tuple(spans)!r}"
        )
        self._insert(
            "scores",
            [
                {
                    "timestamp": at + timedelta(seconds=5),
                    "trace_id": trace,
                    "span_id": span,
                    "name": name,
                    "value": 1.0 if i < passing else 0.0,
                    "passed": i < passing,
                    "source": "online",
                }
                | fields
                for i, (span, trace, at) in enumerate(rows)
            ],
        )

    def stats(self, instance: str, ago: timedelta = timedelta(seconds=10), **fields: Any) -> None:
        """One collector's counters, every 5 s for the minute up to `ago` before now."""
        rows = [
            {
                "timestamp": self.now - ago - timedelta(seconds=5 * i),
                "instance": instance,
                "interval_s": 5.0,
                "status": "ok",
                "store_reachable": True,
                "requests_accepted": 10,
            }
            | fields
            for i in range(12)
        ]
        self._insert("collector_stats", rows)


@pytest.fixture
def traffic(embedded_store: EmbeddedStore) -> Iterator[Traffic]:
    """An empty database of its own on the session's engine, migrated."""
    with own_database(embedded_store, "alerts") as store:
        yield Traffic(store, datetime.now(timezone.utc).replace(microsecond=0))


def _fires(traffic: Traffic, uid: str) -> list[dict[str, str]]:
    result = evaluate(traffic.store.query, rule(uid), traffic.now, traffic.store.database)
    return [dict(i.labels) for i in result.firing]


def _healthy_calls(t: Traffic) -> None:
    """Ten minutes of healthy traffic: 2 % errors (one rate limit), 0.9 s calls, $0.10; and
    an experiment run that fails and crawls, which production alerts never count."""
    t.calls(100, service_name="shop")
    t.errors(1, "RateLimitError", "Error code: 429", service_name="shop")
    t.errors(1, "APITimeoutError", service_name="shop")
    t.calls(
        40,
        service_name="notebook",
        experiment_id="exp-1",
        status="error",
        error_type="RateLimitError",
        duration_ms=60_000.0,
        cost_usd=500.0,
    )


def _no_collector_writes_for_five_minutes(t: Traffic) -> None:
    """Time passes and the store takes nothing: every collector's newest row ages."""
    t.now += timedelta(minutes=5)


BREAKS: dict[
    str, tuple[Callable[[Traffic], None], Callable[[Traffic], None], list[dict[str, str]]]
] = {
    "assay-error-rate": (
        _healthy_calls,
        lambda t: (
            t.calls(20, service_name="search"),
            t.errors(5, "InternalServerError", service_name="search"),
        ),
        [{"service_name": "search"}],
    ),
    "assay-latency-p95": (
        _healthy_calls,
        lambda t: t.calls(30, model="slow-model", duration_ms=30_000.0),
        [{"model": "slow-model"}],
    ),
    "assay-daily-cost": (
        _healthy_calls,
        lambda t: t.calls(1, ago=timedelta(seconds=5), cost_usd=150.0),
        [{}],
    ),
    "assay-rate-limits": (
        _healthy_calls,
        lambda t: (
            t.errors(6, "RateLimitError", "Error code: 429", provider="anthropic"),
            t.errors(6, "ClientError", "429 RESOURCE_EXHAUSTED", provider="anthropic"),
        ),
        [{"provider": "anthropic"}],
    ),
    "assay-pass-rate-drop": (
        lambda t: (
            t.scores(t.calls(40, ago=timedelta(days=3), prompt_version="v1"), "relevance", 32),
            t.scores(t.calls(40, ago=timedelta(days=1), prompt_version="v2"), "relevance", 31),
        ),
        lambda t: t.scores(
            t.calls(30, ago=timedelta(hours=1), prompt_version="v3"), "relevance", 12
        ),
        [
            {
                "evaluator": "relevance",
                "prompt_name": "answer",
                "previous_version": "v2",
                "newest_version": "v3",
            }
        ],
    ),
    "assay-judge-failures": (
        lambda t: t.scores(t.calls(40), "faithfulness", 30, error=""),
        lambda t: t.scores(
            t.calls(30, prompt_version="v2"),
            "correctness",
            30,
            error="APITimeoutError: judge timed out",
        ),
        [{"evaluator": "correctness"}],
    ),
    "assay-collector-refusals": (
        lambda t: t.stats("collector-1", requests_refused=0),
        lambda t: t.stats("collector-2", requests_refused=3),
        [{"instance": "collector-2"}],
    ),
    "assay-dead-letters": (
        lambda t: t.stats("collector-1", deadlettered_batches=0),
        lambda t: t.stats("collector-2", deadlettered_batches=1, ago=timedelta(minutes=5)),
        [{"instance": "collector-2"}],
    ),
    "assay-spool-age": (
        lambda t: t.stats("collector-1", spool_oldest_age_s=2.0),
        lambda t: t.stats("collector-2", spool_oldest_age_s=900.0),
        [{"instance": "collector-2"}],
    ),
    "assay-collector-silent": (
        lambda t: t.stats("collector-1"),
        lambda t: t.stats("collector-2", ago=timedelta(minutes=10)),
        [{"instance": "collector-2"}],
    ),
    "assay-store-down": (
        lambda t: (t.stats("collector-1"), t.stats("collector-2", ago=timedelta(minutes=3))),
        _no_collector_writes_for_five_minutes,
        [{}],
    ),
}


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    assert {r["uid"] for r in checked_in_rules()} == set(BREAKS)


@pytest.mark.parametrize("uid", list(BREAKS))
def test_a_rule_is_quiet_on_healthy_data_and_fires_on_data_made_to_break_it(
    traffic: Traffic, uid: str
) -> None:
    healthy, breaking, wanted = BREAKS[uid]
    healthy(traffic)
    quiet = evaluate(traffic.store.query, rule(uid), traffic.now, traffic.store.database)
    assert quiet.instances, f"{uid}: the healthy data gave the rule nothing to judge"
    assert quiet.firing == [], f"{uid} fires on healthy data: {quiet.firing}"
    breaking(traffic)
    fired = _fires(traffic, uid)
    assert len(fired) == len(wanted), fired
    assert [{k: v for k, v in f.items() if k in w} for f, w in zip(fired, wanted, strict=True)] == (
        wanted
    )


def _unreachable_store(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """ClickHouse down, as Grafana's plugin meets it: nothing listens on its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, connect_timeout=2)
        result = client.query(sql)
    except OperationalError as exc:
        raise StoreUnreachable(str(exc)) from exc
    return list(result.column_names), result.result_rows


def test_a_store_that_does_not_answer_fires_the_store_down_rule() -> None:
    now = datetime.now(timezone.utc)
    outcomes = {a["uid"]: evaluate(_unreachable_store, a, now) for a in checked_in_rules()}
    assert all("Connection refused" in o.error for o in outcomes.values()), outcomes
    down = outcomes.pop("assay-store-down")
    assert [dict(i.labels) for i in down.firing] == [{}]
    # Every other rule keeps its state and raises Grafana's DatasourceError alert instead.
    assert [uid for uid, o in outcomes.items() if o.firing or not o.datasource_error] == []


def test_every_rule_says_what_it_watches_in_what_unit_and_where() -> None:
    panels = {
        (model["uid"], panel["id"]): panel
        for model in dashboards().values()
        for panel in model["panels"]
    }
    for alert in checked_in_rules():
        notes = alert["annotations"]
        assert len(notes.get("summary", "")) > 20, f"{alert['uid']} has no summary"
        assert len(notes.get("description", "")) > 40, f"{alert['uid']} has no description"
        assert notes.get("unit"), f"{alert['uid']} has no unit"
        panel = panels[(alert["dashboardUid"], alert["panelId"])]
        assert panel["type"] != "row", alert["uid"]


def test_the_provisioning_files_follow_grafanas_structure() -> None:
    documents = {
        str(path.relative_to(ROOT / "grafana")): yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in (ROOT / "grafana" / "provisioning").rglob("*.yaml")
    }
    assert {p.split("/")[1] for p in documents} == {"alerting", "dashboards", "datasources"}
    validate_together(documents)


def _rules_document() -> dict[str, Any]:
    return yaml.safe_load((ALERTING / "rules.yaml").read_text(encoding="utf-8"))


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = _rules_document()
    change(document["groups"][0]["rules"][0])
    return document


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.update(condition="C"), "condition 'C' names no query"),
        (lambda r: r["data"][1]["model"].update(expression="Z"), "reads 'Z', no query"),
        (lambda r: r.update({"for": "5 minutes"}), "not a valid duration"),
        (lambda r: r["labels"].update(team="$TEAM"), "would be read as a variable"),
        (lambda r: r.update(uid="x" * 41), "1-40 letters"),
        (lambda r: r.update(noDataState="Fine"), "noDataState"),
        (lambda r: r.update(dasboardUid="typo"), "Extra inputs are not permitted"),
        (lambda r: r["data"][0]["model"].update(rawSql=" "), "no rawSql"),
        (
            lambda r: r["data"][1]["model"]["conditions"][0]["evaluator"].update(params=["x"]),
            "params",
        ),
    ],
)
def test_the_structure_check_refuses_what_grafana_would_misread(
    change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    with pytest.raises(ProvisioningError, match=reason):
        validate("provisioning/alerting/rules.yaml", _broken(change))


def test_a_policy_must_name_a_provisioned_contact_point() -> None:
    policies = yaml.safe_load((ALERTING / "policies.yaml").read_text(encoding="utf-8"))
    policies["policies"][0]["receiver"] = "nobody"
    with pytest.raises(ProvisioningError, match="'nobody', no contact point"):
        validate_together({"provisioning/alerting/policies.yaml": policies})


@pytest.mark.parametrize(
    ("to", "kind", "settings"),
    [
        ("", "email", {"addresses": "alerts@example.com"}),
        (
            "https://hooks.slack.com/services/T0/B0/x",
            "slack",
            {"url": "https://hooks.slack.com/services/T0/B0/x"},
        ),
        (
            "ops@example.com, oncall@example.com",
            "email",
            {"addresses": "ops@example.com;oncall@example.com"},
        ),
        ("mailto:ops@example.com", "email", {"addresses": "ops@example.com"}),
        ("https://hooks.example.com/assay", "webhook", {"url": "https://hooks.example.com/assay"}),
        (
            "teams:https://x.webhook.office.com/y",
            "teams",
            {"url": "https://x.webhook.office.com/y"},
        ),
    ],
)
def test_one_setting_points_the_contact_point_anywhere(
    to: str, kind: str, settings: dict[str, str]
) -> None:
    document = contact_point(to)
    [receiver] = document["contactPoints"][0]["receivers"]
    assert (receiver["type"], receiver["settings"]) == (kind, settings)
    validate("provisioning/alerting/contact-points.yaml", document)


@pytest.mark.parametrize("to", ["pager", "ftp://example.com/x", "slack:not-a-url", "https://"])
def test_a_destination_nobody_can_send_to_is_refused(to: str) -> None:
    with pytest.raises(ContactError, match="cannot send alerts to"):
        contact_point(to)


def test_the_readme_lists_every_rule() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for alert in checked_in_rules():
        assert f"| `{alert['uid']}` | {alert['title']} |" in readme, alert["uid"]


def test_a_quiet_store_raises_no_alert(traffic: Traffic) -> None:
    """No traffic is no alarm: a store with no call, score, run or collector report fires no
    rule, nor does one whose collector reports, idle and healthy, every 5 s."""
    rules = checked_in_rules()
    empty = {a["uid"]: _fires(traffic, a["uid"]) for a in rules}
    assert {uid: fired for uid, fired in empty.items() if fired} == {}
    traffic.stats("collector-1", requests_accepted=0)
    idle = {a["uid"]: _fires(traffic, a["uid"]) for a in rules}
    assert {uid: fired for uid, fired in idle.items() if fired} == {}
