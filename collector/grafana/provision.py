"""Push Assay's data source and dashboards to a running Grafana through its HTTP API.

Idempotent: the data source and the dashboards have fixed uids, so a second run updates them in
place (never a duplicate), and the "Assay" folder is created once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from assay.collector.grafana.dashboards import render_dashboards
from assay.collector.grafana.datasource import ClickHouseServer, datasource
from assay.collector.grafana.files import FOLDER
from assay.collector.grafana.query import DATASOURCE_UID

FOLDER_UID = "assay"


@dataclass
class Provisioned:
    datasource: str  # "created" or "updated"
    folder: str
    dashboards: list[str] = field(default_factory=list)  # their URLs in Grafana
    health: dict[str, Any] = field(default_factory=dict)


def _exists(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def provision(api: GrafanaApi, server: ClickHouseServer, check_health: bool = True) -> Provisioned:
    """Create or update the data source, the folder and the dashboards."""
    source = datasource(server)
    if _exists(api.datasource.get_datasource_by_uid, DATASOURCE_UID):
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, source)
        state = "updated"
    else:
        api.datasource.create_datasource(source)
        state = "created"
    if _exists(api.folder.get_folder, FOLDER_UID):
        folder = "kept"
    else:
        api.folder.create_folder(FOLDER, uid=FOLDER_UID)
        folder = "created"
    result = Provisioned(state, folder)
    for text in render_dashboards().values():
        answer = api.dashboard.update_dashboard(
            {
                "dashboard": json.loads(text),
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "provisioned by assay grafana provision",
            }
        )
        result.dashboards.append(str(answer.get("url", answer.get("uid", ""))))
    if check_health:
        result.health = api.datasource.health(DATASOURCE_UID)
    return result
