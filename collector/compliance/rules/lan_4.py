"""LAN-4: every data cable must be labelled with its node-address code.

The label of a cable is the description (ifAlias) of the port it is plugged into. Violation
for an operationally-up port whose description is empty or does not match the region's
``label_pattern``. Virtual and loopback interfaces (``ignore_types``, ``ignore_interfaces``)
carry no cable and are not judged.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel, field_validator

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Lan4Params(Params):
    label_pattern: str = r"^\S+$"
    ignore_types: tuple[str, ...] = ("softwareLoopback", "tunnel", "l2vlan", "l3ipvlan",
                                     "propVirtual", "bridge", "ieee8023adLag")
    ignore_interfaces: tuple[str, ...] = ("lo", "lo0", "Loopback*", "loopback*", "Null*",
                                          "Vlan*", "vlan*", "Tunnel*", "tun*", "br*",
                                          "docker*", "veth*", "Port-channel*", "Bundle-Ether*")
    roles: tuple[str, ...] | None = None     # device roles to judge; None: every device

    @field_validator("label_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from e
        return v


class Lan4:
    obligation: ClassVar[Obligation] = Obligation.LAN_4
    default_severity: ClassVar[Severity] = Severity.MINOR
    Params: ClassVar[type[BaseModel]] = Lan4Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Lan4Params)
        pattern = re.compile(params.label_pattern)
        ignore_types = {t.lower() for t in params.ignore_types}
        ignored = re.compile("|".join(f"(?:{fnmatch.translate(p)})"
                                      for p in params.ignore_interfaces) or "(?!)")
        by_id = ctx.state.devices_by_id
        for i in ctx.state.up_interfaces(unlabelled=params.label_pattern,
                                          skip_types=params.ignore_types):
            d = by_id.get(i.device_id)
            if d is None or not ctx.applies(self.obligation, d.pd_id):
                continue
            if params.roles is not None and d.role not in params.roles:
                continue
            if (i.type or "").lower() in ignore_types or ignored.match(i.name):
                continue
            label = i.description.strip()
            if label and pattern.search(label):
                continue
            key = "lan4.no_label" if not label else "lan4.bad_label"
            yield Finding(
                d.pd_id, SubjectKind.PORT, f"port:{d.name}/{i.name}",
                (Reason(key, {"device": d.name, "port": i.name, "label": label,
                              "pattern": params.label_pattern}),),
                {"device": d.name, "port": i.name, "description": i.description,
                 "type": i.type, "oper_up": True, "admin_up": i.admin_up,
                 "observed_at": i.updated_at, "report_id": d.last_report_id})
