"""Item 8c: checkov over ``infra/terraform``, run from its own virtual environment.

checkov pins an old boto3, so it never goes into the project's environment: ``make checkov-venv``
creates ``.venv-checkov`` (or ``$CHECKOV_VENV``) once and reuses it. A failed check passes only
when ``infra/checkov-waivers.yaml`` waives it, with a reason, for that resource (or for all).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness.verify.model import Evidence, Status, Table, bi

WAIVERS = Path("infra") / "checkov-waivers.yaml"


def executable(root: Path) -> Path:
    """The checkov of the dedicated environment."""
    return Path(os.environ.get("CHECKOV_VENV", root / ".venv-checkov")) / "bin" / "checkov"


def load_waivers(path: Path) -> list[dict[str, str]]:
    """The waivers: ``[{id, resource?, reason}]``; a waiver without a reason is an error."""
    if not path.is_file():
        return []
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    for entry in entries:
        if not str(entry.get("reason", "")).strip() or not entry.get("id"):
            raise ValueError(f"{path}: every waiver needs an id and a reason: {entry}")
    return list(entries)


def waived(check: dict[str, Any], waivers: list[dict[str, str]]) -> dict[str, str] | None:
    """The waiver covering a failed check, if any."""
    for waiver in waivers:
        if waiver["id"] == check["check_id"] and waiver.get("resource") in (None, "*", check["resource"]):
            return waiver
    return None


def run(root: Path, evidence: Evidence) -> Status:
    """(c): every failed check fixed in infra/ or waived with a reason."""
    binary = executable(root)
    if not binary.is_file():
        evidence.excerpts.append(f"8c: {binary} is missing: run 'make checkov-venv' once")
        return Status.NOT_CHECKED
    try:
        waivers = load_waivers(root / WAIVERS)
    except ValueError as exc:
        evidence.failures.append(f"8c: {exc}")
        return Status.FAIL
    done = subprocess.run(
        [str(binary), "-d", str(root / "infra" / "terraform"), "--framework", "terraform",
         "-o", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        evidence.failures.append(f"8c: checkov exited {done.returncode}: {done.stderr[-400:] or done.stdout[-400:]}")
        return Status.FAIL
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    summary = [r.get("summary", {}) for r in reports]
    passed_count = sum(int(s.get("passed", 0)) for s in summary)
    evidence.fact("8c checkov checks passed / failed", "8c checkov 通過／未通過",
                  f"{passed_count} / {len(failed)}")
    rows, open_findings = [], []
    for check in failed:
        waiver = waived(check, waivers)
        rows.append([check["check_id"], check["resource"], check.get("check_name", "")[:90],
                     f"waived: {waiver['reason']}" if waiver else "OPEN"])
        if waiver is None:
            open_findings.append(f"8c: {check['check_id']} {check['resource']}: {check.get('check_name', '')}")
    evidence.tables.append(Table(bi("8c checkov failed checks and their waivers (infra/checkov-waivers.yaml)",
                                    "8c checkov 未通過項目與豁免理由（infra/checkov-waivers.yaml）"),
                                 ["check", "resource", "name", "status"], rows))
    evidence.failures.extend(open_findings)
    return Status.FAIL if open_findings else Status.PASS
