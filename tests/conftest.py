"""Shared fixtures: real InfluxDB, a test CA, and factories for collector/agent processes."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import Agent, Collector, TestCA
from tests.servers import InfluxD

_db_seq = itertools.count(1)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD]:
    server = InfluxD(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


MakeCollector = Callable[..., Collector]
MakeAgent = Callable[..., Agent]


@pytest.fixture
def make_collector(tmp_path: Path, ca: TestCA, influxd: InfluxD) -> Iterator[MakeCollector]:
    made: list[Collector] = []

    def make(name: str = "collector", **kw: Any) -> Collector:
        kw.setdefault("influx_db", f"spbe_test_{next(_db_seq)}")
        c = Collector(tmp_path / name, ca, influxd.url, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[MakeAgent]:
    made: list[Agent] = []

    def make(collector: Collector, agent_id: str, pd: str, token: str, **kw: Any) -> Agent:
        a = Agent(tmp_path / f"agent-{agent_id}", collector, agent_id, pd, token, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop()


@pytest.fixture(autouse=True)
def _agent_wide_state_restored() -> Iterator[None]:
    """An in-process ``agent.runner.Agent`` with a spool sets the agent-wide config-fingerprint
    key (agent/configbackup.py); put it back so tests do not leak into each other."""
    from agent import configbackup

    saved = configbackup._agent_key
    yield
    configbackup._agent_key = saved
