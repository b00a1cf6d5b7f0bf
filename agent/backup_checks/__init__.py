"""Backup checks, one module per job type, in one explicit registry (:data:`CHECKS`).

See :mod:`agent.backup_checks.base` for the interface and :mod:`agent.collectors.backups`
for the collector that runs them.
"""

from __future__ import annotations

from agent.backup_checks.base import BackupCheck
from agent.backup_checks.borg import BorgCheck
from agent.backup_checks.files import FilesCheck
from agent.backup_checks.reported import ReportedCheck
from agent.backup_checks.restic import ResticCheck

CHECKS: dict[str, BackupCheck] = {}


def register(check: BackupCheck) -> None:
    if check.type in CHECKS:
        raise ValueError(f"backup check type {check.type!r} is registered twice")
    CHECKS[check.type] = check


def get(type_: str) -> BackupCheck:
    try:
        return CHECKS[type_]
    except KeyError:
        raise KeyError(f"unknown backup check type {type_!r}; valid: "
                       f"{', '.join(sorted(CHECKS))}") from None


for _check in (FilesCheck(), ResticCheck(), BorgCheck(), ReportedCheck()):
    register(_check)
