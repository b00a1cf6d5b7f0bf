"""The report contract: IDs, validation, limits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contract.report import (
    ConfigSnapshot,
    Heartbeat,
    Report,
    new_report_id,
    report_id_time,
    utcnow,
)


def test_report_ids_unique_time_ordered_v7() -> None:
    ids = [new_report_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, key=lambda u: u.int)
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)  # text order == time order
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids[:100])
    assert abs(report_id_time(ids[-1]) - datetime.now(UTC)) < timedelta(seconds=5)


def test_round_trip_and_discriminated_union() -> None:
    r = Report(report_id=new_report_id(), agent_id="a1", pd_code="PD1", sent_at=utcnow(),
               observations=[Heartbeat(observed_at=utcnow(), agent_version="1", uptime_s=1)])
    again = Report.model_validate_json(r.model_dump_json())
    assert again == r
    assert isinstance(again.observations[0], Heartbeat)


def _base() -> dict[str, object]:
    return {"report_id": str(new_report_id()), "agent_id": "a1", "pd_code": "PD1",
            "sent_at": "2026-11-25T00:00:00Z", "observations": []}


@pytest.mark.parametrize("patch,loc", [
    ({"agent_id": "bad id with spaces"}, "agent_id"),
    ({"pd_code": ""}, "pd_code"),
    ({"schema_version": 2}, "schema_version"),
    ({"report_id": "not-a-uuid"}, "report_id"),
    ({"sent_at": "2026-11-25T00:00:00"}, "sent_at"),
    ({"unexpected": 1}, "unexpected"),
    ({"observations": [{"kind": "nope"}]}, "observations"),
    ({"observations": [{"kind": "probe", "observed_at": "2026-11-25T00:00:00Z",
                        "target": "x", "probe": "icmp", "address": "h", "up": True,
                        "loss_pct": 101}]}, "observations"),
])
def test_invalid_reports_name_the_field(patch: dict[str, object], loc: str) -> None:
    data = {**_base(), **patch}
    with pytest.raises(ValidationError) as e:
        Report.model_validate_json(json.dumps(data))
    assert any(str(err["loc"][0]) == loc for err in e.value.errors())


def test_observation_count_is_bounded() -> None:
    hb = {"kind": "heartbeat", "observed_at": "2026-11-25T00:00:00Z", "agent_version": "1",
          "uptime_s": 1}
    data = {**_base(), "observations": [hb] * 5001}
    with pytest.raises(ValidationError):
        Report.model_validate_json(json.dumps(data))


def test_config_snapshot_hash_must_match() -> None:
    with pytest.raises(ValidationError, match="sha256"):
        ConfigSnapshot(observed_at=utcnow(), device="sw1", driver="ios", sha256="0" * 64,
                       content="hostname sw1\n")
