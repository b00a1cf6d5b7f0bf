"""What the rules read: the SQL state of a set of PDs, loaded lazily, once per evaluation.

Each table is read with one query (filtered to the PDs being evaluated) the first time a rule
asks for it, so a pass over 500 PDs costs a handful of queries, not one per PD or per rule.
Rows are small typed tuples; times are UTC epoch seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import func, not_, or_, select, true
from sqlalchemy.engine import Connection

from collector.db import agents, hosts, pds, probe_targets
from collector.db_compliance import (
    backup_jobs,
    registered_devices,
    server_hosts,
    server_scans,
)
from collector.db_inventory import (
    device_interfaces,
    devices,
    lldp_neighbors,
    topology_baselines,
    topology_changes,
)
from collector.uptime import Transition, load_history

DEVICE_FORGET_S = 7 * 86400.0  # a device nobody polled for this long is no longer configured


class Pd(NamedTuple):
    id: int
    code: str
    name: str
    created_at: float


class Agent(NamedTuple):
    pk: int
    agent_id: str
    pd_id: int
    created_at: float
    last_seen_at: float | None
    last_report_id: str | None


class Target(NamedTuple):
    id: int
    pd_id: int
    agent_pk: int
    name: str
    kind: str
    address: str
    state: str
    state_since: float
    last_checked: float
    last_error: str | None
    resolved: list[str] | None = None     # addresses the host name last resolved to
    resolved_at: float | None = None


class Device(NamedTuple):
    id: int
    pd_id: int
    name: str
    hostname: str | None
    mgmt_address: str
    vendor: str | None
    model: str | None
    serial: str | None
    role: str | None
    addresses: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    first_seen: float
    last_seen: float | None
    last_poll_at: float
    last_status: str
    last_error_type: str | None
    last_error: str | None
    last_report_id: str


class Interface(NamedTuple):
    device_id: int
    name: str
    description: str
    type: str | None
    admin_up: bool | None
    updated_at: float


class Lldp(NamedTuple):
    device_id: int
    local_port: str
    remote_system_name: str
    remote_chassis_id: str
    remote_port_id: str
    remote_mgmt_address: str | None
    observed_at: float
    report_id: str


class Host(NamedTuple):
    id: int
    pd_id: int
    agent_pk: int
    hostname: str
    server_mode: bool
    addresses: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    first_seen: float
    last_seen: float


class Baseline(NamedTuple):
    id: int
    approved_at: float
    approved_by: str


class Change(NamedTuple):
    id: int
    pd_id: int
    change_type: str
    summary: str
    detail: dict[str, Any]
    first_seen: float
    last_seen: float
    report_id: str


class BackupJob(NamedTuple):
    id: int
    pd_id: int
    agent_pk: int
    job: str
    type: str
    status: str
    error_type: str | None
    last_success_at: float | None
    last_failure_at: float | None
    last_failure_reason: str | None
    size_bytes: int | None
    prev_size_bytes: int | None
    prev_success_at: float | None
    expected_interval_s: float | None
    destination: str | None
    destination_ips: list[str]
    destination_error: str | None
    replica: dict[str, Any] | None
    replica_last_success_at: float | None
    integrity: str
    integrity_checked_at: float | None
    integrity_message: str | None
    observed_at: float
    report_id: str


class ServerHost(NamedTuple):
    id: int
    pd_id: int
    agent_pk: int
    ip: str
    mac: str | None
    open_ports: list[int]
    roles: list[str]
    role: str
    scanned_at: float
    first_seen: float
    last_seen: float
    report_id: str


class Registered(NamedTuple):
    id: int
    pd_id: int
    name: str
    category: str | None
    vendor: str | None
    model: str | None
    serial: str | None
    mac: str | None
    mgmt_address: str | None


def _rows(c: Connection, stmt: Any, cls: Any) -> list[Any]:
    return [cls(*r) for r in c.execute(stmt)]


class State:
    """The state of ``pd_ids`` (None: every PD) as of ``now``."""

    def __init__(self, conn: Connection, now: float, pd_ids: Iterable[int] | None = None,
                 *, device_forget_s: float = DEVICE_FORGET_S) -> None:
        self.conn = conn
        self.now = now
        self.pd_ids = None if pd_ids is None else frozenset(pd_ids)
        self.device_forget_s = device_forget_s
        self.memo: dict[str, Any] = {}     # helpers shared by several rules (one pass)

    def _scope(self, col: Any) -> Any:
        return true() if self.pd_ids is None else col.in_(sorted(self.pd_ids))

    @cached_property
    def pds(self) -> dict[int, Pd]:
        return {p.id: p for p in _rows(self.conn, select(
            pds.c.id, pds.c.code, pds.c.name, pds.c.created_at).where(self._scope(pds.c.id))
            .order_by(pds.c.code), Pd)}

    @cached_property
    def agents(self) -> list[Agent]:
        return _rows(self.conn, select(
            agents.c.id, agents.c.agent_id, agents.c.pd_id, agents.c.created_at,
            agents.c.last_seen_at, agents.c.last_report_id)
            .where(self._scope(agents.c.pd_id), agents.c.revoked.is_(False))
            .order_by(agents.c.agent_id), Agent)

    @cached_property
    def agents_by_pk(self) -> dict[int, Agent]:
        return {a.pk: a for a in self.agents}

    @cached_property
    def targets(self) -> list[Target]:
        return self.targets_where(self._scope(probe_targets.c.pd_id))

    def targets_where(self, *where: Any) -> list[Target]:
        """Probe targets matching ``where`` (any PD: callers scope when they need to)."""
        t = probe_targets.c
        return _rows(self.conn, select(
            t.id, t.pd_id, t.agent_pk, t.name, t.kind, t.address, t.state, t.state_since,
            t.last_checked, t.last_error, t.resolved, t.resolved_at)
            .where(*where).order_by(t.id), Target)

    def transitions(self, target_ids: Sequence[int], start: float
                    ) -> dict[int, list[Transition]]:
        """Per target: the transition in force at ``start`` (if any) and all later ones."""
        return load_history(self.conn.execute, target_ids, start)

    @cached_property
    def devices(self) -> list[Device]:
        """Devices still polled (``last_poll_at`` within ``device_forget_s``)."""
        d = devices.c
        return _rows(self.conn, select(
            d.id, d.pd_id, d.name, d.hostname, d.mgmt_address, d.vendor, d.model, d.serial,
            d.role, d.addresses, d.routes, d.first_seen, d.last_seen, d.last_poll_at,
            d.last_status, d.last_error_type, d.last_error, d.last_report_id)
            .where(self._scope(d.pd_id), d.last_poll_at >= self.now - self.device_forget_s)
            .order_by(d.pd_id, d.name), Device)

    @cached_property
    def device_counts(self) -> dict[int, int]:
        """Live devices per PD (without loading them)."""
        d = devices.c
        return {r[0]: r[1] for r in self.conn.execute(
            select(d.pd_id, func.count()).where(
                self._scope(d.pd_id), d.last_poll_at >= self.now - self.device_forget_s)
            .group_by(d.pd_id))}

    @cached_property
    def devices_by_id(self) -> dict[int, Device]:
        return {d.id: d for d in self.devices}

    @cached_property
    def devices_by_pd(self) -> dict[int, list[Device]]:
        out: dict[int, list[Device]] = defaultdict(list)
        for d in self.devices:
            out[d.pd_id].append(d)
        return out

    def up_interfaces(self, *, unlabelled: str | None = None,
                      skip_types: Iterable[str] = ()) -> list[Interface]:
        """Operationally up interfaces of the live devices; with ``unlabelled`` (a regular
        expression) only those whose description is empty or does not match it, and none of
        the ``skip_types`` (filtered by the database: most ports are labelled)."""
        i = device_interfaces.c
        cond = [self._scope(devices.c.pd_id),
                devices.c.last_poll_at >= self.now - self.device_forget_s,
                i.oper_up.is_(True)]
        if unlabelled is not None:
            cond.append(or_(i.description == "", not_(i.description.regexp_match(unlabelled))))
        types = sorted({t.lower() for t in skip_types})
        if types:
            cond.append(or_(i.type.is_(None), func.lower(i.type).not_in(types)))
        stmt = (select(i.device_id, i.name, i.description, i.type, i.admin_up, i.updated_at)
                .join(devices, devices.c.id == i.device_id).where(*cond)
                .order_by(i.device_id, i.name))
        return _rows(self.conn, stmt, Interface)

    @cached_property
    def lldp(self) -> list[Lldp]:
        n = lldp_neighbors.c
        stmt = (select(n.device_id, n.local_port, n.remote_system_name, n.remote_chassis_id,
                       n.remote_port_id, n.remote_mgmt_address, n.observed_at, n.report_id)
                .join(devices, devices.c.id == n.device_id)
                .where(self._scope(devices.c.pd_id),
                       devices.c.last_poll_at >= self.now - self.device_forget_s)
                .order_by(n.device_id, n.id))
        return _rows(self.conn, stmt, Lldp)

    def all_devices_brief(self) -> list[tuple[str, str | None, str, str | None]]:
        """(name, hostname, mgmt_address, serial) of every device of every PD: an LLDP
        neighbour polled by another PD is that PD's device."""
        d = devices.c
        return [(r[0], r[1], r[2], r[3]) for r in self.conn.execute(
            select(d.name, d.hostname, d.mgmt_address, d.serial))]

    def all_devices_fingerprint(self) -> tuple[Any, ...]:
        """Changes when a device is added or its name/hostname/address/serial changes
        (not with every poll)."""
        d = devices.c
        size = (func.length(d.name) + func.length(func.coalesce(d.hostname, ""))
                + func.length(d.mgmt_address) + func.length(func.coalesce(d.serial, "")))
        return tuple(self.conn.execute(select(func.count(), func.max(d.id),
                                              func.sum(size))).one())

    def all_registered(self) -> list[Registered]:
        """The registered inventory of every PD (a neighbour may be registered elsewhere)."""
        r = registered_devices.c
        return _rows(self.conn, select(
            r.id, r.pd_id, r.name, r.category, r.vendor, r.model, r.serial, r.mac,
            r.mgmt_address), Registered)

    def all_registered_fingerprint(self) -> tuple[Any, ...]:
        r = registered_devices.c
        return tuple(self.conn.execute(select(func.count(), func.max(r.id),
                                              func.max(r.updated_at))).one())

    @cached_property
    def hosts(self) -> list[Host]:
        h = hosts.c
        return _rows(self.conn, select(
            h.id, h.pd_id, h.agent_pk, h.hostname, h.server_mode, h.addresses, h.routes,
            h.first_seen, h.last_seen)
            .where(self._scope(h.pd_id)).order_by(h.pd_id, h.hostname), Host)

    @cached_property
    def baselines(self) -> dict[int, Baseline]:
        b = topology_baselines.c
        latest = (select(b.pd_id, func.max(b.id).label("id"))
                  .where(self._scope(b.pd_id)).group_by(b.pd_id).subquery())
        return {r[0]: Baseline(r[1], r[2], r[3]) for r in self.conn.execute(
            select(b.pd_id, b.id, b.approved_at, b.approved_by)
            .join(latest, latest.c.id == b.id))}

    @cached_property
    def open_changes(self) -> list[Change]:
        """Topology changes that are open and not acknowledged."""
        t = topology_changes.c
        return _rows(self.conn, select(
            t.id, t.pd_id, t.change_type, t.summary, t.detail, t.first_seen, t.last_seen,
            t.report_id)
            .where(self._scope(t.pd_id), t.status == "open", t.acknowledged.is_(False))
            .order_by(t.id), Change)

    @cached_property
    def backups(self) -> list[BackupJob]:
        b = backup_jobs.c
        return _rows(self.conn, select(
            b.id, b.pd_id, b.agent_pk, b.job, b.type, b.status, b.error_type,
            b.last_success_at, b.last_failure_at, b.last_failure_reason, b.size_bytes,
            b.prev_size_bytes, b.prev_success_at, b.expected_interval_s, b.destination,
            b.destination_ips, b.destination_error, b.replica, b.replica_last_success_at,
            b.integrity, b.integrity_checked_at, b.integrity_message, b.observed_at,
            b.report_id).where(self._scope(b.pd_id)).order_by(b.pd_id, b.job), BackupJob)

    @cached_property
    def server_hosts(self) -> list[ServerHost]:
        s = server_hosts.c
        return _rows(self.conn, select(
            s.id, s.pd_id, s.agent_pk, s.ip, s.mac, s.open_ports, s.roles, s.role,
            s.scanned_at, s.first_seen, s.last_seen, s.report_id)
            .where(self._scope(s.pd_id)).order_by(s.pd_id, s.ip), ServerHost)

    @cached_property
    def server_scans(self) -> dict[int, tuple[float, bool, str]]:
        """agent_pk -> (observed_at, complete, report_id) of its latest scan."""
        s = server_scans.c
        return {r[0]: (r[1], r[2], r[3]) for r in self.conn.execute(
            select(s.agent_pk, s.observed_at, s.complete, s.report_id)
            .where(self._scope(s.pd_id)))}

    @cached_property
    def registered(self) -> list[Registered]:
        """The registered inventory of the PDs in scope."""
        r = registered_devices.c
        return _rows(self.conn, select(
            r.id, r.pd_id, r.name, r.category, r.vendor, r.model, r.serial, r.mac,
            r.mgmt_address).where(self._scope(r.pd_id)).order_by(r.pd_id, r.name), Registered)


def _chunks(seq: Sequence[int], n: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
