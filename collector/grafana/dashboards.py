"""The Assay dashboards, one module each (monitoring, evaluations, experiments, agents, collectors),
built with grafana-foundation-sdk. `render_dashboards()` gives their JSON models, keyed by file
name."""

from __future__ import annotations

import json
import zlib
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from assay.collector.grafana.agents import agents
from assay.collector.grafana.budgets import Budget, budgets
from assay.collector.grafana.collectors import collectors
from assay.collector.grafana.evaluations import evaluations
from assay.collector.grafana.experiments import experiments
from assay.collector.grafana.llm_monitoring import monitoring


def _numbered(model: dict[str, Any]) -> dict[str, Any]:
    """Each panel's id from its kind and title, so adding a panel moves no other one: links to
    a panel (`viewPanel=`) and the alert rules pointing at it keep working."""
    taken: dict[int, str] = {}
    for panel in model.get("panels", []):
        key = f"{panel['type']}:{panel['title']}"
        number = zlib.crc32(key.encode()) % 1_000_000 + 1
        if number in taken:
            raise ValueError(f"{model['uid']}: {key!r} and {taken[number]!r} share id {number}")
        taken[number] = key
        panel["id"] = number
    return model


def render_dashboards(table: dict[str, Budget] | None = None) -> dict[str, str]:
    """File name → dashboard JSON, with the budgets of `table` (the defaults: as checked in
    under grafana/dashboards/)."""
    table = table or budgets()
    out = {}
    for name, build in (
        ("llm-monitoring.json", lambda: monitoring(table)),
        ("evaluations.json", lambda: evaluations(table)),
        ("experiments.json", experiments),
        ("agents.json", agents),
        ("collectors.json", lambda: collectors(table)),
    ):
        model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
        out[name] = json.dumps(_numbered(model), indent=2, ensure_ascii=False) + "\n"
    return out
