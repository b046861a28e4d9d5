"""Grafana for Assay: the ClickHouse data source, three dashboards built from code, and provisioning."""
