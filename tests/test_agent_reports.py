"""A cycle's observations become one report, or several when they are too many or too large
for one (agent/runner.py split_reports), spooled in order, none lost or repeated."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.runner import Agent
from contract.report import (
    MAX_OBSERVATIONS,
    ConfigSnapshot,
    ProbeKind,
    ProbeResult,
    Report,
    utcnow,
)


def config(tmp_path: Path, **shipping: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent_id": "split-gw", "pd_code": "DINKES",
        "collector": {"url": "https://127.0.0.1:9/", "token_env": "UNUSED"},
        "spool": {"path": str(tmp_path / "spool.sqlite")}, "shipping": shipping})


def probes(n: int) -> list[ProbeResult]:
    t = utcnow()
    return [ProbeResult(observed_at=t + timedelta(microseconds=i), target=f"t{i}",
                        probe=ProbeKind.TCP, address=f"10.0.{i // 250}.{i % 250}:22", up=True,
                        rtt_ms=1.0) for i in range(n)]


def config_of(name: str, size: int) -> ConfigSnapshot:
    text = "".join(f"interface Gi0/{i}\n description {name}-{i:06d}\n"
                   for i in range(size // 40))
    return ConfigSnapshot(observed_at=utcnow(), device=name, driver="napalm:ios", content=text,
                          sha256=hashlib.sha256(text.encode()).hexdigest())


def spooled(agent: Agent) -> list[Report]:
    assert agent.spool is not None
    return [Report.model_validate_json(gzip.decompress(it.body))
            for it in agent.spool.peek(1000)]


def keys(obs: list[Any]) -> list[str]:
    return [o.target if isinstance(o, ProbeResult) else o.device for o in obs]


def test_small_cycle_is_one_report(tmp_path: Path) -> None:
    agent = Agent(config(tmp_path), with_spool=True)
    obs = probes(20)
    (rep,) = agent.enqueue(obs)
    assert [r.report_id for r in spooled(agent)] == [rep.report_id]
    assert keys(list(rep.observations)) == keys(obs)


def test_large_cycle_is_split_under_the_limit_in_order(tmp_path: Path) -> None:
    limit = 64 * 1024
    agent = Agent(config(tmp_path, max_report_bytes=limit), with_spool=True)
    obs: list[Any] = [*probes(300), config_of("core-sw", 40_000), *probes(5),
                      config_of("huge", 200_000)]
    reports = agent.enqueue(obs)
    assert [len(r.observations) for r in reports] == [300, 6, 1]
    assert [r.report_id for r in spooled(agent)] == [r.report_id for r in reports]
    flat = [o for r in reports for o in r.observations]
    assert keys(flat) == keys(obs)                          # every one, once, in order
    for r in reports:
        size = len(r.model_dump_json(exclude_none=True))
        alone = len(r.observations) == 1 and isinstance(r.observations[0], ConfigSnapshot)
        assert size <= limit or alone, (size, len(r.observations))
    assert any(len(r.observations) == 1 and r.observations[0].device == "huge"  # type: ignore[union-attr]
               for r in reports)                            # too big for any report: alone
    assert len({r.report_id for r in reports}) == len(reports)
    assert all(json.loads(gzip.decompress(b))["agent_id"] == "split-gw"
               for b in (it.body for it in agent.spool.peek(1000)))  # type: ignore[union-attr]


def test_more_observations_than_the_contract_allows(tmp_path: Path) -> None:
    agent = Agent(config(tmp_path, max_report_bytes=256 * 1024 * 1024), with_spool=True)
    obs = probes(MAX_OBSERVATIONS + 7)
    reports = agent.enqueue(obs)
    assert [len(r.observations) for r in reports] == [MAX_OBSERVATIONS, 7]
