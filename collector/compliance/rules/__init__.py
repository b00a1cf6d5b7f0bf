"""The rules: one module per obligation of ``OBLIGATIONS.md``, named after its ID, each a
small class implementing :class:`~collector.compliance.rules.base.Rule`, listed in one explicit
registry. To add one: write ``rules/<id>.py`` and add its class to ``_RULES`` below."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from collector.compliance.profile import Obligation
from collector.compliance.rules.asset_1 import Asset1
from collector.compliance.rules.bak_1 import Bak1
from collector.compliance.rules.bak_2 import Bak2
from collector.compliance.rules.base import Context, Finding, Reason, Rule, SubjectKind
from collector.compliance.rules.dc_1 import Dc1
from collector.compliance.rules.dc_2 import Dc2
from collector.compliance.rules.dc_3 import Dc3
from collector.compliance.rules.intra_1 import Intra1
from collector.compliance.rules.lan_1 import Lan1
from collector.compliance.rules.lan_2 import Lan2
from collector.compliance.rules.lan_3 import Lan3
from collector.compliance.rules.lan_4 import Lan4
from collector.compliance.rules.net_1 import Net1
from collector.compliance.rules.net_2 import Net2
from collector.compliance.rules.web_1 import Web1

__all__ = ["REGISTRY", "Context", "Finding", "Reason", "Rule", "SubjectKind", "build_registry",
           "get_rule"]

_RULES: tuple[type[Rule], ...] = (Intra1, Lan1, Lan2, Lan3, Lan4, Net1, Net2, Asset1, Dc1,
                                  Dc2, Dc3, Bak1, Bak2, Web1)


def build_registry(rules: tuple[type[Rule], ...]) -> Mapping[Obligation, Rule]:
    """Instantiate the rules; refuses two rules for one obligation."""
    out: dict[Obligation, Rule] = {}
    for cls in rules:
        rule = cls()
        if rule.obligation in out:
            raise ValueError(f"obligation {rule.obligation.value} has two rules: "
                             f"{type(out[rule.obligation]).__name__} and {cls.__name__}")
        out[rule.obligation] = rule
    return MappingProxyType(out)


REGISTRY: Mapping[Obligation, Rule] = build_registry(_RULES)


def get_rule(obligation: Obligation | str) -> Rule:
    try:
        return REGISTRY[Obligation(obligation)]
    except (KeyError, ValueError):
        valid = ", ".join(o.value for o in REGISTRY)
        raise KeyError(f"no rule for obligation {obligation!r}; valid: {valid}") from None
