"""CI and the image, read (no Docker engine here): issue 11, point 12."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.distribution.wheels import SERVICE_TREE
from tests.infra.conftest import ROOT


def workflow() -> dict[str, Any]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())


def runs(job: dict[str, Any]) -> list[str]:
    return [str(step.get("run", "")) for step in job["steps"]]


def test_ci_runs_the_suite_on_the_images_python_too() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    image_python = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.M)
    assert image_python is not None
    matrix = workflow()["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert {"3.11", image_python.group(1)} <= set(matrix)


def test_ci_builds_the_image_and_runs_the_consumer_test() -> None:
    jobs = workflow()["jobs"]
    assert any(r.startswith("docker build") for r in runs(jobs["image"]))
    assert "make consumer" in runs(jobs["consumer"])


def test_ci_does_not_run_the_contract_gates_twice() -> None:
    steps = runs(workflow()["jobs"]["test"])
    assert any(r.startswith("make test") for r in steps)
    assert "make contract" not in steps and "make contract-diff" in steps


def test_image_build_context_is_the_service_alone() -> None:
    """What the Dockerfile copies is what tests/distribution builds the image's wheel from."""
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(line.split()[1:-1])
    assert copied == set(SERVICE_TREE)


def test_contract_diff_report_is_written_to_reports() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("contract-diff: $(STAMP)") :].split("\n\n", 1)[0]
    assert "> reports/contract-diff.txt" in recipe
