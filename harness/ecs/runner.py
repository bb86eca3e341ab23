"""Task processes: each ECS task is a replica forked from the service's zygote with its revision's
environment (see :mod:`harness.ingress.zygote`); here they are started, probed, measured, stopped."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.ecs.model import Task
from harness.ingress.replicas import free_port
from harness.ingress.zygote import ForkedProcess, Zygote, ZygoteError

__all__ = ["TaskRunner", "ZygoteError"]

logger = logging.getLogger(__name__)


class TaskRunner:
    """Starts a task's process and answers what the controller asks about it."""

    def __init__(
        self,
        app: str,
        *,
        base_env: Mapping[str, str],
        log_dir: Path,
        host: str = "127.0.0.1",
        app_dir: Path | None = None,
        python: str = sys.executable,
        start_timeout_s: float = 15.0,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.base_env = dict(base_env)
        #: set after the revision's environment (the harness's endpoint URL, region, credentials)
        self.overrides = dict(overrides or {})
        self.log_dir = log_dir
        self.host = host
        self._zygote = Zygote(
            app,
            env=self.base_env,
            python=python,
            app_dir=app_dir,
            log_path=log_dir / "zygote.log",
            start_timeout_s=start_timeout_s,
        )
        self._processes: dict[str, ForkedProcess] = {}

    def on_exit(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(pid, code)`` the moment a task process ends (event-driven, no polling)."""
        self._zygote.on_exit.append(callback)

    def start(self) -> None:
        """Start the zygote (it imports the service while the caller goes on)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._zygote.start()

    def stop(self, grace_s: float = 3.0) -> None:
        """Stop the zygote, which stops every task process still running."""
        self._zygote.stop(grace_s)

    def launch(self, task: Task) -> None:
        """Fork the task's process with its revision's environment (raises ZygoteError)."""
        port = free_port(self.host)
        task.log_path = self.log_dir / f"task-{task.id}.log"
        env = {**self.base_env, **task.revision.environment, **self.overrides}
        env["ECS_TASK_ARN"] = task.arn
        process = self._zygote.spawn(port, self.host, task.log_path, False, env)
        self._processes[task.id] = process
        task.pid, task.url = process.pid, f"http://{self.host}:{port}"
        logger.info("task %s (%s) pid=%d port=%d", task.id, task.revision.short, process.pid, port)

    def exit_code(self, task: Task) -> int | None:
        """The process's exit code (negative: killed by that signal), or None while it runs."""
        process = self._processes.get(task.id)
        return None if process is None else process.poll()

    def listening(self, task: Task) -> bool:
        """True once the task's port accepts connections (the container is running)."""
        if task.url is None:
            return False
        host, port = task.url.rsplit("/", 1)[-1].rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=0.2):
                return True
        except OSError:
            return False

    def rss_mib(self, task: Task) -> float | None:
        """The process's resident memory in MiB (None when it is gone)."""
        if task.pid is None:
            return None
        try:
            status = Path(f"/proc/{task.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def signal(self, task: Task, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the task's process (SIGTERM: ECS's stop; SIGKILL after stopTimeout)."""
        process = self._processes.get(task.id)
        if process is not None:
            process.send_signal(signum)

    def forget(self, task: Task) -> None:
        """Drop the handle of a stopped task."""
        self._processes.pop(task.id, None)
