"""The agent's durable spool: order, acks, bounds, rejected reports, crash safety."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

from agent.config import CollectorCfg, ShippingCfg
from agent.shipper import Shipper, make_client
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


def test_rejected_table_is_bounded_and_requeued(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600,
              max_rejected_bytes=64 * 1024)
    ids = [str(new_report_id()) for _ in range(100)]
    for i in ids:
        s.put(i, b"z" * 1024)
        s.reject(i, 422, "bad")
    kept = [r["report_id"] for r in s.rejected()]
    assert 0 < len(kept) < 100 and kept == ids[-len(kept):]   # the newest kept
    assert sum(int(r["bytes"]) for r in s.rejected()) <= 64 * 1024   # type: ignore[call-overload]
    assert s.stats().rejected_total == 100
    assert s.requeue([kept[0]]) == 1
    assert [it.report_id for it in s.peek(10)] == [kept[0]]
    assert s.requeue() == len(kept) - 1 and s.rejected() == []
    assert [it.report_id for it in s.peek(1000)] == kept   # in report order
    assert all(it.attempts == 0 for it in s.peek(1000))


class _Collector(http.server.BaseHTTPRequestHandler):
    """Answers 500 for one report (a collector bug it trips on), 503 for another until told
    otherwise (an outage), 202 for the rest."""

    poison = ""
    outage = ""
    token = ""
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = gzip.decompress(self.rfile.read(int(self.headers["Content-Length"])))
        rid = json.loads(body)["id"]
        self.seen.append(rid)
        code = 500 if rid == self.poison else 503 if rid == self.outage else 202
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            code = 401
        out = b'{"detail": "boom"}' if code >= 500 else b'{"status": "accepted"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


def test_a_report_the_collector_keeps_failing_on_is_set_aside(tmp_path: Path) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
        ids = [str(new_report_id()) for _ in range(4)]
        for i in ids:
            spool.put(i, gzip.compress(json.dumps({"id": i}).encode()))
        _Collector.poison, _Collector.outage = ids[1], ""
        coll = CollectorCfg.model_validate({
            "url": f"http://127.0.0.1:{srv.server_address[1]}/", "allow_insecure_http": True,
            "token_env": "X"})
        sh = Shipper(spool, coll, ShippingCfg(max_server_errors=3))
        sh._client = make_client(coll, "t")
        for attempt in (1, 2):
            done, err = sh.drain_once()
            assert (done, spool.stats().pending) == (1 if attempt == 1 else 0, 3), err
            assert err and "HTTP 500" in err
        done, err = sh.drain_once()   # third failure: set aside, the rest flows
        assert err is None and spool.stats().pending == 0
        (aside,) = spool.rejected()
        assert aside["report_id"] == ids[1] and aside["status"] == 500
        assert "set aside after 3 server errors" in str(aside["reason"])
        # an outage (503) is never counted against a report
        spool.requeue()
        _Collector.poison, _Collector.outage = "", ids[1]
        for _ in range(5):
            assert sh.drain_once()[1] is not None
        assert spool.rejected() == [] and spool.peek(1)[0].attempts == 0
        _Collector.outage = ""
        assert sh.drain_once() == (1, None)
        sh.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_rotated_token_file_is_read_again_after_a_401(tmp_path: Path) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
        rid = str(new_report_id())
        spool.put(rid, gzip.compress(json.dumps({"id": rid}).encode()))
        token = tmp_path / "token"
        token.write_text("old-token\n")
        _Collector.poison = _Collector.outage = ""
        _Collector.token = "new-token"
        coll = CollectorCfg.model_validate({
            "url": f"http://127.0.0.1:{srv.server_address[1]}/", "allow_insecure_http": True,
            "token_file": str(token)})
        sh = Shipper(spool, coll, ShippingCfg())
        done, err = sh.drain_once()
        assert done == 0 and err and "HTTP 401" in err
        token.write_text("new-token\n")    # spbe-collector agent rotate, written by the admin
        assert sh.drain_once() == (1, None)
        sh.close()
    finally:
        _Collector.token = ""
        srv.shutdown()
        srv.server_close()
