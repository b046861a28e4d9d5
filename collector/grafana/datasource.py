"""The ClickHouse data source Grafana reads Assay through, for file provisioning and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.collector.grafana.query import DATASOURCE_NAME, DATASOURCE_UID, PLUGIN_ID
from assay.collector.grafana.sql import DATABASE


@dataclass(frozen=True)
class ClickHouseServer:
    """Where Grafana finds ClickHouse (as Grafana sees it, e.g. a compose service name)."""

    host: str
    port: int = 9000
    protocol: str = "native"
    username: str = "default"
    password: str = ""
    secure: bool = False
    database: str = DATABASE


def datasource(server: ClickHouseServer) -> dict[str, Any]:
    """The data source as Grafana's API and provisioning files take it. Its trace settings point
    the plugin's trace view at otel_traces (OpenTelemetry schema), so any trace_id opens."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {
            "host": server.host,
            "port": server.port,
            "protocol": server.protocol,
            "secure": server.secure,
            "username": server.username,
            "defaultDatabase": server.database,
            "traces": {
                "defaultDatabase": server.database,
                "defaultTable": "otel_traces",
                "otelEnabled": True,
                "otelVersion": "latest",
                "durationUnit": "nanoseconds",
            },
            "logs": {
                "defaultDatabase": server.database,
                "defaultTable": "otel_logs",
                "otelEnabled": True,
                "otelVersion": "latest",
            },
        },
        "secureJsonData": {"password": server.password},
    }
