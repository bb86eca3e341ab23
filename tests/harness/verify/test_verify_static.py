"""Items 8b, 8c and 9c read infra/: each finds what a broken file would let through."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.stack.terraform import Terraform
from harness.verify.checks import checkov, iam, security
from harness.verify.model import Evidence, Status

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    return tmp_path


def _findings(root: Path) -> list[str]:
    tf = Terraform(root / "infra" / "terraform", security.DEPLOY_VARIABLES, lambda b, a: f"<{b.address}.{a}>")
    return security.static_findings(tf, root)


def test_static_infra_as_committed_is_private() -> None:
    assert _findings(ROOT) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('internal           = true\n  load_balancer_type = "application"',
         'internal           = false\n  load_balancer_type = "application"', "aws_lb.alb: internal is not true"),
        ("assign_public_ip = false", "assign_public_ip = true", "assign_public_ip is not false"),
        ("security_groups = [aws_security_group.alb.id]\n  }",
         'cidr_blocks = ["0.0.0.0/0"]\n  }', "open to ['0.0.0.0/0']"),
    ],
)
def test_static_finds_a_public_main_tf(infra_copy: Path, old: str, new: str, expected: str) -> None:
    main = infra_copy / "infra" / "terraform" / "main.tf"
    text = main.read_text()
    assert old in text
    main.write_text(text.replace(old, new, 1))
    assert any(expected in f for f in _findings(infra_copy)), _findings(infra_copy)


def test_static_finds_an_edge_api(infra_copy: Path) -> None:
    path = infra_copy / "infra" / "terraform" / "api-gateway.tf"
    path.write_text(path.read_text().replace('types            = ["PRIVATE"]', 'types            = ["REGIONAL"]'))
    assert any("not PRIVATE" in f for f in _findings(infra_copy))


def test_policy_open_to_any_source_is_a_finding() -> None:
    open_policy = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
                                  "Resource": "execute-api:/*"}]}
    assert security.policy_findings(open_policy)
    assert security.policy_findings(None)


def test_iam_policies_as_committed_have_no_wildcard() -> None:
    policies = iam.rendered_policies(ROOT)
    assert {"query-lambda-role/query-lambda", "query-service-task-role/query-service-task"} <= set(policies)
    assert iam.wildcard_findings(policies) == []


def test_iam_wildcard_action_is_a_finding(infra_copy: Path) -> None:
    path = infra_copy / "infra" / "terraform" / "iam.tf"
    path.write_text(path.read_text().replace('["dynamodb:Query"]', '["dynamodb:*"]'))
    findings = iam.wildcard_findings(iam.rendered_policies(infra_copy))
    assert any("QueryReadTable: wildcard action dynamodb:*" in f for f in findings)


def test_checkov_waiver_needs_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text("- id: CKV_AWS_1\n  reason: ''\n")
    with pytest.raises(ValueError, match="reason"):
        checkov.load_waivers(path)


def test_checkov_waivers_committed_have_reasons_and_match_by_resource() -> None:
    waivers = checkov.load_waivers(ROOT / checkov.WAIVERS)
    assert waivers
    assert checkov.waived({"check_id": "CKV_AWS_2", "resource": "aws_lb_listener.alb_http"}, waivers)
    assert checkov.waived({"check_id": "CKV_AWS_2", "resource": "aws_lb_listener.other"}, waivers) is None


def test_checkov_missing_environment_is_not_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOV_VENV", str(tmp_path / "absent"))
    evidence = Evidence()
    assert checkov.run(ROOT, evidence) is Status.NOT_CHECKED
    assert "make checkov-venv" in evidence.excerpts[0]
