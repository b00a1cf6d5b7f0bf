"""Agent configuration: typed, validated, immutable. Loaded from YAML plus ``SPBE_AGENT_*`` env.

Secrets (the agent token) are referenced by ``token_env`` or ``token_file``, never inline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from contract.configfile import load_config, read_secret
from contract.report import Code

ENV_PREFIX = "SPBE_AGENT_"
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorCfg(_Cfg):
    url: AnyHttpUrl
    token_env: str | None = None
    token_file: Path | None = None
    ca_bundle: Path | None = None
    allow_insecure_http: bool = False
    timeout_s: Seconds = 10.0

    @model_validator(mode="after")
    def _check(self) -> CollectorCfg:
        if self.url.scheme == "http" and not self.allow_insecure_http:
            raise ValueError("plain http:// is refused; use https:// or set "
                             "allow_insecure_http: true explicitly")
        if not self.token_env and not self.token_file:
            raise ValueError("set token_env or token_file (the agent token is never inline)")
        return self

    def token(self) -> str:
        return read_secret(env=self.token_env, file=self.token_file, what="collector token")


class SpoolCfg(_Cfg):
    path: Path = Path("/var/lib/spbe-agent/spool.sqlite")
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 256 * 1024 * 1024
    max_age_days: Annotated[float, Field(gt=0)] = 30.0


class ShippingCfg(_Cfg):
    batch_reports: Annotated[int, Field(ge=1, le=1000)] = 50
    backoff_initial_s: Seconds = 1.0
    backoff_max_s: Seconds = 300.0
    idle_poll_s: Seconds = 1.0


class IntervalsCfg(_Cfg):
    heartbeat_s: Seconds = 60.0
    host_facts_s: Seconds = 300.0
    probes_s: Seconds = 60.0


class _Probe(_Cfg):
    name: Code
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0


class IcmpProbe(_Probe):
    type: Literal["icmp"]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    count: Annotated[int, Field(ge=1, le=100)] = 3
    interval_s: Annotated[float, Field(ge=0.01, le=10)] = 0.2
    max_loss_pct: Annotated[float, Field(ge=0, le=100)] = 99.0


class TcpProbe(_Probe):
    type: Literal["tcp"]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)]


class HttpProbe(_Probe):
    type: Literal["http"]
    url: AnyHttpUrl
    expect_status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = [
        200, 201, 202, 204, 301, 302, 303, 307, 308]
    verify_tls: bool = True
    ca_bundle: Path | None = None


Probe = Annotated[IcmpProbe | TcpProbe | HttpProbe, Field(discriminator="type")]


class AgentConfig(_Cfg):
    agent_id: Code
    pd_code: Code
    collector: CollectorCfg
    server_mode: bool = False
    spool: SpoolCfg = SpoolCfg()
    shipping: ShippingCfg = ShippingCfg()
    intervals: IntervalsCfg = IntervalsCfg()
    probes: Annotated[list[Probe], Field(max_length=2000)] = []
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _unique_probe_names(self) -> AgentConfig:
        seen: set[str] = set()
        for p in self.probes:
            if p.name in seen:
                raise ValueError(f"probe name {p.name!r} is used twice; names must be unique")
            seen.add(p.name)
        return self


def load(path: Path | None) -> AgentConfig:
    return load_config(AgentConfig, path, ENV_PREFIX)
