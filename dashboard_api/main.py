"""Wires the dashboard routers; nothing else lives here."""

from __future__ import annotations

from fastapi import FastAPI

from dashboard_api.routers import (
    agents,
    alerts,
    backups,
    compliance,
    configs,
    devices,
    health,
    hosts,
    maintenance,
    pds,
    probes,
    topology,
    uptime,
    violations,
)

ROUTERS = (health.router, pds.router, agents.router, hosts.router, probes.router, uptime.router,
           devices.router, configs.router, topology.router, alerts.router, maintenance.router,
           violations.router, compliance.router, backups.router)


def include_routers(app: FastAPI) -> None:
    for r in ROUTERS:
        app.include_router(r)
