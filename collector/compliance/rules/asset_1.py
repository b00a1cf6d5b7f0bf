"""ASSET-1: the PD must inventory all its ICT devices and report them to the asset system.

The registered inventory is what the PD reported (``PUT /api/v1/pds/{code}/registered-
devices``). Violation for a device seen on the PD's network that is not in it: a device an
agent polls, or an LLDP neighbour of one that no agent polls. A device matches a registered
one by name or management address within the same PD only (names such as ``sw1`` and private
addresses repeat across PDs), or by serial number or chassis MAC, which are unique and may
match the registered inventory of any PD. Also a violation: a registered device without
serial number or model.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind
from collector.compliance.state import Registered


class Asset1Params(Params):
    check_lldp_neighbors: bool = True
    require_serial: bool = True
    require_model: bool = True
    ignore_neighbors: tuple[str, ...] = ()     # name globs of neighbours that are not ICT assets


def name_keys(name: str | None) -> set[str]:
    if not name or not name.strip():
        return set()
    low = name.strip().lower()
    return {low, low.split(".", 1)[0]}


def mac_key(value: str | None) -> str | None:
    if not value:
        return None
    hexes = "".join(ch for ch in value.lower() if ch in "0123456789abcdef")
    return hexes if len(hexes) == 12 else None


class _Index:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.serials: set[str] = set()
        self.macs: set[str] = set()
        self.addrs: set[str] = set()

    def add(self, name: str | None, serial: str | None = None, mac: str | None = None,
            addr: str | None = None, *more_names: str | None) -> None:
        for n in (name, *more_names):
            self.names |= name_keys(n)
        if serial and serial.strip():
            self.serials.add(serial.strip().lower())
        if (m := mac_key(mac)) is not None:
            self.macs.add(m)
        if addr:
            self.addrs.add(addr)

    def has(self, name: str | None, serial: str | None = None, mac: str | None = None,
            addr: str | None = None, *more_names: str | None) -> bool:
        for n in (name, *more_names):
            if n and n.strip():
                low = n.strip().lower()
                if low in self.names or low.split(".", 1)[0] in self.names:
                    return True
        if serial and serial.strip().lower() in self.serials:
            return True
        m = mac_key(mac)
        return bool((m and m in self.macs) or (addr and addr in self.addrs))


class _Registered:
    """The registered inventory of every PD: serials and MACs region-wide (unique to one
    device), names and management addresses per PD (they repeat across PDs)."""

    def __init__(self, rows: Iterable[Registered]) -> None:
        self.unique = _Index()
        self.per_pd: dict[int, _Index] = defaultdict(_Index)
        for r in rows:
            self.unique.add(None, r.serial, r.mac)
            self.per_pd[r.pd_id].add(r.name, None, None, r.mgmt_address)

    def has(self, pd_id: int, name: str | None, serial: str | None = None,
            mac: str | None = None, addr: str | None = None, *more_names: str | None) -> bool:
        if self.unique.has(None, serial, mac):
            return True
        local = self.per_pd.get(pd_id)
        return local is not None and local.has(name, None, None, addr, *more_names)


def _index(rows: Iterable[tuple[Any, ...]]) -> _Index:
    index = _Index()
    for row in rows:
        index.add(*row)
    return index


_T = TypeVar("_T")


def _cached(ctx: Context, key: str, fingerprint: tuple[Any, ...],
            build: Callable[[], _T]) -> _T:
    """The index over every PD's rows, rebuilt only when their fingerprint changes (a pass
    for one PD after each report must not read the whole region again)."""
    hit = ctx.cache.get(key)
    if hit is not None and hit[0] == fingerprint:
        index: _T = hit[1]
        return index
    index = build()
    ctx.cache[key] = (fingerprint, index)
    return index


class Asset1:
    obligation: ClassVar[Obligation] = Obligation.ASSET_1
    default_severity: ClassVar[Severity] = Severity.MINOR
    Params: ClassVar[type[BaseModel]] = Asset1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Asset1Params)
        st = ctx.state
        registered = _cached(ctx, "asset1.registered", st.all_registered_fingerprint(),
                             lambda: _Registered(st.all_registered()))
        for d in st.devices:
            if not ctx.applies(self.obligation, d.pd_id):
                continue
            if registered.has(d.pd_id, d.name, d.serial, None, d.mgmt_address, d.hostname):
                continue
            yield Finding(
                d.pd_id, SubjectKind.DEVICE, f"device:{d.name}",
                (Reason("asset1.unregistered_device", {
                    "device": d.name, "vendor": d.vendor or "-", "model": d.model or "-",
                    "serial": d.serial or "-"}),),
                {"device": d.name, "hostname": d.hostname, "mgmt_address": d.mgmt_address,
                 "vendor": d.vendor, "model": d.model, "serial": d.serial, "role": d.role,
                 "first_seen": d.first_seen, "last_seen": d.last_seen,
                 "report_id": d.last_report_id})
        if params.check_lldp_neighbors:
            yield from self._neighbors(ctx, params, registered)
        for r in st.registered:
            if r.pd_id not in st.pds or not ctx.applies(self.obligation, r.pd_id):
                continue
            reasons = []
            if params.require_serial and not (r.serial or "").strip():
                reasons.append(Reason("asset1.missing_serial", {"device": r.name}))
            if params.require_model and not (r.model or "").strip():
                reasons.append(Reason("asset1.missing_model", {"device": r.name}))
            if reasons:
                yield Finding(r.pd_id, SubjectKind.REGISTERED, f"registered:{r.name}",
                              tuple(reasons),
                              {"registered_id": r.id, "name": r.name, "vendor": r.vendor,
                               "model": r.model, "serial": r.serial, "category": r.category})

    def _neighbors(self, ctx: Context, params: Asset1Params, registered: _Registered
                   ) -> Iterator[Finding]:
        st = ctx.state
        polled = _cached(ctx, "asset1.polled", st.all_devices_fingerprint(),
                         lambda: _index((n, s, None, m, h)
                                        for n, h, m, s in st.all_devices_brief()))
        seen: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
        facts: dict[tuple[int, str], tuple[str, str, str | None]] = {}
        for n in st.lldp:
            d = st.devices_by_id.get(n.device_id)
            if d is None or not ctx.applies(self.obligation, d.pd_id):
                continue
            name = n.remote_system_name.strip()
            if name and any(fnmatch.fnmatchcase(name, p) for p in params.ignore_neighbors):
                continue
            mgmt = n.remote_mgmt_address
            if polled.has(name, None, n.remote_chassis_id, mgmt):
                continue  # polled by an agent: judged as a device where it is polled
            if registered.has(d.pd_id, name, None, n.remote_chassis_id, mgmt):
                continue
            mac = mac_key(n.remote_chassis_id)
            ident = name or (f"chassis:{mac}" if mac else f"chassis:{n.remote_chassis_id}")
            key = (d.pd_id, ident)
            facts[key] = (name, n.remote_chassis_id, mgmt)
            seen[key].append({"seen_by": d.name, "local_port": n.local_port,
                              "remote_port_id": n.remote_port_id,
                              "observed_at": n.observed_at, "report_id": n.report_id})
        for (pd_id, ident), sightings in seen.items():
            name, chassis, mgmt = facts[(pd_id, ident)]
            yield Finding(
                pd_id, SubjectKind.NEIGHBOR, f"neighbor:{ident}",
                (Reason("asset1.unregistered_neighbor", {
                    "neighbor": name or chassis, "seen_by": sightings[0]["seen_by"],
                    "port": sightings[0]["local_port"]}),),
                {"remote_system_name": name, "remote_chassis_id": chassis,
                 "remote_mgmt_address": mgmt, "lldp": sightings[:20]})
