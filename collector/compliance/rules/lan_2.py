"""LAN-2: the PD must submit its LAN diagram to Dinas.

The submitted diagram is the topology baseline an engineer approved
(``POST /api/v1/pds/{code}/topology/baseline``). Violation when the PD has none,
``grace_days`` after the PD was registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Lan2Params(Params):
    grace_days: Annotated[float, Field(ge=0)] = 0.0


class Lan2:
    obligation: ClassVar[Obligation] = Obligation.LAN_2
    default_severity: ClassVar[Severity] = Severity.MINOR
    Params: ClassVar[type[BaseModel]] = Lan2Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Lan2Params)
        st = ctx.state
        for pd_id, pd in st.pds.items():
            if not ctx.applies(self.obligation, pd_id) or pd_id in st.baselines:
                continue
            if ctx.now - pd.created_at < params.grace_days * 86400:
                continue
            n = st.device_counts.get(pd_id, 0)
            yield Finding(pd_id, SubjectKind.PD, f"pd:{pd.code}",
                          (Reason("lan2.no_baseline", {"pd": pd.code, "devices": n}),),
                          {"baseline": None, "devices_discovered": n,
                           "pd_registered_at": pd.created_at})
