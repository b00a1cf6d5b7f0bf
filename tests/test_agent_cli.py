"""``spbe-agent check`` / ``once --dry-run`` as a user runs them, and a real skewed clock."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from contract.report import Report
from tests.conftest import MakeAgent, MakeCollector
from tests.procs import wait_for

pytestmark = pytest.mark.integration


def test_check_reports_each_problem_and_exits_nonzero(make_collector: MakeCollector,
                                                      make_agent: MakeAgent) -> None:
    col = make_collector()
    col.add_pd("DINKES")
    col.add_pd("DISDIK")
    token = col.add_agent("dinkes-gw", "DINKES")
    col.start()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    good = make_agent(col, "dinkes-gw", "DINKES", token, probes=[
        {"name": "open", "type": "tcp", "host": "127.0.0.1", "port": srv.getsockname()[1]}])
    out = good.run_cli("check")
    assert out.returncode == 0, out.stdout
    assert "OK   probe open" in out.stdout and "accepts this agent" in out.stdout
    # the token's PD differs from the config, and a target is closed
    bad = make_agent(col, "dinkes-gw", "DISDIK", token, probes=[
        {"name": "closed", "type": "tcp", "host": "127.0.0.1", "port": 1, "timeout_s": 1}])
    out = bad.run_cli("check")
    assert out.returncode == 1
    fails = [ln for ln in out.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 2, out.stdout
    assert "probe closed" in fails[0] and "bound to PD 'DINKES'" in fails[1]
    assert token not in out.stdout + out.stderr  # the secret is never printed
    srv.close()


def test_check_with_broken_config(tmp_path: object, make_collector: MakeCollector,
                                  make_agent: MakeAgent) -> None:
    col = make_collector()
    agent = make_agent(col, "x", "Y", "t", probes=[{"name": "p", "type": "tcp",
                                                      "host": "h", "port": 0}])
    out = agent.run_cli("check")
    assert out.returncode == 2
    assert f"{agent.config}: probes[0].port: Input should be greater than or equal to 1" \
        in out.stdout


def test_once_dry_run_prints_a_valid_report_and_sends_nothing(make_collector: MakeCollector,
                                                             make_agent: MakeAgent) -> None:
    col = make_collector()  # never started: nothing may be sent anyway
    agent = make_agent(col, "dinkes-gw", "DINKES", "unused", probes=[
        {"name": "lo", "type": "icmp", "host": "127.0.0.1", "count": 1}])
    out = agent.run_cli("once", "--dry-run")
    assert out.returncode == 0, out.stderr
    report = Report.model_validate_json(out.stdout)
    kinds = sorted(o.kind for o in report.observations)
    assert {"heartbeat", "host_facts", "probe"} <= set(kinds)
    assert not agent.spool.exists()
    json.loads(out.stdout)


def test_agent_with_a_wrong_clock_is_flagged(make_collector: MakeCollector,
                                             make_agent: MakeAgent) -> None:
    """A real agent process whose clock runs 10 minutes ahead (libfaketime)."""
    import subprocess
    import sys

    from tests.procs import REPO, _env

    assert shutil.which("faketime"), "faketime missing: run scripts/install-test-deps.sh"
    col = make_collector(extra={"clock_skew_max_s": 60})
    col.add_pd("DINKES")
    token = col.add_agent("dinkes-gw", "DINKES")
    key = col.add_key("eng", "engineer")
    col.start()
    agent = make_agent(col, "dinkes-gw", "DINKES", token)
    out = subprocess.run(["faketime", "-f", "+10m", sys.executable, "-m", "agent.cli", "-c",
                          str(agent.config), "once"], env=_env(), cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    me = wait_for(lambda: col.get("/api/v1/agents", key)["items"], 10, "agent listed")[0]
    assert me["clock_skew_ok"] is False and 590 < me["clock_skew_s"] < 610
    assert agent.run_cli("once").returncode == 0  # clock fixed
    me = col.get("/api/v1/agents", key)["items"][0]
    assert me["clock_skew_ok"] is True and abs(me["clock_skew_s"]) < 5


def test_check_spool_location(tmp_path: Path) -> None:
    from agent.cli import check_spool

    assert check_spool(tmp_path / "new" / "dir" / "spool.sqlite") is None   # made on start
    assert check_spool(tmp_path) == f"spool {tmp_path}: exists and is not a file"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert check_spool(blocker / "spool.sqlite") == (
        f"spool {blocker / 'spool.sqlite'}: {blocker} is not a directory")
