"""INTRA-1: every PD must be connected to and use the Jaringan Intra.

Only PD-side agents show the connection: an agent in server mode whose host lies in a Pusat
Data or DRC subnet (a PD's server colocated in the Pusat Data) is not judged here.

Violation when a PD has no agent (its connection cannot be shown), or only colocated server
agents (none in its own network: same subject, ``intra1.no_pd_agent``); when a PD-side agent
has been silent for more than ``silent_intervals`` report intervals, or probes no Pusat Data
target (``require_pusat_data_probe``), or every Pusat Data target it probes has been down for
more than ``unreachable_after_minutes`` (the Pusat Data is unreachable from the PD). Pusat
Data targets: probes whose address lies in a Pusat Data subnet or whose name matches
``site.pusat_data_targets``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules._common import colocated_server_agents
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind
from collector.compliance.state import Agent


class Intra1Params(Params):
    unreachable_after_minutes: Annotated[float, Field(gt=0)] = 15.0
    report_interval_s: Annotated[float, Field(gt=0)] = 60.0
    silent_intervals: Annotated[float, Field(gt=0)] = 3.0
    # no Pusat Data probe on a live agent: the connection cannot be shown
    require_pusat_data_probe: bool = True


class Intra1:
    obligation: ClassVar[Obligation] = Obligation.INTRA_1
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Intra1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Intra1Params)
        st, now, site = ctx.state, ctx.now, ctx.site
        colocated = colocated_server_agents(st, site)
        by_pd: dict[int, list[Agent]] = defaultdict(list)
        colocated_by_pd: dict[int, list[Agent]] = defaultdict(list)
        for a in st.agents:
            (colocated_by_pd if a.pk in colocated else by_pd)[a.pd_id].append(a)
        targets = defaultdict(list)
        for t in st.targets:
            if site.is_pusat_data_target(t.name, t.address):
                targets[t.agent_pk].append(t)
        silent_after = params.report_interval_s * params.silent_intervals
        unreachable_after = params.unreachable_after_minutes * 60
        for pd_id, pd in st.pds.items():
            if not ctx.applies(self.obligation, pd_id):
                continue
            if not by_pd.get(pd_id):
                elsewhere = [a.agent_id for a in colocated_by_pd.get(pd_id, [])]
                reason = Reason("intra1.no_pd_agent", {"pd": pd.code,
                                                       "agents": ", ".join(elsewhere)}) \
                    if elsewhere else Reason("intra1.no_agent", {"pd": pd.code})
                yield Finding(pd_id, SubjectKind.PD, f"pd:{pd.code}", (reason,),
                              {"agents": len(elsewhere), "pd_side_agents": 0,
                               "colocated_agents": elsewhere})
                continue
            for a in by_pd[pd_id]:
                since = a.last_seen_at if a.last_seen_at is not None else a.created_at
                ev = {"agent": a.agent_id, "last_seen_at": a.last_seen_at,
                      "last_report_id": a.last_report_id, "silent_after_s": silent_after}
                if now - since > silent_after:
                    yield Finding(pd_id, SubjectKind.AGENT, f"agent:{a.agent_id}",
                                  (Reason("intra1.silent", {"agent": a.agent_id,
                                                            "since": since}),), ev)
                    continue
                mine = targets.get(a.pk, [])
                if not mine:
                    if params.require_pusat_data_probe:
                        yield Finding(pd_id, SubjectKind.AGENT, f"agent:{a.agent_id}",
                                      (Reason("intra1.no_probe", {"agent": a.agent_id}),),
                                      {"agent": a.agent_id, "pusat_data_targets": []})
                    continue
                if all(t.state == "down" and now - t.state_since > unreachable_after
                       for t in mine):
                    since = max(t.state_since for t in mine)
                    yield Finding(
                        pd_id, SubjectKind.AGENT, f"agent:{a.agent_id}",
                        (Reason("intra1.unreachable", {"agent": a.agent_id, "since": since,
                                                       "targets": ", ".join(
                                                           t.name for t in mine)}),),
                        {"agent": a.agent_id, "unreachable_after_s": unreachable_after,
                         "targets": [{"name": t.name, "address": t.address, "kind": t.kind,
                                      "state": t.state, "down_since": t.state_since,
                                      "last_checked": t.last_checked,
                                      "last_error": t.last_error} for t in mine]})
