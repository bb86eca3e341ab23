"""What the runtime needs to know of one function (shared by the runtime and its environments)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FunctionConfig"]


@dataclass(frozen=True)
class FunctionConfig:
    """What the runtime needs to run one function."""

    name: str
    arn: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout_s: float = 3.0
    memory_mb: int = 128
    reserved_concurrency: int | None = None
    role: str = ""  # the execution role's ARN
