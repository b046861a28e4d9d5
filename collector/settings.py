"""Collector settings: flags, `ASSAY_*` environment variables and the optional `assay.yaml`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from assay.collector.redaction import RedactionConfig
from assay.collector.retention import RetentionConfig
from assay.collector.store import StoreConfig
from assay.collector.store.base import DEFAULT_DATABASE


class CollectorSettings(BaseSettings):
    """Everything the collector can be told. Precedence: flags > environment > config file."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    host: str = "127.0.0.1"
    grpc_port: int = Field(default=4317, ge=0, le=65535)
    http_port: int = Field(default=4318, ge=0, le=65535)
    storage: Path = Path("assay-data")
    clickhouse_url: str | None = None
    database: str = DEFAULT_DATABASE
    # A ClickHouse cluster (remote_servers name) to distribute the schema over (store/cluster.py)
    cluster: str | None = None
    # Share the ports with other collector processes (set for each of `--workers N`).
    reuse_port: bool = False

    # Largest OTLP request accepted, compressed and decompressed alike.
    max_request_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    # The spool holds accepted requests until the store has them: on disk (durable across
    # crashes) or in memory (faster; lost with the process).
    spool: Literal["disk", "memory"] = "disk"
    spool_dir: Path | None = None  # default: <storage>/spool, or ./assay-spool with a server
    # Past this many bytes waiting for the store, new requests are refused (back-pressure).
    max_spool_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    # A write batch is one spool segment: sealed at this size or after flush_interval seconds.
    segment_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    flush_interval: float = Field(default=0.5, gt=0)
    # "always": acknowledge after fsync (group commit); "interval": fsync every fsync_interval s
    # (a process crash loses nothing, a power cut up to that); "never": leave it to the OS.
    fsync: Literal["always", "interval", "never"] = "always"
    fsync_interval: float = Field(default=0.05, gt=0)
    shutdown_timeout: float = Field(default=30.0, gt=0)
    # The embedded engine's allocator (collector/allocator.py): "fast" keeps chDB's own; "lean"
    # gives its large blocks back as soon as they are freed, 170-230 MiB less peak RSS under a
    # 60,000-span burst for 10-13 % more CPU per span (docs/capacity.md, "Peak memory").
    engine_memory: Literal["fast", "lean"] = "fast"
    # Rows the store refuses for their values are kept here (collector/deadletter.py), up to
    # max_deadletter_bytes; default <storage>/deadletter, or ./assay-deadletter with a server.
    deadletter_dir: Path | None = None
    max_deadletter_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    # Store write retries: exponential backoff from retry_initial up to retry_max seconds.
    retry_initial: float = Field(default=0.2, gt=0)
    retry_max: float = Field(default=30.0, gt=0)

    # Self-monitoring: a row of this collector's counters into collector_stats every
    # stats_interval seconds, under `instance` (default host:grpc-port). /api/health turns
    # unhealthy (503) when the spool is full or the store has been unreachable this long.
    stats_interval: float = Field(default=5.0, gt=0)
    # How long each kind of data is kept (collector/retention.py): {llm_calls: 90d, content: 14d}
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    instance: str | None = None
    unhealthy_after: float = Field(default=60.0, gt=0)

    # Limits of a person's SQL (POST /api/query), enforced by ClickHouse per query. Together the
    # queries take at most query_concurrency x query_max_threads cores and
    # query_concurrency x query_max_memory_bytes of memory.
    query_timeout_s: int = Field(default=30, gt=0)
    query_max_rows: int = Field(default=100_000, gt=0)
    query_max_memory_bytes: int = Field(default=1024**3, gt=0)
    query_max_threads: int = Field(default=1, gt=0)
    query_max_result_bytes: int = Field(default=64 * 1024**2, gt=0)
    query_concurrency: int = Field(default=2, gt=0)

    # Limits of the UI's and the JSON API's own reads (collector/api/read_gate.py), enforced by
    # ClickHouse per query: a read past one gets a message saying which, never a hung page.
    # At most read_concurrency of them run at once, at the lowest CPU priority, so ingestion
    # keeps its share of the CPU; up to read_queue more wait for a slot, each at most
    # read_timeout_s, and past that they are refused (503 with Retry-After).
    read_timeout_s: float = Field(default=10.0, gt=0)
    read_max_memory_bytes: int = Field(default=512 * 1024**2, gt=0)
    read_max_threads: int = Field(default=1, gt=0)
    read_max_result_rows: int = Field(default=100_000, gt=0)
    read_max_result_bytes: int = Field(default=256 * 1024**2, gt=0)
    read_concurrency: int = Field(default=2, gt=0)
    read_queue: int = Field(default=32, ge=0)
    # `offset` of GET /api/calls: deeper pages are refused (page by `until` instead), since an
    # OFFSET reads and sorts every key above it.
    read_max_offset: int = Field(default=10_000, ge=0)

    # A request on the HTTP port must have sent all its headers within this many seconds of
    # its connection opening (or of the previous response): slow-loris clients are let go
    # (collector/http_protocol.py).
    http_header_timeout_s: float = Field(default=10.0, gt=0)

    # Bearer tokens accepted on OTLP (gRPC and HTTP) and on the API/UI; empty leaves it open.
    # NoDecode: the environment gives them comma-separated rather than as JSON.
    otlp_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How long a UI login lasts (collector/login_sessions.py); logging out ends it sooner.
    ui_session_hours: float = Field(default=12.0, gt=0)
    # Without API tokens the UI and API are open, so the collector listens on loopback only
    # whatever `host` says; this lets it serve `host` open (a private container network).
    open_without_token: bool = False
    # Host names (besides IP addresses, localhost, the bind address and this machine's name)
    # that browsers may use to reach the UI and API; `*.example.com` for subdomains, `*` for
    # any. Stops DNS-rebinding pages (collector/http_guard.py).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # TLS for both listeners: PEM certificate (chain) and private key, both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # An LLM call's long content (prompt, response) is kept once, in its llm_calls row, and
    # otel_traces holds a preview of it and where it is ("preview",
    # collector/normalize/trace_content.py); "full" keeps it in full in both tables.
    trace_content: Literal["preview", "full"] = "preview"
    # Redaction before storage: built-in pattern names and custom regexes.
    redact: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redact_patterns: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("clickhouse_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("clickhouse_url must start with http:// or https://")
        return value or None

    @field_validator("otlp_tokens", "api_tokens", "redact", "allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            return [str(v).strip() for v in value if str(v).strip()]
        return value

    @field_validator("redact_patterns", mode="before")
    @classmethod
    def _pattern_list(cls, value: Any) -> Any:
        # Regexes hold commas, so the environment gives a JSON list, or one regex alone.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    return json.loads(value)
                except ValueError as exc:
                    raise ValueError(f"not a JSON list of regexes: {exc}") from exc
            return [value] if value else []
        return value

    @field_validator("redact")
    @classmethod
    def _known_patterns(cls, value: list[str]) -> list[str]:
        RedactionConfig(builtins=tuple(value))  # raises naming the unknown ones
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _valid_regexes(cls, value: list[str]) -> list[str]:
        RedactionConfig(patterns=tuple(value))  # raises naming the invalid one
        return value

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(self.storage, self.database, self.clickhouse_url, self.cluster)

    @property
    def redaction(self) -> RedactionConfig:
        return RedactionConfig(builtins=tuple(self.redact), patterns=tuple(self.redact_patterns))


def check_tls(settings: CollectorSettings) -> None:
    """Both TLS files or neither, and both readable. Checked on the merged settings: the
    environment may name one file and the config file the other."""
    cert, key = settings.tls_cert, settings.tls_key
    if (cert is None) != (key is None):
        given, missing = ("tls_cert", "tls_key") if key is None else ("tls_key", "tls_cert")
        raise ValueError(f"{given} is set but {missing} is not: TLS needs both (PEM files)")
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if path is not None and not path.is_file():
            raise ValueError(f"{name}: no such file {path}")


LOOPBACK_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def listen_host(settings: CollectorSettings) -> str:
    """Where to listen: `host`, but loopback when the UI and API would be open to a network."""
    if settings.api_tokens or settings.open_without_token or is_loopback(settings.host):
        return settings.host
    return LOOPBACK_HOST


def spool_folder(settings: CollectorSettings) -> Path:
    if settings.spool_dir is not None:
        return settings.spool_dir
    return Path("assay-spool") if settings.clickhouse_url else settings.storage / "spool"


def deadletter_folder(settings: CollectorSettings) -> Path:
    if settings.deadletter_dir is not None:
        return settings.deadletter_dir
    return Path("assay-deadletter") if settings.clickhouse_url else settings.storage / "deadletter"


def load_settings(config_file: Path | None = None, **overrides: Any) -> CollectorSettings:
    """Settings from the config file (if any), the environment, then explicit overrides."""
    from_file: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read config file {config_file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {config_file} must hold a mapping at the top level")
        from_file = dict(loaded.get("collector", {}) or {})
        # A key no setting has is a typo, or a setting of another Assay version (renamed,
        # dropped, not yet there): ignored, the collector would run without it and say nothing.
        unknown = sorted(set(from_file) - set(CollectorSettings.model_fields))
        if unknown:
            raise ValueError(
                f"config file {config_file}: no setting {', '.join(unknown)} under collector: "
                "(a typo, or a setting of another version of Assay)"
            )
    env_settings = CollectorSettings()
    # Values from the environment beat the file: keep only the file's keys the env did not set.
    explicit_env = env_settings.model_fields_set
    merged = {k: v for k, v in from_file.items() if k not in explicit_env}
    merged.update(env_settings.model_dump(include=explicit_env))
    merged.update({k: v for k, v in overrides.items() if v is not None})
    settings = CollectorSettings.model_validate(merged)
    check_tls(settings)
    return settings
