"""Configuration files: errors name the file, the key path and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load as load_agent
from collector.config import load as load_collector
from contract.configfile import ConfigError, read_secret

GOOD = """
agent_id: dinkes-gw
pd_code: DINKES
collector:
  url: https://collector.example:8443
  token_file: /etc/spbe-agent/token
probes:
  - {name: pusat-data, type: icmp, host: 10.0.0.1}
  - {name: simpeg, type: tcp, host: 10.0.1.5, port: 5432}
  - {name: portal, type: http, url: "https://dinkes.kotabogor.go.id/"}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return p


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = load_agent(write(tmp_path, GOOD))
    assert [p.type for p in cfg.probes] == ["icmp", "tcp", "http"]
    assert cfg.intervals.probes_s == 60


@pytest.mark.parametrize("mutate,expected", [
    (lambda s: s.replace("port: 5432", "port: 70000"),
     "probes[1].port: Input should be less than or equal to 65535"),
    (lambda s: s.replace(", port: 5432", ""), "probes[1].port: Field required"),
    (lambda s: s.replace("type: icmp", "type: snmp"), "probes[0]: Input tag 'snmp'"),
    (lambda s: s.replace("https://collector", "http://collector"),
     "collector: Value error, plain http:// is refused"),
    (lambda s: s.replace("  token_file: /etc/spbe-agent/token\n", ""),
     "collector: Value error, set token_env or token_file"),
    (lambda s: s + "surprise: 1\n", "surprise: Extra inputs are not permitted"),
    (lambda s: s.replace("name: simpeg", "name: pusat-data"), "used twice"),
    (lambda s: s.replace("agent_id: dinkes-gw", "agent_id: [1, 2]"), "agent_id: Input should"),
])
def test_errors_name_file_key_path_and_problem(tmp_path: Path, mutate: object,
                                               expected: str) -> None:
    path = write(tmp_path, mutate(GOOD))  # type: ignore[operator]
    with pytest.raises(ConfigError) as e:
        load_agent(path)
    assert str(path) in str(e.value)
    assert expected in str(e.value), str(e.value)


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 4, column 1\): expected"):
        load_agent(write(tmp_path, "agent_id: x\npd_code: y\ncollector: [\n"))


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_agent(write(tmp_path, "- a\n- b\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_agent(tmp_path / "nope.yaml")


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPBE_AGENT_INTERVALS__PROBES_S", "15")
    monkeypatch.setenv("SPBE_AGENT_PD_CODE", "DISDIK")
    cfg = load_agent(write(tmp_path, GOOD))
    assert cfg.intervals.probes_s == 15 and cfg.pd_code == "DISDIK"


def test_collector_embedded_defaults_and_tls_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_collector(None)
    assert cfg.database_url.startswith("sqlite") and cfg.influxdb.batch_lines == 5000
    monkeypatch.setenv("SPBE_COLLECTOR_LISTEN__HOST", "0.0.0.0")
    with pytest.raises(ConfigError, match="plain HTTP on a non-loopback address is refused"):
        load_collector(None)


def test_secrets_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "secret"
    f.write_text("s3cr3t-value\n")
    assert read_secret(env=None, file=f, what="token") == "s3cr3t-value"
    monkeypatch.setenv("TOKEN_VAR", "")
    with pytest.raises(ConfigError) as e:
        read_secret(env="TOKEN_VAR", file=None, what="token")
    assert "TOKEN_VAR" in str(e.value)
    f.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        read_secret(env=None, file=f, what="token")


def test_shipped_examples_load() -> None:
    """The example configs in configs/examples/ stay valid."""
    root = Path(__file__).resolve().parent.parent / "configs" / "examples"
    agent = load_agent(root / "agent.yaml.example")
    assert agent.probes and agent.collector.token_file
    collector = load_collector(root / "collector.yaml.example")
    assert collector.listen.tls_cert_file is not None


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_bytes(GOOD.encode() + b"# catatan: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"agent\.yaml: not UTF-8 text \(byte \d+\)"):
        load_agent(p)
    secret = tmp_path / "token"
    secret.write_bytes(b"\xc3\x28token")
    with pytest.raises(ConfigError, match=r"secret file .*token is not UTF-8 text"):
        read_secret(env=None, file=secret, what="collector token")


def test_nesting_too_deep_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_agent(write(tmp_path, GOOD + "labels: " + "[" * 5000 + "]" * 5000 + "\n"))


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = GOOD + "pd_code: DISDIK\n"
    with pytest.raises(ConfigError, match=r"line 11.*key 'pd_code' given twice \(first on "
                                          r"line 3\)"):
        load_agent(write(tmp_path, text))


@pytest.mark.parametrize("first,second", [("SPBE_AGENT_COLLECTOR", "SPBE_AGENT_COLLECTOR__URL"),
                                          ("SPBE_AGENT_A__B", "SPBE_AGENT_A__B__C")])
def test_env_variables_that_disagree_on_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              first: str, second: str) -> None:
    monkeypatch.setenv(first, "x")
    monkeypatch.setenv(second, "https://c.example/")
    with pytest.raises(ConfigError, match=f"{first} and {second} conflict"):
        load_agent(write(tmp_path, GOOD))


def test_region_profile_with_a_duplicate_key(tmp_path: Path) -> None:
    from collector.compliance.profile import ProfileError, load_profile

    src = (Path(__file__).resolve().parents[1] / "configs/regions/lebak-2024.yaml").read_text()
    p = tmp_path / "lebak.yaml"
    p.write_text(src + "timezone: Asia/Makassar\n")
    with pytest.raises(ProfileError, match="key 'timezone' given twice"):
        load_profile(p)
