"""``confidant doctor [--repair]``: check the data directory and, asked to, repair it.

Prints one line per check (``ok  database integrity``, ``PROBLEM  index: 3 ids missing —
run with --repair``, ``repaired  index: …``) and exits 0 when everything is (now) fine, 1
otherwise. The checks themselves live in ``assistant.doctor``.
"""

from __future__ import annotations

import argparse

from assistant.settings import load_settings


def add_commands(commands, common: argparse.ArgumentParser) -> None:
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check the database, vectors, index and encoder; --repair fixes what it can"
    )
    doctor.add_argument("--repair", action="store_true", help="fix the problems found (stop Confidant first)")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from assistant.doctor import diagnose

    findings = diagnose(load_settings(data_dir=args.data_dir), repair=args.repair, progress=True)
    for finding in findings:
        print(describe(finding, args.repair), flush=True)
    return 0 if all(f.ok for f in findings) else 1


def describe(finding, repairing: bool) -> str:
    """One line for a person: what was checked and how it stands."""
    detail = f": {finding.detail}" if finding.detail else ""
    if finding.repaired:
        return f"repaired  {finding.name}{detail}"
    if finding.ok:
        return f"ok  {finding.name}{detail}"
    hint = " — run with --repair" if finding.fixable and not repairing else ""
    return f"PROBLEM  {finding.name}{detail}{hint}"
