"""Grafana for Assay: the ClickHouse data source, dashboards from code, provisioning."""
