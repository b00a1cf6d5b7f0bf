"""Region profiles and the site model: the shipped profiles cite the right articles, enforce
from the right date, and a wrong profile or site model is a clear error naming the file and
the key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.compliance.profile import (
    ComplianceCfg,
    Obligation,
    ProfileError,
    load_profile,
    parse_profile,
)
from collector.config import CollectorConfig, load
from contract.configfile import ConfigError

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ROOT / "configs" / "regions"

# The citation of every obligation per region, as checked against the regulation texts
# (OBLIGATIONS.md; e.g. Bogor "Pasal 16 ayat (1)" is Lebak "Pasal 17 ayat (1)").
CITATIONS: dict[str, dict[str, str]] = {
    "bogor-2021": {
        "INTRA-1": "Pasal 18 ayat (2)", "LAN-1": "Pasal 19 ayat (2)",
        "LAN-2": "Pasal 20 ayat (1)", "LAN-3": "Pasal 20 ayat (2)",
        "NET-2": "Pasal 12 ayat (2) huruf c dan huruf d", "ASSET-1": "Pasal 35",
        "DC-1": "Pasal 14 ayat (5) dan Pasal 15 ayat (1)", "DC-2": "Pasal 14 ayat (6)",
        "BAK-1": "Pasal 16 ayat (1)", "BAK-2": "Pasal 25 ayat (4)", "WEB-1": "Pasal 21 ayat (2)"},
    "kediri-2019": {
        "INTRA-1": "Pasal 18 ayat (2)", "LAN-1": "Pasal 19 ayat (2)",
        "LAN-2": "Pasal 20 ayat (1)", "LAN-3": "Pasal 20 ayat (2)",
        "NET-2": "Pasal 12 ayat (2) huruf c dan huruf d", "ASSET-1": "Pasal 35",
        "DC-1": "Pasal 14 ayat (5) dan Pasal 15 ayat (1)", "DC-2": "Pasal 14 ayat (6)",
        "BAK-1": "Pasal 16 ayat (1)", "BAK-2": "Pasal 25 ayat (4)", "WEB-1": "Pasal 21 ayat (2)"},
    "lebak-2024": {
        "INTRA-1": "Pasal 19 ayat (2)", "LAN-1": "Pasal 20 ayat (2)",
        "LAN-2": "Pasal 21 ayat (1)", "LAN-3": "Pasal 21 ayat (2)",
        "NET-2": "Pasal 13 ayat (2) huruf c dan huruf d", "ASSET-1": "Pasal 36",
        "DC-1": "Pasal 15 ayat (5) dan Pasal 16 ayat (1)", "DC-2": "Pasal 15 ayat (6)",
        "BAK-1": "Pasal 17 ayat (1)", "BAK-2": "Pasal 26 ayat (4)", "WEB-1": "Pasal 22 ayat (2)"},
    "solok-2020": {
        "INTRA-1": "Pasal 30 ayat (3)", "LAN-4": "Pasal 28 ayat (1)",
        "NET-1": "Pasal 28 ayat (2)", "ASSET-1": "Pasal 29 ayat (1)",
        "DC-1": "Pasal 19 ayat (3) dan Pasal 27 ayat (2) dan ayat (3)",
        "DC-2": "Pasal 14 ayat (3) huruf a", "DC-3": "Pasal 31 ayat (4) dan Pasal 23 ayat (4)",
        "BAK-2": "Pasal 32 ayat (1) dan ayat (3) dan Pasal 33",
        "WEB-1": "Pasal 22 ayat (1) dan ayat (2)"},
    "bogor-perda": {
        "INTRA-1": "Pasal 13 ayat (2)", "NET-1": "Pasal 13 ayat (3)",
        "DC-1": "Pasal 10 ayat (4)", "DC-3": "Pasal 12 ayat (4)"},
}
PORTALS = {"bogor-2021": "kotabogor.go.id", "kediri-2019": "kedirikota.go.id",
           "lebak-2024": "lebakkab.go.id", "solok-2020": "solokkab.go.id", "bogor-perda": None}
SHORT = {"bogor-2021": "Perwali Kota Bogor 24/2021", "kediri-2019": "Perwali Kediri 42/2019",
         "lebak-2024": "Perbup Lebak 24/2024", "solok-2020": "Perbup Solok 36/2020",
         "bogor-perda": "Raperda Kota Bogor Sistem Elektronik"}


def test_one_profile_per_regulation() -> None:
    assert sorted(p.stem for p in REGIONS.glob("*.yaml")) == sorted(CITATIONS)


@pytest.mark.parametrize("key", sorted(CITATIONS))
def test_profile_cites_the_regions_own_articles(key: str) -> None:
    p = load_profile(REGIONS / f"{key}.yaml")
    assert p.key == key and p.timezone == "Asia/Jakarta"
    assert {ob.value: cfg.article for ob, cfg in p.obligations.items()} == CITATIONS[key]
    assert p.portal_domain == PORTALS[key]
    assert p.regulation.short == SHORT[key]
    for ob in p.obligations:
        assert p.citation(ob) == f"{CITATIONS[key][ob.value]} {SHORT[key]}"
        p.params(ob)   # validated parameters exist for every obligation


def test_bogor_and_lebak_cite_different_articles_for_the_same_obligation() -> None:
    bogor = load_profile(REGIONS / "bogor-2021.yaml")
    lebak = load_profile(REGIONS / "lebak-2024.yaml")
    assert bogor.citation(Obligation.BAK_1) == "Pasal 16 ayat (1) Perwali Kota Bogor 24/2021"
    assert lebak.citation(Obligation.BAK_1) == "Pasal 17 ayat (1) Perbup Lebak 24/2024"


def _ts(y: int, m: int, d: int, h: int = 0) -> float:
    return datetime(y, m, d, h, tzinfo=UTC).timestamp()


def test_enforcement_start_in_the_region_time_zone() -> None:
    lebak = load_profile(REGIONS / "lebak-2024.yaml")       # 2024-07-09 00:00 WIB
    assert not lebak.enforced_at(_ts(2024, 7, 8, 16) - 1)   # 23:59:59 WIB on the 8th
    assert lebak.enforced_at(_ts(2024, 7, 8, 17))           # 00:00 WIB on the 9th
    bogor = load_profile(REGIONS / "bogor-2021.yaml")       # Pasal 49: two years to conform
    assert not bogor.enforced_at(_ts(2022, 6, 1)) and bogor.enforced_at(_ts(2023, 6, 1))
    draft = load_profile(REGIONS / "bogor-perda.yaml")
    assert draft.regulation.status == "draft" and not draft.enforced_at(_ts(2040, 1, 1))


def _variant(tmp_path: Path, change: Any, name: str = "bad") -> Path:
    data = yaml.safe_load((REGIONS / "lebak-2024.yaml").read_text())
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("change", "expect"), [
    (lambda d: d["obligations"].update({"BAK-9": {"article": "Pasal 1"}}),
     r"bad.yaml: obligations.BAK-9.\[key\]: Input should be 'INTRA-1'"),
    (lambda d: d["obligations"]["BAK-2"].update(params={"rpo_days": -1}),
     r"bad.yaml: obligations.BAK-2.params.rpo_days: Input should be greater than 0"),
    (lambda d: d["obligations"]["BAK-2"].update(params={"rpo_dayz": 3}),
     r"bad.yaml: obligations.BAK-2.params.rpo_dayz: Extra inputs are not permitted"),
    (lambda d: d["obligations"]["BAK-1"].update(article="Ps. 17"),
     r"bad.yaml: obligations.BAK-1.article: String should match pattern"),
    (lambda d: d["obligations"]["BAK-1"].update(severity="warning"),
     r"obligations.BAK-1.severity: Value error, warning is given by enforcement_start"),
    (lambda d: d.update(timezone="Asia/Jakartaa"),
     r"bad.yaml: timezone: Value error, unknown time zone 'Asia/Jakartaa'"),
    (lambda d: d.update(enforcement_start="2024-13-01"),
     r"bad.yaml: enforcement_start: Input should be a valid date"),
    (lambda d: d.pop("portal_domain"), r"WEB-1 needs portal_domain"),
    (lambda d: d["regulation"].update(status="draft"),
     r"a draft regulation is not enforced: set enforcement_start: null"),
    (lambda d: d.pop("enforcement_start"), r"bad.yaml: enforcement_start: Field required"),
])
def test_a_wrong_profile_names_file_and_key(tmp_path: Path, change: Any, expect: str) -> None:
    with pytest.raises(ProfileError, match=expect):
        load_profile(_variant(tmp_path, change))


def test_lan4_label_pattern_must_compile(tmp_path: Path) -> None:
    data = yaml.safe_load((REGIONS / "solok-2020.yaml").read_text())
    data["obligations"]["LAN-4"]["params"]["label_pattern"] = "^[A-Z"
    with pytest.raises(ProfileError, match=r"obligations.LAN-4.params.label_pattern: Value "
                                           r"error, not a valid regular expression"):
        parse_profile(data, "solok.yaml")


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_text("key: x\nobligations: [\n")
    with pytest.raises(ProfileError, match=r"x.yaml: not valid YAML \(line 3, column 1\)"):
        load_profile(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ProfileError, match=r"x.yaml: \(top level\): must be a mapping"):
        load_profile(p)
    with pytest.raises(ProfileError, match=r"missing\.yaml: cannot read"):
        load_profile(tmp_path / "missing.yaml")


def test_collector_config_names_its_file_and_the_profile_key(tmp_path: Path) -> None:
    bad = _variant(tmp_path, lambda d: d["obligations"]["BAK-2"].update(
        params={"rpo_days": 0}))
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"compliance:\n  region_profile: {bad}\n")
    with pytest.raises(ConfigError) as e:
        load(cfg)
    msg = str(e.value)
    assert msg.startswith(f"{cfg}: compliance: ")
    assert f"{bad}: obligations.BAK-2.params.rpo_days: Input should be greater than 0" in msg


def test_site_model_errors_name_the_key_and_the_prefix_file_line(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("compliance:\n  site:\n    pusat_data_subnets: [10.0.0.1/8]\n")
    with pytest.raises(ConfigError, match=r"compliance.site.pusat_data_subnets\[0\]: value is "
                                          r"not a valid IPv4 or IPv6 network"):
        load(cfg)
    prefixes = tmp_path / "id.txt"
    prefixes.write_text("# comment\n36.64.0.0/11   # Telkom\nnot-a-prefix\n")
    cfg.write_text(f"compliance:\n  site:\n    indonesia_prefixes_file: {prefixes}\n")
    with pytest.raises(ConfigError, match=rf"{prefixes}: line 3: 'not-a-prefix' does not "
                                          r"appear to be an IPv4 or IPv6 network"):
        load(cfg)
    cfg.write_text("compliance:\n  site:\n    pds:\n      DINKES: {exempt: [LAN-9]}\n")
    with pytest.raises(ConfigError, match=r"compliance.site.pds.DINKES.exempt\[0\]: Input "
                                          r"should be 'INTRA-1'"):
        load(cfg)


def test_collector_starts_with_no_config_and_ships_a_usable_example() -> None:
    assert CollectorConfig().compliance.profile is None      # engine off, nothing required
    data = yaml.safe_load((ROOT / "configs/examples/compliance.yaml.example").read_text())
    data["compliance"]["region_profile"] = str(REGIONS / "lebak-2024.yaml")
    data["compliance"]["site"]["indonesia_prefixes_file"] = str(
        ROOT / "configs/examples/indonesia-prefixes.txt")
    c = ComplianceCfg.model_validate(data["compliance"])
    assert c.profile is not None and c.profile.key == "lebak-2024"
    site = c.site
    assert site.in_indonesia("36.66.1.10") is True and site.in_indonesia("8.8.8.8") is False
    assert site.in_pusat_data("10.10.3.4") and not site.in_pusat_data("10.20.3.4")
    assert site.pd("DISKOMINFO").dinas and site.pd("DINKES").mandiri_tik
    assert site.pd("DINKES").websites[0].host == "dinkes.lebakkab.go.id"
    assert site.is_pusat_data_target("pusat-data-core", "10.253.1.1")
    assert site.is_pusat_data_target("simpeg", "https://10.10.0.9:8443/login")
    assert not site.is_pusat_data_target("simpeg", "https://simpeg.lebakkab.go.id/")
