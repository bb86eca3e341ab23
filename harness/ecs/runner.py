"""Task processes: each ECS task is a replica forked from the service's zygote with its revision's
environment (see :mod:`harness.ingress.zygote`); here they are started, probed, measured, stopped."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.ecs.model import Task
from harness.ingress.replicas import free_port
from harness.ingress.zygote import ForkedProcess, Zygote, ZygoteError

__all__ = ["TaskRunner", "ZygoteError"]

logger = logging.getLogger(__name__)

#: The AWS services the query service's tasks make clients for (service/invoker.py: Lambda),
#: whose botocore models the zygote reads once for every task it forks.
SERVICE_AWS_MODELS = ("lambda",)


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
        boto3_models: tuple[str, ...] = SERVICE_AWS_MODELS,
    ) -> None:
        self.base_env = dict(base_env)
        #: set after the revision's environment (the harness's endpoint URL, region, credentials)
        self.overrides = dict(overrides or {})
        self.log_dir = log_dir
        self.host = host
        self.python = python
        self.app_dir = app_dir
        self._zygote = Zygote(
            app,
            env=self.base_env,
            python=python,
            app_dir=app_dir,
            log_path=log_dir / "zygote.log",
            start_timeout_s=start_timeout_s,
            boto3_models=boto3_models,
        )
        self._processes: dict[str, ForkedProcess | subprocess.Popen[bytes]] = {}

    def on_exit(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(pid, code)`` the moment a task process ends (event-driven, no polling)."""
        self._zygote.on_exit.append(callback)

    def start(self) -> None:
        """Start the zygote (it imports the service while the caller goes on)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._zygote.start()

    def stop(self, grace_s: float = 3.0) -> None:
        """Stop every task process still running (the zygote stops its own children)."""
        own = [p for p in self._processes.values() if isinstance(p, subprocess.Popen)]
        for process in own:
            if process.poll() is None:
                process.terminate()
        for process in own:
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._zygote.stop(grace_s)

    def launch(self, task: Task) -> None:
        """Start the task's process with its revision's environment (raises ZygoteError).

        Without ``entryPoint``/``command`` the task is forked from the zygote (the image's default
        command, ``python -m service``, already imported); with them, ``entryPoint + command`` runs
        as a process of its own (``python`` is this interpreter), told its port in ``PORT`` and
        ``HOST``, as the image's container port is 8000 on every task on AWS.
        """
        port = free_port(self.host)
        task.log_path = self.log_dir / f"task-{task.id}.log"
        env = {**self.base_env, **task.revision.environment, **self.overrides}
        env.update({"ECS_TASK_ARN": task.arn, "PORT": str(port), "HOST": self.host})
        argv = [*(task.revision.entry_point or []), *(task.revision.command or [])]
        process: ForkedProcess | subprocess.Popen[bytes]
        if argv:
            if argv[0] in ("python", "python3"):
                argv[0] = self.python
            with task.log_path.open("ab") as log:
                try:
                    process = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=self.app_dir,
                    )
                except OSError as exc:
                    raise ZygoteError(f"cannot run {argv[0]}: {exc.strerror}") from exc
        else:
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
        if process is not None and process.poll() is None:
            try:
                process.send_signal(signum)
            except ProcessLookupError:
                pass

    def forget(self, task: Task) -> None:
        """Drop the handle of a stopped task (kept while its process runs: stop() ends it)."""
        process = self._processes.get(task.id)
        if process is not None and process.poll() is not None:
            del self._processes[task.id]
