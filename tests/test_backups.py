"""Backup monitoring (BAK-1, BAK-2) against REAL restic and borg repositories.

Repositories are created in temp dirs with the real Debian ``restic``/``borgbackup`` tools
(installed by ``scripts/install-backup-deps.sh``, which the ``tools`` fixture runs when a
binary is missing), real files are backed up, then the agent's ``backups`` collector looks at
them. Broken cases are real too: wrong passwords, deleted/garbled pack and segment files, and
a fake ``restic`` program first on PATH that prints garbage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent import collectors
from agent.backup_checks.resolve import host_from_location, resolve
from agent.collectors.backups import BackupsCollector
from agent.config import AgentConfig
from contract.configfile import ConfigError, load_config
from contract.report import (
    BackupRunStatus,
    BackupStatus,
    IntegrityStatus,
    Report,
    new_report_id,
    utcnow,
)

ROOT = Path(__file__).resolve().parents[1]
RESTIC_PW = "Rst-9f2Kq7-monitoring-pw"
BORG_PW = "Brg-4xZ81p-monitoring-pw"
WRONG_PW = "Wr0ng-Zq81-not-the-pw"
SIZES = {"a.bin": 200_000, "b.txt": 1_234, "sub/c.dat": 50_000}


# --- fixtures and helpers ------------------------------------------------------------------

@pytest.fixture(scope="session")
def tools() -> None:
    if not (shutil.which("restic") and shutil.which("borg")):
        r = subprocess.run([str(ROOT / "scripts/install-backup-deps.sh")], capture_output=True,
                           text=True, timeout=900)
        if r.returncode != 0:
            pytest.fail(f"install-backup-deps.sh failed:\n{r.stdout}\n{r.stderr}")
    assert shutil.which("restic") and shutil.which("borg")


def tool_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "BORG_"))}
    env.update(HOME=str(tmp / "home"), BORG_BASE_DIR=str(tmp / "borg-base"), LC_ALL="C.UTF-8")
    return env


def run(argv: list[str], env: dict[str, str], extra: dict[str, str] | None = None) -> str:
    r = subprocess.run(argv, env={**env, **(extra or {})}, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{argv}: {r.stderr}"
    return r.stdout


def make_data(root: Path) -> Path:
    data = root / "data"
    for name, size in SIZES.items():
        p = data / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    return data


@dataclass
class Restic:
    repo: Path
    pwfile: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> str:
        return run(["restic", "-r", str(self.repo), "--password-file", str(self.pwfile),
                    "--no-cache", "-q", *args], self.env)


@dataclass
class Borg:
    repo: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> str:
        return run(["borg", *args], self.env, {"BORG_PASSPHRASE": BORG_PW})


def new_restic(tmp: Path, name: str) -> Restic:
    pw = tmp / "restic.pw"
    pw.write_text(RESTIC_PW + "\n")
    r = Restic(tmp / name, pw, tool_env(tmp))
    r("init")
    return r


def new_borg(tmp: Path, name: str) -> Borg:
    b = Borg(tmp / name, tool_env(tmp))
    b("init", "-e", "repokey-blake2", str(b.repo))
    return b


def local_time(dt: datetime) -> str:
    """``--time`` for restic: local wall-clock time."""
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def agent_cfg(tmp: Path, backups: list[dict[str, Any]]) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent_id": "dinkes-gw", "pd_code": "DINKES",
        "collector": {"url": "https://127.0.0.1:9/", "token_env": "SPBE_TEST_UNUSED"},
        "spool": {"path": str(tmp / "state" / "spool.sqlite")},
        "backups": backups})


def collect(cfg: AgentConfig, *, integrity: bool = False) -> dict[str, BackupStatus]:
    collectors.load_builtin()
    c = collectors.get("backups")(cfg, _Ctx())
    assert isinstance(c, BackupsCollector)
    obs = asyncio.run(c.collect())
    if integrity:
        assert c.join_integrity(240), "integrity checks did not finish"
        obs = asyncio.run(c.collect())
    out = {}
    for o in obs:
        assert isinstance(o, BackupStatus)
        out[o.job] = o
    assert len(out) == len(cfg.backups)
    return out


class _Ctx:
    def uptime_s(self) -> float:
        return 1.0

    def spool_counts(self) -> tuple[int, int, int]:
        return 0, 0, 0


def age_s(dt: datetime | None) -> float:
    assert dt is not None
    return (utcnow() - dt).total_seconds()


def dumped(o: BackupStatus) -> str:
    return o.model_dump_json()


@pytest.fixture
def restic_pw_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SPBE_TEST_WRONG_PW", WRONG_PW)
    monkeypatch.setenv("SPBE_TEST_BORG_PW", BORG_PW)
    return "SPBE_TEST_WRONG_PW"


@pytest.fixture
def jakarta_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the agent (and restic/borg) in WIB, UTC+7, as on a real PD gateway: naive
    local timestamps from borg must be read as local time."""
    monkeypatch.setenv("TZ", "Asia/Jakarta")
    time.tzset()
    assert datetime.now().astimezone().utcoffset() == timedelta(hours=7)
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def restic_fresh(tmp_path_factory: pytest.TempPathFactory, tools: None) -> Restic:
    """A restic repository with two snapshots of the same real files, the newest now."""
    tmp = tmp_path_factory.mktemp("restic")
    r = new_restic(tmp, "repo")
    data = make_data(tmp)
    r("backup", "--time", local_time(utcnow() - timedelta(days=3)), str(data))
    r("backup", str(data))
    return r


@pytest.fixture(scope="module")
def borg_fresh(tmp_path_factory: pytest.TempPathFactory, tools: None) -> Borg:
    tmp = tmp_path_factory.mktemp("borg")
    b = new_borg(tmp, "repo")
    data = make_data(tmp)
    old = (utcnow() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    b("create", "--timestamp", old, f"{b.repo}::first", str(data))
    b("create", f"{b.repo}::second", str(data))
    return b


# --- contract and config -------------------------------------------------------------------

def test_backup_status_travels_in_a_report() -> None:
    obs = BackupStatus.model_validate({
        "observed_at": utcnow(), "job": "simpeg-db", "type": "restic", "status": "success",
        "last_success_at": utcnow(), "size_bytes": 10, "destination": "10.10.5.20",
        "destination_ips": ["10.10.5.20"],
        "replica": {"destination": "drc", "last_success_at": utcnow()}})
    report = Report(report_id=new_report_id(), agent_id="a", pd_code="DINKES",
                    sent_at=utcnow(), observations=[obs])
    back = Report.model_validate_json(report.model_dump_json())
    assert back.observations[0] == obs
    base = {"observed_at": utcnow(), "job": "x", "type": "files", "status": "success"}
    with pytest.raises(ValueError, match="must carry a timezone"):
        BackupStatus.model_validate({**base, "last_success_at": datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match=r"replica\.last_success_at"):
        BackupStatus.model_validate({**base, "replica": {"last_success_at": "2026-01-01T00:00"}})
    with pytest.raises(ValueError, match="type"):
        BackupStatus.model_validate({**base, "type": "tape"})


EXAMPLE_YAML = """
agent_id: dinkes-gw
pd_code: DINKES
collector: {url: "https://collector.example/", token_env: SPBE_AGENT_TOKEN}
intervals: {backups_s: 900}
backups:
  - name: simpeg-db
    type: restic
    repository: sftp:backup@10.10.5.20:/srv/restic/dinkes
    password: {file: /etc/spbe-agent/restic.pw}
    expected_interval_s: 86400
    integrity_check: true
    check_interval_s: 604800
    check_args: ["--read-data-subset=5%"]
    replica:
      repository: rest:https://drc.kotabogor.go.id:8000/dinkes/
      password: {env: RESTIC_DRC_PASSWORD}
  - name: arsip
    type: borg
    repository: ssh://borg@backup.pusatdata.local:22/./arsip
    passphrase: {env: BORG_ARSIP_PASSPHRASE}
    env: {BORG_RSH: "ssh -i /etc/spbe-agent/borg_key -o BatchMode=yes"}
  - name: db-dump
    type: files
    path: /srv/backup/db/*.sql.gz
    destination: nas.pusatdata.local
    checksum: sidecar
    replica: {path: /mnt/drc/db/*.sql.gz, destination: drc-nas.local}
  - name: sikd
    type: reported
    destination: backup.pusatdata.local
    replica: {destination: drc.kotabogor.go.id}
"""


def test_example_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text(EXAMPLE_YAML)
    cfg = load_config(AgentConfig, p, "SPBE_TEST_NOPE_")
    assert [b.type for b in cfg.backups] == ["restic", "borg", "files", "reported"]
    assert cfg.intervals.backups_s == 900


@pytest.mark.parametrize(("job", "expect"), [
    ({"name": "x", "type": "restic", "repository": "rest:https://u:secret@h/",
      "password": {"env": "X"}}, "backups[0]: Value error, repository must not contain a password"),
    ({"name": "x", "type": "files", "path": "backup/*.gz"}, "must be an absolute glob"),
    ({"name": "x", "type": "files", "path": "/b/*.gz", "replica": {"repository": "/r"}},
     "replica needs path"),
    ({"name": "x", "type": "restic", "repository": "/r"}, "backups[0].password: Field required"),
    ({"name": "x", "type": "tape"}, "does not match any of the expected tags: 'files'"),
    ({"name": "x", "type": "borg", "repository": "/r", "check_args": ["--repair"]},
     "--repair is refused"),
])
def test_bad_backup_config_is_named(tmp_path: Path, job: dict[str, Any], expect: str) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text(yaml.safe_dump({
        "agent_id": "a", "pd_code": "P",
        "collector": {"url": "https://c.example/", "token_env": "T"}, "backups": [job]}))
    with pytest.raises(ConfigError) as e:
        load_config(AgentConfig, p, "SPBE_TEST_NOPE_")
    assert expect in str(e.value)
    assert "secret@" not in str(e.value)


def test_duplicate_job_names_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backup job name 'x' is used twice"):
        agent_cfg(tmp_path, [{"name": "x", "type": "reported"}, {"name": "x", "type": "reported"}])


@pytest.mark.parametrize(("location", "host"), [
    ("sftp:backup@10.10.5.20:/srv/restic", "10.10.5.20"),
    ("sftp://backup@nas.local:2222//srv/restic", "nas.local"),
    ("rest:https://backup.pusatdata.local:8000/dinkes/", "backup.pusatdata.local"),
    ("s3:https://minio.pusatdata.local:9000/bucket", "minio.pusatdata.local"),
    ("s3:s3.amazonaws.com/bucket", "s3.amazonaws.com"),
    ("ssh://borg@[fd00::5]:2222/./arsip", "fd00::5"),
    ("borg@backup.local:arsip", "backup.local"),
    ("b2:bucket:path", None),
    ("/srv/backup/repo", None),
    ("local:/srv/repo", None),
])
def test_destination_host_from_location(location: str, host: str | None) -> None:
    assert host_from_location(location) == host


def test_resolve_is_bounded() -> None:
    assert resolve("10.10.5.20") == (["10.10.5.20"], None)
    ips, err = resolve("localhost")
    assert "127.0.0.1" in ips and err is None
    ips, err = resolve("no-such-host.invalid")
    assert ips == [] and err is not None and "cannot resolve no-such-host.invalid" in err
    t0 = time.monotonic()
    ips, err = resolve("localhost", timeout=0)  # the lookup cannot have answered yet
    assert time.monotonic() - t0 < 1
    assert ips == [] and err == "cannot resolve localhost: no answer within 0 s"


# --- restic --------------------------------------------------------------------------------

@pytest.mark.integration
def test_restic_fresh_backup(tmp_path: Path, restic_fresh: Restic) -> None:
    cfg = agent_cfg(tmp_path, [{"name": "simpeg-db", "type": "restic",
                                "repository": str(restic_fresh.repo),
                                "password": {"file": str(restic_fresh.pwfile)},
                                "destination": "localhost", "expected_interval_s": 3600}])
    o = collect(cfg)["simpeg-db"]
    assert o.status == BackupRunStatus.SUCCESS, o.last_failure_reason
    assert age_s(o.last_success_at) < 600
    assert o.size_bytes == sum(SIZES.values())
    assert o.item_count == 2
    assert o.destination == "localhost" and "127.0.0.1" in o.destination_ips
    assert o.expected_interval_s == 3600
    assert o.replica is None and o.integrity == IntegrityStatus.NOT_RUN


@pytest.mark.integration
def test_restic_stale_and_replica_older(tmp_path: Path, tools: None, jakarta_tz: None) -> None:
    primary = new_restic(tmp_path, "primary")
    data = make_data(tmp_path)
    stale_at = utcnow() - timedelta(days=40)
    primary("backup", "--time", local_time(stale_at), str(data))
    replica = new_restic(tmp_path, "drc")
    replica_at = utcnow() - timedelta(days=55)
    replica("backup", "--time", local_time(replica_at), str(data))
    cfg = agent_cfg(tmp_path, [{"name": "stale", "type": "restic",
                                "repository": str(primary.repo),
                                "password": {"file": str(primary.pwfile)},
                                "replica": {"repository": str(replica.repo),
                                            "destination": "127.0.0.2"}}])
    o = collect(cfg)["stale"]
    assert o.status == BackupRunStatus.SUCCESS
    assert o.last_success_at is not None
    assert abs((o.last_success_at - stale_at).total_seconds()) < 2
    assert o.replica is not None and o.replica.error is None
    assert o.replica.last_success_at is not None
    assert abs((o.replica.last_success_at - replica_at).total_seconds()) < 2
    assert o.replica.last_success_at < o.last_success_at
    assert o.replica.destination == "127.0.0.2" and o.replica.destination_ips == ["127.0.0.2"]
    assert o.replica.item_count == 1 and o.replica.size_bytes == sum(SIZES.values())


@pytest.mark.integration
def test_restic_wrong_password(tmp_path: Path, restic_fresh: Restic, restic_pw_env: str,
                               caplog: pytest.LogCaptureFixture) -> None:
    wrong_file = tmp_path / "wrong.pw"
    wrong_file.write_text(WRONG_PW + "\n")
    cfg = agent_cfg(tmp_path, [
        {"name": "by-env", "type": "restic", "repository": str(restic_fresh.repo),
         "password": {"env": restic_pw_env}},
        {"name": "by-file", "type": "restic", "repository": str(restic_fresh.repo),
         "password": {"file": str(wrong_file)}},
        {"name": "good", "type": "restic", "repository": str(restic_fresh.repo),
         "password": {"file": str(restic_fresh.pwfile)}}])
    obs = collect(cfg)
    for name in ("by-env", "by-file"):
        o = obs[name]
        assert o.status == BackupRunStatus.FAILED
        assert o.error_type == "auth"
        assert o.last_failure_reason is not None
        assert "wrong password" in o.last_failure_reason
        assert o.last_success_at is None and o.last_failure_at is not None
        assert WRONG_PW not in dumped(o)
    assert obs["good"].status == BackupRunStatus.SUCCESS  # one failing job stops nothing
    assert WRONG_PW not in caplog.text and RESTIC_PW not in caplog.text


@pytest.mark.integration
def test_restic_last_success_survives_a_failing_check(tmp_path: Path, restic_fresh: Restic,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pw = tmp_path / "pw"
    pw.write_text(RESTIC_PW)
    cfg = agent_cfg(tmp_path, [{"name": "j", "type": "restic",
                                "repository": str(restic_fresh.repo),
                                "password": {"file": str(pw)}}])
    first = collect(cfg)["j"]
    assert first.status == BackupRunStatus.SUCCESS
    pw.write_text(WRONG_PW)  # e.g. the password was rotated on the server only
    second = collect(cfg)["j"]
    assert second.status == BackupRunStatus.FAILED and second.error_type == "auth"
    assert second.last_success_at == first.last_success_at


@pytest.mark.integration
def test_restic_corrupted_repository_fails_integrity(tmp_path: Path, restic_fresh: Restic) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(restic_fresh.repo, broken)
    packs = sorted(p for p in (broken / "data").rglob("*") if p.is_file())
    assert packs
    biggest = max(packs, key=lambda p: p.stat().st_size)
    biggest.unlink()
    cfg = agent_cfg(tmp_path, [
        {"name": "broken", "type": "restic", "repository": str(broken),
         "password": {"file": str(restic_fresh.pwfile)}, "integrity_check": True},
        {"name": "intact", "type": "restic", "repository": str(restic_fresh.repo),
         "password": {"file": str(restic_fresh.pwfile)}, "integrity_check": True}])
    obs = collect(cfg, integrity=True)
    b = obs["broken"]
    assert b.integrity == IntegrityStatus.FAILED, b.integrity_message
    assert b.integrity_message is not None and biggest.name in b.integrity_message
    assert b.integrity_checked_at is not None and age_s(b.integrity_checked_at) < 600
    assert obs["intact"].integrity == IntegrityStatus.OK, obs["intact"].integrity_message
    assert RESTIC_PW not in dumped(b)


@pytest.mark.integration
def test_restic_garbage_json_from_a_fake_binary(tmp_path: Path, restic_fresh: Restic,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "restic"
    fake.write_text("#!/bin/sh\necho 'Snapshots: {{{ definitely not JSON'\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    odd = {"not-a-list": '{"snapshots": []}', "bad-time": '[{"id": "ab12", "time": "kemarin"}]'}
    for name, text in odd.items():
        script = bindir / f"restic-{name}"
        script.write_text(f"#!/bin/sh\necho '{text}'\n")
        script.chmod(0o755)
    common = {"type": "restic", "repository": str(restic_fresh.repo),
              "password": {"file": str(restic_fresh.pwfile)}}
    cfg = agent_cfg(tmp_path, [{"name": "garbled", **common},
                               *({"name": n, "binary": f"restic-{n}", **common} for n in odd)])
    obs = collect(cfg)
    o = obs["garbled"]
    assert o.status == BackupRunStatus.FAILED
    assert o.error_type == "bad_output"
    assert o.last_failure_reason is not None
    assert "restic snapshots --json: output is not JSON" in o.last_failure_reason
    assert "definitely not JSON" in o.last_failure_reason
    assert obs["not-a-list"].error_type == "bad_output"
    assert "expected a JSON list of snapshots, got dict" in (
        obs["not-a-list"].last_failure_reason or "")
    assert obs["bad-time"].error_type == "bad_output"
    assert "snapshot #0: time 'kemarin' is not an ISO 8601 timestamp" in (
        obs["bad-time"].last_failure_reason or "")


@pytest.mark.integration
def test_missing_binary_and_hanging_binary(tmp_path: Path, restic_fresh: Restic) -> None:
    pidfile = tmp_path / "hang.pid"
    hang = tmp_path / "hanging-restic"
    hang.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    hang.chmod(0o755)
    common = {"type": "restic", "repository": str(restic_fresh.repo),
              "password": {"file": str(restic_fresh.pwfile)}}
    cfg = agent_cfg(tmp_path, [
        {"name": "missing", "binary": "restic-not-installed-here", **common},
        {"name": "hangs", "binary": str(hang), "timeout_s": 1.5, **common}])
    t0 = time.monotonic()
    obs = collect(cfg)
    assert time.monotonic() - t0 < 30
    m = obs["missing"]
    assert m.status == BackupRunStatus.FAILED and m.error_type == "tool_missing"
    assert "restic-not-installed-here not found on PATH" in (m.last_failure_reason or "")
    h = obs["hangs"]
    assert h.status == BackupRunStatus.FAILED and h.error_type == "timeout"
    assert "did not finish within 1.5 s" in (h.last_failure_reason or "")
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- borg ----------------------------------------------------------------------------------

@pytest.mark.integration
def test_borg_fresh_backup_passphrase_by_file_and_env(tmp_path: Path, borg_fresh: Borg,
                                                      restic_pw_env: str) -> None:
    pw = tmp_path / "borg.pw"
    pw.write_text(BORG_PW + "\n")
    cfg = agent_cfg(tmp_path, [
        {"name": "by-file", "type": "borg", "repository": str(borg_fresh.repo),
         "passphrase": {"file": str(pw)}, "destination": "127.0.0.1"},
        {"name": "by-env", "type": "borg", "repository": str(borg_fresh.repo),
         "passphrase": {"env": "SPBE_TEST_BORG_PW"}}])
    obs = collect(cfg)
    for o in obs.values():
        assert o.status == BackupRunStatus.SUCCESS, o.last_failure_reason
        assert age_s(o.last_success_at) < 600
        assert o.size_bytes == sum(SIZES.values())
        assert o.item_count == 2
        assert o.duration_s is not None and o.duration_s >= 0
    assert obs["by-file"].destination_ips == ["127.0.0.1"]


@pytest.mark.integration
def test_borg_stale_and_replica_older(tmp_path: Path, tools: None, restic_pw_env: str,
                                      jakarta_tz: None) -> None:
    primary = new_borg(tmp_path, "primary")
    replica = new_borg(tmp_path, "drc")
    data = make_data(tmp_path)
    stale_at = (utcnow() - timedelta(days=40)).replace(microsecond=0)
    replica_at = (utcnow() - timedelta(days=50)).replace(microsecond=0)
    primary("create", "--timestamp", stale_at.strftime("%Y-%m-%dT%H:%M:%S"),
            f"{primary.repo}::a", str(data))
    replica("create", "--timestamp", replica_at.strftime("%Y-%m-%dT%H:%M:%S"),
            f"{replica.repo}::a", str(data))
    cfg = agent_cfg(tmp_path, [{"name": "arsip", "type": "borg",
                                "repository": str(primary.repo),
                                "passphrase": {"env": "SPBE_TEST_BORG_PW"},
                                "replica": {"repository": str(replica.repo),
                                            "destination": "127.0.0.3"}}])
    o = collect(cfg)["arsip"]
    assert o.status == BackupRunStatus.SUCCESS, o.last_failure_reason
    assert o.last_success_at == stale_at  # borg --timestamp is UTC, list prints local time
    assert o.replica is not None and o.replica.last_success_at == replica_at
    assert o.replica.destination_ips == ["127.0.0.3"] and o.replica.item_count == 1


@pytest.mark.integration
def test_borg_wrong_passphrase(tmp_path: Path, borg_fresh: Borg, restic_pw_env: str) -> None:
    cfg = agent_cfg(tmp_path, [{"name": "arsip", "type": "borg",
                                "repository": str(borg_fresh.repo),
                                "passphrase": {"env": restic_pw_env}},
                               {"name": "nopass", "type": "borg",
                                "repository": str(borg_fresh.repo)}])
    obs = collect(cfg)
    o = obs["arsip"]
    assert o.status == BackupRunStatus.FAILED and o.error_type == "auth"
    assert "passphrase" in (o.last_failure_reason or "")
    assert WRONG_PW not in dumped(o)
    n = obs["nopass"]
    assert n.status == BackupRunStatus.FAILED and n.error_type == "auth"
    assert "can not acquire a passphrase" in (n.last_failure_reason or "")


@pytest.mark.integration
def test_borg_corrupted_segment_fails_integrity(tmp_path: Path, borg_fresh: Borg,
                                                restic_pw_env: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(borg_fresh.repo, broken)
    segments = [p for p in (broken / "data").rglob("*") if p.is_file()]
    biggest = max(segments, key=lambda p: p.stat().st_size)
    raw = bytearray(biggest.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 256):
        raw[i] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    cfg = agent_cfg(tmp_path, [
        {"name": "broken", "type": "borg", "repository": str(broken),
         "passphrase": {"env": "SPBE_TEST_BORG_PW"}, "integrity_check": True},
        {"name": "intact", "type": "borg", "repository": str(borg_fresh.repo),
         "passphrase": {"env": "SPBE_TEST_BORG_PW"}, "integrity_check": True,
         "check_args": ["--repository-only"]}])
    obs = collect(cfg, integrity=True)
    b = obs["broken"]
    assert b.integrity == IntegrityStatus.FAILED, b.integrity_message
    assert "checksum mismatch" in (b.integrity_message or "").lower() or \
        "corrupt" in (b.integrity_message or "").lower(), b.integrity_message
    assert obs["intact"].integrity == IntegrityStatus.OK, obs["intact"].integrity_message
    assert BORG_PW not in dumped(b)


@pytest.mark.integration
def test_borg_garbage_json_from_a_fake_binary(tmp_path: Path, borg_fresh: Borg) -> None:
    fake = tmp_path / "borg"
    fake.write_text("#!/bin/sh\nprintf '[1, 2, 3'\n")
    fake.chmod(0o755)
    cfg = agent_cfg(tmp_path, [{"name": "garbled", "type": "borg", "binary": str(fake),
                                "repository": str(borg_fresh.repo)}])
    o = collect(cfg)["garbled"]
    assert o.status == BackupRunStatus.FAILED and o.error_type == "bad_output"
    assert "borg list --json: output is not JSON" in (o.last_failure_reason or "")


# --- files ---------------------------------------------------------------------------------

def _dump(d: Path, name: str, body: bytes, when: datetime, sidecar: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_bytes(body)
    ts = when.timestamp()
    os.utime(p, (ts, ts))
    if sidecar is not None:
        (d / (name + ".sha256")).write_text(f"{sidecar}  {name}\n")
    return p


def test_files_newest_file_and_checksums(tmp_path: Path) -> None:
    now = utcnow().replace(microsecond=0)
    db = tmp_path / "backup" / "db"
    old = b"old dump" * 100
    new = os.urandom(4096)
    _dump(db, "simpeg-1.sql.gz", old, now - timedelta(days=2),
          hashlib.sha256(old).hexdigest())
    _dump(db, "simpeg-2.sql.gz", new, now - timedelta(hours=1), hashlib.sha256(new).hexdigest())
    bad = tmp_path / "backup" / "bad"
    _dump(bad, "x-1.tar", b"content", now - timedelta(hours=3),
          hashlib.sha256(b"other content").hexdigest())
    cfg = agent_cfg(tmp_path, [
        {"name": "good", "type": "files", "path": f"{db}/*.sql.gz", "checksum": "sidecar",
         "destination": "127.0.0.1"},
        {"name": "mismatch", "type": "files", "path": f"{bad}/*.tar", "checksum": "sidecar"},
        {"name": "computed", "type": "files", "path": f"{db}/**/*.gz", "checksum": "compute"},
        {"name": "none-yet", "type": "files", "path": f"{tmp_path}/backup/empty/*.gz"},
        {"name": "no-dir", "type": "files", "path": f"{tmp_path}/nope/*.gz"}])
    (tmp_path / "backup" / "empty").mkdir()
    obs = collect(cfg)
    g = obs["good"]
    assert g.status == BackupRunStatus.SUCCESS
    assert g.last_success_at == now - timedelta(hours=1)
    assert g.size_bytes == 4096 and g.item_count == 2
    assert g.checksum_sha256 == hashlib.sha256(new).hexdigest()
    assert g.integrity == IntegrityStatus.OK
    m = obs["mismatch"]
    assert m.status == BackupRunStatus.SUCCESS
    assert m.integrity == IntegrityStatus.FAILED
    assert "checksum mismatch" in (m.integrity_message or "")
    c = obs["computed"]
    assert c.checksum_sha256 == g.checksum_sha256 and c.integrity == IntegrityStatus.NOT_RUN
    assert obs["none-yet"].status == BackupRunStatus.NEVER_RUN
    assert obs["none-yet"].last_success_at is None
    nd = obs["no-dir"]
    assert nd.status == BackupRunStatus.FAILED and nd.error_type == "not_found"
    assert "does not exist" in (nd.last_failure_reason or "")


def test_files_empty_newest_and_vanished_backups(tmp_path: Path) -> None:
    now = utcnow().replace(microsecond=0)
    d = tmp_path / "dumps"
    _dump(d, "a.sql", b"x" * 10, now - timedelta(days=1))
    cfg = agent_cfg(tmp_path, [{"name": "dumps", "type": "files", "path": f"{d}/*.sql"}])
    assert collect(cfg)["dumps"].status == BackupRunStatus.SUCCESS
    _dump(d, "b.sql", b"", now - timedelta(minutes=5))
    o = collect(cfg)["dumps"]
    assert o.status == BackupRunStatus.FAILED and o.error_type == "empty"
    assert "is empty" in (o.last_failure_reason or "")
    assert o.last_success_at == now - timedelta(days=1)
    for p in d.iterdir():
        p.unlink()
    gone = collect(cfg)["dumps"]
    assert gone.status == BackupRunStatus.FAILED and gone.error_type == "no_backup"
    assert gone.last_success_at == now - timedelta(days=1)


def test_files_replica_age_and_differing_copy(tmp_path: Path) -> None:
    now = utcnow().replace(microsecond=0)
    body = os.urandom(2048)
    _dump(tmp_path / "pd", "arsip.tar", body, now - timedelta(hours=2))
    _dump(tmp_path / "drc", "arsip.tar", body[:-1] + b"!", now - timedelta(days=9))
    _dump(tmp_path / "drc-ok", "arsip.tar", body, now - timedelta(days=1))
    jobs = []
    for name, drc in (("differs", "drc"), ("same", "drc-ok")):
        jobs.append({"name": name, "type": "files", "path": f"{tmp_path}/pd/*.tar",
                     "checksum": "compute",
                     "replica": {"path": f"{tmp_path}/{drc}/*.tar", "destination": "127.0.0.4"}})
    obs = collect(agent_cfg(tmp_path, jobs))
    d = obs["differs"]
    assert d.replica is not None and d.replica.last_success_at == now - timedelta(days=9)
    assert d.replica.destination_ips == ["127.0.0.4"]
    assert d.integrity == IntegrityStatus.FAILED
    assert "DRC copy of arsip.tar differs" in (d.integrity_message or "")
    s = obs["same"]
    assert s.integrity == IntegrityStatus.OK
    assert s.replica is not None and s.replica.last_success_at == now - timedelta(days=1)


# --- reported (backup-report CLI) ----------------------------------------------------------

def _cli(cfg_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_AGENT_")}
    return subprocess.run([sys.executable, "-m", "agent.cli", "-c", str(cfg_path), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def reported_cfg(tmp_path: Path) -> Iterator[tuple[Path, AgentConfig]]:
    data = {"agent_id": "dinkes-gw", "pd_code": "DINKES",
            "collector": {"url": "https://127.0.0.1:9/", "token_env": "SPBE_TEST_UNUSED"},
            "spool": {"path": str(tmp_path / "state" / "spool.sqlite")},
            "backups": [{"name": "sikd", "type": "reported", "expected_interval_s": 43200},
                        {"name": "simpeg", "type": "reported", "destination": "127.0.0.1"}]}
    p = tmp_path / "agent.yaml"
    p.write_text(yaml.safe_dump(data))
    yield p, load_config(AgentConfig, p, "SPBE_TEST_NOPE_")


def test_backup_report_cli_then_collector(reported_cfg: tuple[Path, AgentConfig]) -> None:
    path, cfg = reported_cfg
    assert collect(cfg)["sikd"].status == BackupRunStatus.NEVER_RUN
    digest = hashlib.sha256(b"sikd").hexdigest()
    r = _cli(path, "backup-report", "--job", "sikd", "--status", "success", "--size",
             "734003200", "--duration", "312.5", "--destination", "127.0.0.1",
             "--replica", "localhost", "--checksum", digest)
    assert r.returncode == 0, r.stderr
    assert "recorded success of backup job sikd" in r.stdout
    o = collect(cfg)["sikd"]
    assert o.status == BackupRunStatus.SUCCESS and o.type == "reported"
    assert age_s(o.last_success_at) < 120
    assert (o.size_bytes, o.duration_s, o.checksum_sha256) == (734003200, 312.5, digest)
    assert o.destination == "127.0.0.1" and o.destination_ips == ["127.0.0.1"]
    assert o.expected_interval_s == 43200
    assert o.replica is not None and o.replica.destination == "localhost"
    assert "127.0.0.1" in o.replica.destination_ips
    assert o.replica.last_success_at == o.last_success_at
    first_success = o.last_success_at

    r = _cli(path, "backup-report", "--job", "sikd", "--status", "failure",
             "--message", "disk penuh di server backup")
    assert r.returncode == 0, r.stderr
    f = collect(cfg)["sikd"]
    assert f.status == BackupRunStatus.FAILED and f.error_type == "reported"
    assert f.last_failure_reason == "disk penuh di server backup"
    assert f.last_failure_at is not None and f.last_failure_at >= first_success  # type: ignore[operator]
    assert f.last_success_at == first_success and f.size_bytes == 734003200

    other = collect(cfg)["simpeg"]
    assert other.status == BackupRunStatus.NEVER_RUN and other.replica is None
    assert other.destination_ips == ["127.0.0.1"]


@pytest.mark.parametrize(("args", "expect"), [
    (["--job", "nope", "--status", "success"], "'nope' is not a backup job of type reported"),
    (["--job", "sikd", "--status", "success", "--checksum", "abc"], "--checksum must be a SHA"),
    (["--job", "sikd", "--status", "success", "--size", "-5"], "--size must be"),
    (["--job", "sikd", "--status", "success", "--replica", "a b"], "--replica must be a host"),
    (["--job", "sikd", "--status", "maybe"], "invalid choice: 'maybe'"),
])
def test_backup_report_cli_refuses_bad_input(reported_cfg: tuple[Path, AgentConfig],
                                             args: list[str], expect: str) -> None:
    path, cfg = reported_cfg
    r = _cli(path, "backup-report", *args)
    assert r.returncode == 2
    assert expect in r.stderr
    assert collect(cfg)["sikd"].status == BackupRunStatus.NEVER_RUN  # nothing was written


@pytest.mark.integration
def test_once_dry_run_carries_backup_status(tmp_path: Path, restic_fresh: Restic) -> None:
    data = {"agent_id": "dinkes-gw", "pd_code": "DINKES",
            "collector": {"url": "https://127.0.0.1:9/", "token_env": "SPBE_TEST_UNUSED"},
            "spool": {"path": str(tmp_path / "state" / "spool.sqlite")},
            "backups": [{"name": "simpeg-db", "type": "restic",
                         "repository": str(restic_fresh.repo),
                         "password": {"file": str(restic_fresh.pwfile)}},
                        {"name": "broken", "type": "restic",
                         "repository": str(tmp_path / "no-repo-here"),
                         "password": {"file": str(restic_fresh.pwfile)}}]}
    p = tmp_path / "agent.yaml"
    p.write_text(yaml.safe_dump(data))
    r = _cli(p, "once", "--dry-run")
    assert r.returncode == 0, r.stderr
    report = Report.model_validate_json(r.stdout)
    backups = {o.job: o for o in report.observations if isinstance(o, BackupStatus)}
    assert backups["simpeg-db"].status == BackupRunStatus.SUCCESS
    assert backups["simpeg-db"].size_bytes == sum(SIZES.values())
    assert backups["broken"].status == BackupRunStatus.FAILED
    assert backups["broken"].error_type == "not_found"
    assert RESTIC_PW not in r.stdout and RESTIC_PW not in r.stderr
    assert json.loads(r.stdout)["observations"]
    assert datetime.now(UTC) - report.sent_at < timedelta(minutes=5)
