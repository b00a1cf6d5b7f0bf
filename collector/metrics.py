"""Derive InfluxDB points (line protocol) from a report's observations.

Measurements (tags -> fields):

- ``agent``: pd, agent -> uptime_s, spool_pending, spool_dropped_total, spool_rejected_total
- ``host``: pd, agent, hostname -> uptime_s, addresses, routes
- ``probe``: pd, agent, target, probe -> up (0/1), rtt_ms, loss_pct, status_code, tls_days_left
- ``device``: pd, agent, device -> up (0/1: the device answered the poll), uptime_s, duration_s
- ``interface``: pd, agent, device, ifname -> in_octets, out_octets, in_errors, out_errors,
  oper_up (0/1), speed_mbps

Each point carries the observation's own time (ns), so replaying a report writes the same
series and timestamps again, which InfluxDB treats as an overwrite: writes are idempotent.
"""

from __future__ import annotations

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from contract.report import (
    ConfigSnapshot,
    DeviceObservation,
    Heartbeat,
    HostFacts,
    PollStatus,
    ProbeResult,
    Report,
)

_INT64_MAX = 2**63 - 1  # InfluxDB integers are signed 64-bit


def _point(measurement: str, report: Report) -> Point:
    point: Point = Point(measurement).tag("pd", report.pd_code).tag("agent", report.agent_id)
    return point


def report_lines(report: Report) -> list[str]:
    lines: list[str] = []
    for obs in report.observations:
        if isinstance(obs, Heartbeat):
            p = (_point("agent", report).field("uptime_s", float(obs.uptime_s))
                 .field("spool_pending", obs.spool_pending)
                 .field("spool_dropped_total", obs.spool_dropped_total)
                 .field("spool_rejected_total", obs.spool_rejected_total))
        elif isinstance(obs, HostFacts):
            p = (_point("host", report).tag("hostname", obs.hostname)
                 .field("uptime_s", float(obs.uptime_s))
                 .field("addresses", len(obs.addresses)).field("routes", len(obs.routes)))
        elif isinstance(obs, ProbeResult):
            p = (_point("probe", report).tag("target", obs.target).tag("probe", obs.probe.value)
                 .field("up", int(obs.up)))
            for name in ("rtt_ms", "loss_pct", "tls_days_left"):
                value = getattr(obs, name)
                if value is not None:
                    p = p.field(name, float(value))
            if obs.status_code is not None:
                p = p.field("status_code", obs.status_code)
        elif isinstance(obs, DeviceObservation):
            lines.extend(device_lines(report, obs))
            continue
        elif isinstance(obs, ConfigSnapshot):
            continue  # state only (config versions), no metric
        else:  # pragma: no cover - the union is exhaustive
            continue
        lines.append(p.time(obs.observed_at, WritePrecision.NS).to_line_protocol())
    return lines


def device_lines(report: Report, obs: DeviceObservation) -> list[str]:
    """One ``device`` point per poll and one ``interface`` point per interface with data."""
    p = (_point("device", report).tag("device", obs.device)
         .field("up", int(obs.status is not PollStatus.FAILED)))
    for name in ("uptime_s", "duration_s"):
        value = getattr(obs, name)
        if value is not None:
            p = p.field(name, float(value))
    lines = [p.time(obs.observed_at, WritePrecision.NS).to_line_protocol()]
    for i in obs.interfaces:
        if not i.name.strip():
            continue
        ip = _point("interface", report).tag("device", obs.device).tag("ifname", i.name)
        fields = 0
        for name in ("in_octets", "out_octets", "in_errors", "out_errors"):
            value = getattr(i, name)
            if value is not None and value <= _INT64_MAX:
                ip, fields = ip.field(name, int(value)), fields + 1
        if i.oper_up is not None:
            ip, fields = ip.field("oper_up", int(i.oper_up)), fields + 1
        if i.speed_mbps is not None:
            ip, fields = ip.field("speed_mbps", float(i.speed_mbps)), fields + 1
        if fields:
            lines.append(ip.time(obs.observed_at, WritePrecision.NS).to_line_protocol())
    return lines
