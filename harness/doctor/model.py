"""What a doctor check finds: a status, the evidence, and the next step in one line."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["GROUPS", "Finding", "Status"]


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    NA = "N/A"  # the question does not exist here (e.g. a VPC link on the local stack)


#: the seed's troubleshooting list, in its order and words, with English beside them
GROUPS: dict[str, tuple[str, str]] = {
    "service": ("ECS 任務無法啟動", "ECS tasks fail to start"),
    "routing": ("API Gateway 502 錯誤", "API Gateway answers 502"),
    "sync": ("資料不同步", "Data does not sync"),
    "permissions": ("IAM 權限", "IAM permissions"),
    "logs": ("CloudWatch 日誌", "CloudWatch logs"),
}


@dataclass
class Finding:
    """The answer to one troubleshooting question."""

    check: str  # "<group>.<name>", e.g. "sync.mapping"
    title: str
    status: Status
    evidence: list[str] = field(default_factory=list)
    next_step: str = ""
    seconds: float = 0.0

    @property
    def group(self) -> str:
        return self.check.split(".", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "group": self.group,
            "title": self.title,
            "status": self.status.value,
            "evidence": self.evidence,
            "next_step": self.next_step,
            "seconds": round(self.seconds, 3),
        }
