"""scripts/deploy-ecs.sh: a clear message per missing variable; a full run with stub tools."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT

SCRIPT = ROOT / "scripts" / "deploy-ecs.sh"
REQUIRED = [
    "AWS_REGION",
    "AWS_ACCOUNT_ID",
    "ECR_REPOSITORY",
    "IMAGE_TAG",
    "CLUSTER_NAME",
    "SERVICE_NAME",
]
FULL_ENV = {
    "AWS_REGION": "ap-southeast-1",
    "AWS_ACCOUNT_ID": "123456789012",
    "ECR_REPOSITORY": "query-service",
    "IMAGE_TAG": "abc123",
    "CLUSTER_NAME": "query-service-cluster",
    "SERVICE_NAME": "query-service",
}
BASH = shutil.which("bash") or "/bin/bash"


def run(env: dict[str, str], path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_deploy_script_is_strict_bash():
    text = SCRIPT.read_text()

    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert subprocess.run([BASH, "-n", str(SCRIPT)], check=False).returncode == 0


def test_deploy_script_with_empty_environment_names_every_missing_variable():
    result = subprocess.run(
        ["env", "-i", BASH, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 2
    for name in REQUIRED:
        assert f"error: {name} is not set" in result.stderr
    assert "nothing was built or deployed" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("missing", REQUIRED)
def test_deploy_script_names_the_one_missing_variable(missing):
    env = {k: v for k, v in FULL_ENV.items() if k != missing}

    result = run(env)

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "is not set" in line]
    assert len(errors) == 1 and missing in errors[0]


def test_deploy_script_rejects_bad_account_id():
    result = run({**FULL_ENV, "AWS_ACCOUNT_ID": "12345"})

    assert result.returncode == 2
    assert "AWS_ACCOUNT_ID must be 12 digits" in result.stderr


def write_stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_deploy_script_registers_task_definition_with_pushed_image(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    registered = tmp_path / "registered.json"
    write_stub(bin_dir, "docker", f'echo "docker $*" >> {calls}\ncat > /dev/null || true\n')
    write_stub(
        bin_dir,
        "aws",
        f"""echo "aws $*" >> {calls}
case "$1 $2" in
  "ecr get-login-password") echo secret ;;
  "ecs register-task-definition")
    for arg in "$@"; do case "$arg" in file://*) cp "${{arg#file://}}" {registered} ;; esac; done
    echo "arn:aws:ecs:ap-southeast-1:123456789012:task-definition/query-service-task:7" ;;
esac
""",
    )
    python_dir = Path(shutil.which("python3") or "/usr/bin/python3").parent
    path = os.pathsep.join([str(bin_dir), str(python_dir), "/usr/bin", "/bin"])

    result = run({**FULL_ENV, "BUILD_CONTEXT": str(tmp_path)}, path=path)

    assert result.returncode == 0, result.stderr
    image = "123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/query-service:abc123"
    log = calls.read_text()
    assert f"docker push {image}" in log
    assert "ecs update-service" in log and "--task-definition arn:aws:ecs:" in log
    assert "ecs wait services-stable" in log
    document = json.loads(registered.read_text())
    assert document["containerDefinitions"][0]["image"] == image
    assert document["executionRoleArn"] == (
        "arn:aws:iam::123456789012:role/query-service-task-execution-role"
    )
    assert "${" not in json.dumps(document)
    assert document["cpu"] == "256" and document["memory"] == "512"
