"""Grafana's file-provisioning structure, for what Assay writes: data sources, dashboard
providers and alerting (rule groups, contact points, notification policies).

Grafana reads these files at start-up and refuses to start on some mistakes while silently
ignoring others (an unknown key, a condition naming no query). These models follow the structs
Grafana unmarshals (`pkg/services/provisioning/{datasources,dashboards,alerting}`) and the checks
its `mapToModel` functions make, and are stricter where Grafana would only fail later: unknown
keys, a condition or expression naming no query, a policy naming no contact point.
`validate(path, document)` raises `ProvisioningError` saying which file and where.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Prometheus's model.ParseDuration, which Grafana uses for intervals and `for`.
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_MS = (31_536_000_000, 604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
# Grafana's UIDs: at most 40 characters of letters, digits, '-' and '_'.
_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
EXPRESSIONS = "__expr__"
# The alert scheduler ticks every 10 s: a group's interval must be a multiple of it.
SCHEDULER_TICK_MS = 10_000
DEFAULT_CONTACT_POINT = "grafana-default-email"
# What each integration needs in its settings (Grafana's notifier validation).
_REQUIRED_SETTINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "email": (("addresses",),),
    "slack": (("url",), ("token", "recipient")),
    "webhook": (("url",),),
    "discord": (("url",),),
    "teams": (("url",),),
    "googlechat": (("url",),),
}


class ProvisioningError(ValueError):
    """A provisioning file Grafana would refuse or misread."""


def duration_ms(text: str) -> int:
    """A Prometheus duration ("1m", "1h30m", "0s") in milliseconds."""
    match = _DURATION.match(text)
    if text in ("", "0"):
        return 0
    if not match or not any(match.groups()):
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_MS, strict=True) if n)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _uid(value: str) -> str:
    if not _UID.match(value):
        raise ValueError(f"uid {value!r}: 1-40 letters, digits, '-' or '_'")
    return value


# -- data sources ---------------------------------------------------------------------------


class Datasource(_Strict):
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    uid: str
    access: Literal["proxy", "direct"] = "proxy"
    url: str = ""
    isDefault: bool = False
    editable: bool = False
    jsonData: dict[str, Any] = {}
    secureJsonData: dict[str, str] = {}
    orgId: int = 1

    _check_uid = field_validator("uid")(_uid)


class DatasourcesFile(_Strict):
    apiVersion: Literal[1]
    datasources: list[Datasource]

    @model_validator(mode="after")
    def _one_default(self) -> DatasourcesFile:
        if sum(d.isDefault for d in self.datasources) > 1:
            raise ValueError("more than one data source is the default")
        return self


# -- dashboard providers --------------------------------------------------------------------


class ProviderOptions(_Strict):
    path: str = Field(min_length=1)
    foldersFromFilesStructure: bool = False


class Provider(_Strict):
    name: str = Field(min_length=1)
    orgId: int = 1
    folder: str = ""
    folderUid: str = ""
    type: Literal["file"] = "file"
    disableDeletion: bool = False
    allowUiUpdates: bool = False
    updateIntervalSeconds: int = Field(default=10, ge=1)
    options: ProviderOptions


class DashboardsFile(_Strict):
    apiVersion: Literal[1]
    providers: list[Provider] = Field(min_length=1)


# -- alerting -------------------------------------------------------------------------------


class RelativeTimeRange(_Strict):
    from_: int = Field(alias="from", ge=0)
    to: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RelativeTimeRange:
        if self.from_ < self.to:
            raise ValueError("relativeTimeRange: from must be at least to")
        return self


class Query(_Strict):
    refId: str = Field(min_length=1)
    queryType: str = ""
    relativeTimeRange: RelativeTimeRange
    datasourceUid: str = Field(min_length=1)
    model: dict[str, Any]

    @model_validator(mode="after")
    def _model_matches(self) -> Query:
        if self.model.get("refId", self.refId) != self.refId:
            raise ValueError(f"query {self.refId}: its model says refId {self.model['refId']!r}")
        if self.datasourceUid == EXPRESSIONS:
            kind = self.model.get("type")
            if kind not in ("math", "reduce", "resample", "classic_conditions", "threshold"):
                raise ValueError(f"expression {self.refId}: unknown type {kind!r}")
            if kind == "threshold":
                for condition in self.model.get("conditions", []) or [None]:
                    evaluator = (condition or {}).get("evaluator", {})
                    params = evaluator.get("params")
                    if evaluator.get("type") not in ("gt", "lt", "within_range", "outside_range"):
                        raise ValueError(f"threshold {self.refId}: evaluator {evaluator!r}")
                    if not params or not all(isinstance(p, (int, float)) for p in params):
                        raise ValueError(f"threshold {self.refId}: params {params!r}")
        elif not self.model.get("rawSql", "").strip():
            raise ValueError(f"query {self.refId}: no rawSql")
        return self


class Rule(_Strict):
    uid: str
    title: str = Field(min_length=1)
    condition: str = Field(min_length=1)
    data: list[Query] = Field(min_length=1)
    dashboardUid: str = ""
    panelId: int = 0
    noDataState: Literal["NoData", "Alerting", "OK", "KeepLast"] = "NoData"
    execErrState: Literal["Error", "Alerting", "OK", "KeepLast"] = "Alerting"
    for_: str = Field(default="0s", alias="for")
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}
    isPaused: bool = False

    _check_uid = field_validator("uid")(_uid)

    @field_validator("for_")
    @classmethod
    def _pending(cls, value: str) -> str:
        duration_ms(value)
        return value

    @field_validator("labels")
    @classmethod
    def _no_expansion(cls, labels: dict[str, str]) -> dict[str, str]:
        # Grafana expands environment variables in labels: a '$' would be lost.
        for key, value in labels.items():
            if "$" in value or "$" in key:
                raise ValueError(f"label {key}={value!r}: a '$' would be read as a variable")
        return labels

    @model_validator(mode="after")
    def _references(self) -> Rule:
        refs = [q.refId for q in self.data]
        if len(set(refs)) != len(refs):
            raise ValueError(f"rule {self.uid}: two queries share a refId")
        if self.condition not in refs:
            raise ValueError(f"rule {self.uid}: condition {self.condition!r} names no query")
        for query in self.data:
            expression = query.model.get("expression")
            if query.datasourceUid == EXPRESSIONS and expression not in refs:
                raise ValueError(f"rule {self.uid}: {query.refId} reads {expression!r}, no query")
        return self


class RuleGroup(_Strict):
    orgId: int = 1
    name: str = Field(min_length=1)
    folder: str = Field(min_length=1)
    interval: str
    rules: list[Rule] = Field(min_length=1)

    @field_validator("interval")
    @classmethod
    def _every_tick(cls, value: str) -> str:
        ms = duration_ms(value)
        if ms <= 0 or ms % SCHEDULER_TICK_MS:
            raise ValueError(f"interval {value!r}: a positive multiple of 10s")
        return value


class Receiver(_Strict):
    uid: str
    type: str = Field(min_length=1)
    settings: dict[str, Any] = Field(min_length=1)
    disableResolveMessage: bool = False

    _check_uid = field_validator("uid")(_uid)

    @model_validator(mode="after")
    def _settings(self) -> Receiver:
        needs = _REQUIRED_SETTINGS.get(self.type)
        if needs is None:
            raise ValueError(
                f"receiver {self.uid}: integration {self.type!r} is not one Assay sets up"
            )
        if not any(all(self.settings.get(key) for key in keys) for keys in needs):
            raise ValueError(
                f"receiver {self.uid} ({self.type}) needs {' or '.join(map(str, needs))}"
            )
        return self


class ContactPoint(_Strict):
    orgId: int = 1
    name: str = Field(min_length=1)
    receivers: list[Receiver] = Field(min_length=1)


class Policy(_Strict):
    orgId: int = 1
    receiver: str = Field(min_length=1)
    group_by: list[str] = []
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"

    @field_validator("group_wait", "group_interval", "repeat_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_ms(value)
        return value


class AlertingFile(_Strict):
    apiVersion: Literal[1]
    groups: list[RuleGroup] = []
    contactPoints: list[ContactPoint] = []
    policies: list[Policy] = []

    @model_validator(mode="after")
    def _unique(self) -> AlertingFile:
        uids = [rule.uid for group in self.groups for rule in group.rules]
        if len(set(uids)) != len(uids):
            raise ValueError("two rules share a uid")
        titles = [(g.folder, rule.title) for g in self.groups for rule in g.rules]
        if len(set(titles)) != len(titles):
            raise ValueError("two rules of one folder share a title")
        return self


_SCHEMAS: dict[str, type[BaseModel]] = {
    "provisioning/datasources/": DatasourcesFile,
    "provisioning/dashboards/": DashboardsFile,
    "provisioning/alerting/": AlertingFile,
}


def validate(path: str, document: Any) -> BaseModel:
    """Check one provisioning document (parsed YAML) written to `path` (under grafana/)."""
    for prefix, schema in _SCHEMAS.items():
        if path.startswith(prefix):
            try:
                return schema.model_validate(document)
            except ValidationError as exc:
                raise ProvisioningError(f"{path}: {exc}") from exc
    raise ProvisioningError(f"{path}: not a provisioning file Assay writes")


def validate_together(documents: dict[str, Any]) -> None:
    """Checks across files: every policy names a contact point provisioned beside it (or
    Grafana's default one)."""
    models = {path: validate(path, doc) for path, doc in documents.items()}
    alerting = [m for m in models.values() if isinstance(m, AlertingFile)]
    names = {c.name for m in alerting for c in m.contactPoints} | {DEFAULT_CONTACT_POINT}
    for model in alerting:
        for policy in model.policies:
            if policy.receiver not in names:
                raise ProvisioningError(f"a policy sends to {policy.receiver!r}, no contact point")
