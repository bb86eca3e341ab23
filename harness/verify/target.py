"""What the checks run against: a running local stack, one started for the run, or a deployed stage."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.stack import state as state_file

#: the VPC range the gateway of a stack started by verify admits: 127.0.0.2 is then a real
#: source address outside it (item 8a)
VERIFY_VPC_CIDRS = ("127.0.0.1/32", "::1/128")
OUTSIDE_ADDRESS = "127.0.0.2"
#: AWS's minutes as test seconds for a stack verify starts (cooldowns, metric periods, deployments):
#: the one documented factor, so items 6 and 7 finish within the run
TIME_SCALE = 30.0


class TargetError(RuntimeError):
    """The target cannot be reached or started; the message says what to do."""


@dataclass
class Options:
    """The command's options that tune the checks."""

    duration_s: float = 45.0
    rate: float = 20.0
    seed: int = 20261126
    sync_timeout_s: float = 60.0
    records_per_user: int = 70  # item 2: more than a page (50) per user
    out_dir: Path = Path("reports/acceptance")
    root: Path = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    """The stack under check. ``local`` is False for a deployed stage (read-only items only)."""

    gateway_url: str
    edge_url: str | None
    region: str = "ap-southeast-1"
    local: bool = True
    log_dir: Path | None = None
    replicas: list[dict[str, Any]] = field(default_factory=list)
    vpc_cidrs: tuple[str, ...] = ()
    stack: Any = None  # harness.stack.stack.Stack when this run started it
    started_by_verify: bool = False
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A boto3 client on the stack's AWS endpoint."""
        if self.edge_url is None:
            raise TargetError("this target's AWS endpoint is not reachable")
        if service not in self._clients:
            from harness.stack.provision import aws_client

            self._clients[service] = aws_client(service, self.edge_url, self.region)
        return self._clients[service]

    def access_log(self) -> Path | None:
        """The gateway's access log file (one JSON object a line), where the stack keeps it."""
        return None if self.log_dir is None else self.log_dir / "gateway-access.log"

    def stop(self) -> None:
        """Stop the stack if this run started it."""
        if self.stack is not None and self.started_by_verify:
            self.stack.stop()
            self.stack = None


def remote(url: str) -> Target:
    """A deployed stage given by its invoke URL (``https://…/v1``)."""
    if not url.startswith(("http://", "https://")):
        raise TargetError(f"--target must be 'local' or an http(s) URL of a stage, not {url!r}")
    return Target(url.rstrip("/"), None, local=False)


def reachable(target: Target, timeout_s: float = 15.0) -> None:
    """TargetError naming the cause when the stage's URL cannot be connected to (a name that does
    not resolve, a refused connection, a timeout): nothing is checked against a stage not there.
    Any HTTP answer, even 403 (a caller outside the VPC), counts as reachable."""
    import httpx

    try:
        httpx.get(f"{target.gateway_url}/health", timeout=timeout_s)
    except httpx.TransportError as exc:
        raise TargetError(f"cannot reach {target.gateway_url}: {exc or type(exc).__name__}") from None


def running(state_dir: Path) -> Target | None:
    """The stack described by ``state_dir/state.json``, if its process still runs."""
    state = state_file.read(state_dir)
    if state is None or not state_file.alive(state):
        return None
    config = state.get("config", {})
    cidrs = _cidrs(config.get("allowed_source_cidrs", ""))
    return Target(
        str(state["gateway_url"]),
        str(state["edge_url"]),
        str(state.get("region", "ap-southeast-1")),
        log_dir=Path(state["log_dir"]),
        replicas=list(state.get("replicas", [])),
        vpc_cidrs=cidrs,
    )


def start(progress: Callable[[str], None], root: Path, state_dir: Path | None = None) -> Target:
    """Start a stack for this run (free ports, its own state directory, by default beside the
    report so its logs travel with it), VPC range 127.0.0.1/32."""
    from harness.stack.backends import BackendUnavailable
    from harness.stack.stack import Stack, StackConfig, StackError
    from harness.stack.terraform import InfraError

    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="verify-stack-"))
    else:
        shutil.rmtree(state_dir, ignore_errors=True)  # the previous run's logs
    _log_to(state_dir / "logs" / "harness.log")
    settings: dict[str, Any] = {
        "edge_port": 0,
        "gateway_port": 0,
        "state_dir": state_dir,
        "root": root,
        "allowed_source_cidrs": VERIFY_VPC_CIDRS,
    }
    if "time_scale" in {f.name for f in fields(StackConfig)}:
        settings["time_scale"] = TIME_SCALE  # where the stack has the ECS control plane's clock
    stack = Stack(StackConfig(**settings), progress=progress)
    try:
        stack.start()
    except (StackError, BackendUnavailable, InfraError) as exc:
        raise TargetError(f"could not start a stack for the run: {exc}") from exc
    state = stack.state()
    return Target(
        state["gateway_url"],
        state["edge_url"],
        state["region"],
        log_dir=Path(state["log_dir"]),
        replicas=state["replicas"],
        vpc_cidrs=VERIFY_VPC_CIDRS,
        stack=stack,
        started_by_verify=True,
    )


def replicas_now(target: Target) -> list[dict[str, Any]]:
    """The replicas as they are now (the stack object's view, else state.json's)."""
    if target.stack is not None:
        return list(target.stack.state()["replicas"])
    state = state_file.read(target.log_dir.parent) if target.log_dir is not None else None
    return list(state["replicas"]) if state is not None else target.replicas


def _cidrs(text: str) -> tuple[str, ...]:
    """``"('127.0.0.0/8', '::1/128')"`` (state.json keeps the config as text) -> the ranges."""
    return tuple(part.strip(" '\"") for part in text.strip("()[]").split(",") if part.strip(" '\""))


def _log_to(path: Path) -> None:
    """The in-process servers' and the stack's log lines go to a file, not the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def time_scale(target: Target) -> float:
    """The stack's time scale K (AWS's periods divided by K), 1 where the stack has none."""
    if target.stack is not None:
        state: dict[str, Any] | None = target.stack.state()
    else:
        state = state_file.read(target.log_dir.parent) if target.log_dir is not None else None
    try:
        return float((state or {}).get("time_scale", 1.0))
    except (TypeError, ValueError):
        return 1.0
