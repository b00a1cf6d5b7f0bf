"""Availability of probe targets from their recorded state transitions.

A target's state is known from its first observation until its last evidence
(``probe_targets.last_checked``) plus a grace period; before and after that it is unknown
and counts neither as up nor as down. Only transitions are stored (not every probe), so a
silence that ends with the agent reporting again (same state as before) cannot be told apart
from continuous evidence: only the silence since the last report is seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func, select, union_all

from collector.db import state_transitions


class RowSource(Protocol):
    def rows(self, stmt: Any) -> Sequence[Any]: ...


class Transition(NamedTuple):
    at: float
    state: str
    report_id: str


# (at, state) pairs, or Transitions
Timeline = Sequence[tuple[float, str]] | Sequence[Transition]


@dataclass(frozen=True)
class Availability:
    up_s: float
    down_s: float
    unknown_s: float
    outages: int  # transitions to "down" inside the period

    @property
    def known_s(self) -> float:
        return self.up_s + self.down_s

    @property
    def availability_pct(self) -> float | None:
        """Up time over known time (None when nothing is known in the period)."""
        return 100 * self.up_s / self.known_s if self.known_s > 0 else None

    def coverage_pct(self, start: float, end: float) -> float:
        """Known time over the whole period."""
        return 100 * self.known_s / (end - start) if end > start else 0.0


def availability(transitions: Timeline, start: float, end: float,
                 known_until: float | None = None) -> Availability:
    """Up, down and unknown seconds in [start, end) from time-ordered (at, state) transitions.

    The first transitions may lie before ``start`` (the last of them is the state in force at
    ``start``). A state holds from its transition until the next one, but never past
    ``known_until`` (the target's last evidence plus grace): from there on it is unknown.
    """
    horizon = end if known_until is None else max(start, min(end, known_until))
    up = down = 0.0
    outages = 0
    pairs = [(float(t[0]), str(t[1])) for t in transitions]
    for i, (at, state) in enumerate(pairs):
        if state == "down" and start <= at < end:
            outages += 1
        nxt = pairs[i + 1][0] if i + 1 < len(pairs) else end
        span = min(nxt, horizon) - max(at, start)
        if span > 0:
            if state == "up":
                up += span
            else:
                down += span
    return Availability(up, down, max(0.0, (end - start) - up - down), outages)


def _chunks(seq: Sequence[int], n: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def load_history(run: Callable[[Any], Iterable[Any]], target_ids: Sequence[int], start: float,
                 end: float | None = None, batch: int = 400) -> dict[int, list[Transition]]:
    """Per target, time-ordered: the last transition before ``start`` (the state in force at
    ``start``) and every transition in [start, end) (``end`` None: up to now). One query per
    batch of targets; nothing older than the period leaves the database. ``run`` executes a
    statement (``Connection.execute`` or ``Store.rows``); the uptime API and the compliance
    rules (DC-2, WEB-1) share this."""
    st = state_transitions.c
    out: dict[int, list[Transition]] = {i: [] for i in target_ids}
    for chunk in _chunks(sorted(set(target_ids)), batch):
        ranked = (select(st.target_id, st.at, st.state, st.report_id, st.id,
                         func.row_number().over(partition_by=st.target_id,
                                                order_by=(st.at.desc(), st.id.desc()))
                         .label("rn"))
                  .where(st.target_id.in_(chunk), st.at < start).subquery())
        before = select(ranked.c.target_id, ranked.c.at, ranked.c.state, ranked.c.report_id,
                        ranked.c.id).where(ranked.c.rn == 1)
        inside = select(st.target_id, st.at, st.state, st.report_id, st.id).where(
            st.target_id.in_(chunk), st.at >= start, *(() if end is None else (st.at < end,)))
        both = union_all(before, inside).subquery()
        for r in run(select(both.c.target_id, both.c.at, both.c.state, both.c.report_id)
                     .order_by(both.c.target_id, both.c.at, both.c.id)):
            out[r.target_id].append(Transition(r.at, r.state, r.report_id))
    return out


def load_transitions(store: RowSource, target_ids: Sequence[int], start: float,
                     end: float, batch: int = 400) -> dict[int, list[tuple[float, str]]]:
    """:func:`load_history` as (at, state) pairs, for the uptime API."""
    return {tid: [(t.at, t.state) for t in hist]
            for tid, hist in load_history(store.rows, target_ids, start, end, batch).items()}
