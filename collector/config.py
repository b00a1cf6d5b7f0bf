"""Collector configuration: typed, validated, immutable; YAML plus ``SPBE_COLLECTOR_*`` env.

Every key has an embedded default, so ``spbe-collector serve`` runs with no file at all
(SQLite under ./var, InfluxDB 1.x on 127.0.0.1:8086, plain HTTP on loopback only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from collector.alerts.config import AlertsCfg
from collector.compliance.profile import ComplianceCfg
from contract.configfile import load_config, read_secret

ENV_PREFIX = "SPBE_COLLECTOR_"


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenCfg(_Cfg):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8443
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ListenCfg:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_cert_file is None and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("serving plain HTTP on a non-loopback address is refused; "
                             "set tls_cert_file and tls_key_file")
        return self


class InfluxCfg(_Cfg):
    url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8086")
    api: Literal["v1", "v2"] = "v1"
    # v1 (InfluxDB 1.x): database, retention policy, optional basic auth
    database: str = "spbe"
    retention_policy: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    create_database: bool = True
    # v2 (InfluxDB 2.x / 3.x / 1.8+ compat): org, bucket, token
    org: str = "spbe"
    bucket: str = "spbe"
    token_env: str | None = None
    token_file: Path | None = None
    batch_lines: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0, le=300)] = 1.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    backoff_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0

    def password(self) -> str | None:
        if not (self.password_env or self.password_file):
            return None
        return read_secret(env=self.password_env, file=self.password_file,
                           what="influxdb password")

    def token(self) -> str | None:
        if not (self.token_env or self.token_file):
            return None
        return read_secret(env=self.token_env, file=self.token_file, what="influxdb token")


class LimitsCfg(_Cfg):
    max_body_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024 * 1024
    max_decompressed_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024
    max_api_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024  # dashboard API


class CollectorConfig(_Cfg):
    # relative: in the working directory (the systemd unit runs in /var/lib/spbe-collector)
    database_url: str = "sqlite:///spbe-collector.sqlite"
    listen: ListenCfg = ListenCfg()
    influxdb: InfluxCfg = InfluxCfg()
    limits: LimitsCfg = LimitsCfg()
    clock_skew_max_s: Annotated[float, Field(gt=0)] = 120.0
    agent_offline_after_s: Annotated[float, Field(gt=0)] = 180.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    alerts: AlertsCfg = AlertsCfg()
    compliance: ComplianceCfg = ComplianceCfg()


def load(path: Path | None) -> CollectorConfig:
    return load_config(CollectorConfig, path, ENV_PREFIX)
