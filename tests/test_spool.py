"""The agent's durable spool: order, acks, bounds, rejected reports, crash safety."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agent.spool import Spool
from contract.report import new_report_id


def test_fifo_ack_and_survives_reopen(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    ids = [str(new_report_id()) for _ in range(5)]
    for i in ids:
        s.put(i, b"x" * 10)
    assert [it.report_id for it in s.peek(10)] == ids
    s.ack(ids[0])
    s.close()
    s2 = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    assert [it.report_id for it in s2.peek(10)] == ids[1:]
    assert s2.stats().pending == 4


def test_size_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.sqlite", max_bytes=64 * 1024, max_age_s=3600)
    ids = [str(new_report_id()) for _ in range(100)]
    for i in ids:
        s.put(i, b"y" * 1024)
    st = s.stats()
    assert st.pending_bytes <= 64 * 1024
    assert st.dropped_total == 100 - st.pending
    kept = [it.report_id for it in s.peek(1000)]
    assert kept == ids[-st.pending:]  # the newest survive


def test_age_bound(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=0.2)
    s.put(str(new_report_id()), b"old")
    time.sleep(0.3)
    new = str(new_report_id())
    s.put(new, b"new")
    assert [it.report_id for it in s.peek(10)] == [new]
    assert s.stats().dropped_total == 1


def test_reject_moves_aside(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    i = str(new_report_id())
    s.put(i, b"bad")
    s.reject(i, 422, "HTTP 422: observations.0.rtt_ms")
    assert s.stats().pending == 0 and s.stats().rejected_total == 1


def test_commit_is_durable_across_kill_9(tmp_path: Path) -> None:
    """A child process spools and is SIGKILLed right after put(): the report is there."""
    path = tmp_path / "s.sqlite"
    code = (f"import os, signal\nfrom agent.spool import Spool\n"
            f"s = Spool(__import__('pathlib').Path({str(path)!r}), max_bytes=1<<20, "
            f"max_age_s=3600)\ns.put('r1', b'payload')\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent)
    assert proc.returncode == -9
    s = Spool(path, max_bytes=1 << 20, max_age_s=3600)
    assert [(it.report_id, it.body) for it in s.peek(10)] == [("r1", b"payload")]
