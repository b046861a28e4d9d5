"""A panel target of the Grafana ClickHouse plugin (grafana-clickhouse-datasource), raw SQL.

grafana-foundation-sdk has no ClickHouse query type, so this is the plugin's target shape as a
foundation-sdk dataquery and builder.
"""

from __future__ import annotations

import enum

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.common import DataSourceRef

PLUGIN_ID = "grafana-clickhouse-datasource"
DATASOURCE_UID = "assay-clickhouse"
DATASOURCE_NAME = "Assay ClickHouse"
DATASOURCE = DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)


class Format(enum.IntEnum):
    """The plugin's result formats."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2
    TRACES = 3


class ClickHouseQuery(cogvariants.Dataquery):
    def __init__(self, sql: str, fmt: Format, ref_id: str = "A") -> None:
        self.sql = sql
        self.format = fmt
        self.ref_id = ref_id

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": DATASOURCE.to_json(),
            "editorType": "sql",
            "format": int(self.format),
            "queryType": "table" if self.format == Format.TABLE else "timeseries",
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class ClickHouseTarget(cogbuilder.Builder[ClickHouseQuery]):
    def __init__(self, sql: str, fmt: Format, ref_id: str = "A") -> None:
        self._internal = ClickHouseQuery(sql, fmt, ref_id)

    def build(self) -> ClickHouseQuery:
        return self._internal
