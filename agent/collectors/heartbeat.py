"""Heartbeat: the agent is alive; carries the spool's health (pending, dropped, rejected)."""

from __future__ import annotations

from agent import __version__
from agent.collectors import AgentContext, Obs, register
from agent.config import AgentConfig
from contract.report import Heartbeat, utcnow


class HeartbeatCollector:
    name = "heartbeat"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg, self.ctx = cfg, ctx

    def interval_s(self) -> float:
        return self.cfg.intervals.heartbeat_s

    async def collect(self) -> list[Obs]:
        pending, dropped, rejected = self.ctx.spool_counts()
        return [Heartbeat(observed_at=utcnow(), agent_version=__version__,
                          uptime_s=self.ctx.uptime_s(), spool_pending=pending,
                          spool_dropped_total=dropped, spool_rejected_total=rejected)]


@register("heartbeat")
def _factory(cfg: AgentConfig, ctx: AgentContext) -> HeartbeatCollector:
    return HeartbeatCollector(cfg, ctx)
