"""Service replicas: the ECS service's tasks as uvicorn processes, replaced when they die."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Protocol

import httpx

from harness.ingress.zygote import Zygote, ZygoteError

__all__ = ["ReplicaInfo", "ReplicaSet", "ReplicaStartError"]

logger = logging.getLogger(__name__)

STARTING, HEALTHY, EXITED, STOPPED = "STARTING", "HEALTHY", "EXITED", "STOPPED"
LOG_TAIL_LINES = 20


class ReplicaStartError(RuntimeError):
    """A replica exited or failed its health check while starting."""


class ReplicaInfo(NamedTuple):
    """What the outside world sees of one replica."""

    id: str
    url: str
    pid: int
    state: str


class _Process(Protocol):
    """What a replica's process offers: a :class:`subprocess.Popen` or a zygote's child."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


@dataclass
class _Replica:
    id: str
    port: int
    process: _Process
    log_path: Path
    log_file: IO[bytes] | None  # None when the process opened its log itself
    state: str = STARTING


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file ('' if there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ReplicaSet:
    """``count`` uvicorn processes serving ``app``, kept at that count by a monitor thread."""

    def __init__(
        self,
        app: str = "service.app:create_app",
        *,
        count: int = 2,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        health_path: str = "/health",
        host: str = "127.0.0.1",
        log_dir: Path | None = None,
        python: str = sys.executable,
        app_dir: Path | None = None,
        start_timeout_s: float = 15.0,
        stop_grace_s: float = 3.0,
        factory: bool = True,
        access_log: bool = False,
        monitor_interval_s: float = 0.1,
        health_check_interval_s: float | None = None,
        health_check_retries: int = 3,
        health_check_timeout_s: float = 2.0,
        preload: bool = True,
    ) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.app = app
        self.env = dict(env or {})
        self.health_path = health_path
        self.host = host
        self.python = python
        self.app_dir = app_dir
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s
        self.factory = factory
        self.access_log = access_log
        self.monitor_interval_s = monitor_interval_s
        self.health_check_interval_s = health_check_interval_s
        self.health_check_retries = health_check_retries
        self.health_check_timeout_s = health_check_timeout_s
        self._failed_checks: dict[str, int] = {}
        self._inherit_env = inherit_env
        self._desired = count
        self._own_log_dir = log_dir is None
        self.log_dir = Path(tempfile.mkdtemp(prefix="replicas-")) if log_dir is None else log_dir
        self._ids = itertools.count(1)
        self._replicas: list[_Replica] = []
        self._lock = threading.RLock()
        self._scale_lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._listeners: list[Callable[[list[ReplicaInfo]], None]] = []
        self.last_error: str | None = None
        #: Fork replicas from one process that imported the app already (see harness.ingress.zygote);
        #: False: each replica is a fresh ``python -m uvicorn`` (the module must be a factory).
        self._zygote = (
            Zygote(
                app,
                env=self._environment(),
                python=python,
                app_dir=app_dir,
                log_path=self.log_dir / "zygote.log",
                start_timeout_s=start_timeout_s,
            )
            if preload and factory
            else None
        )

    # -- public surface -------------------------------------------------------------------
    @property
    def replicas(self) -> list[ReplicaInfo]:
        """Every live replica as (id, url, pid, state)."""
        with self._lock:
            return [ReplicaInfo(r.id, self._url(r), r.process.pid, r.state) for r in self._replicas]

    def target_urls(self) -> list[str]:
        """URLs of the replicas that passed their health check (the load balancer's targets)."""
        with self._lock:
            return [self._url(r) for r in self._replicas if r.state == HEALTHY]

    def log_path(self, replica_id: str) -> Path:
        """The log file of a replica (kept after the replica is gone)."""
        return self.log_dir / f"{replica_id}.log"

    def add_listener(self, callback: Callable[[list[ReplicaInfo]], None]) -> None:
        """Call ``callback(replicas)`` from the monitor thread whenever the replica list changes."""
        self._listeners.append(callback)

    def start(self) -> ReplicaSet:
        """Start ``count`` replicas, wait until each is healthy, then watch them."""
        self._stopping.clear()
        if self._zygote is not None:
            self._zygote.start()
        try:
            self._scale_to(self._desired)
        except BaseException:
            self.stop()
            raise
        self._monitor = threading.Thread(target=self._watch, name="replica-monitor", daemon=True)
        self._monitor.start()
        return self

    def scale(self, count: int) -> None:
        """Change the desired count: start new replicas or stop the newest ones."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self._desired = count
        self._scale_to(count)

    def stop(self) -> None:
        """Stop the monitor and every replica (SIGTERM, then SIGKILL after the grace period)."""
        self._stopping.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=self.start_timeout_s + 5.0)
        self._monitor = None
        with self._lock:
            victims, self._replicas = self._replicas, []
        self._terminate(victims)
        if self._zygote is not None:
            self._zygote.stop(self.stop_grace_s)
        if victims:
            self._notify()
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------
    def _url(self, replica: _Replica) -> str:
        return f"http://{self.host}:{replica.port}"

    def _scale_to(self, count: int) -> None:
        with self._scale_lock:
            with self._lock:
                surplus = self._replicas[count:]
                self._replicas = self._replicas[:count]
                missing = count - len(self._replicas)
            if surplus:
                self._notify()
                self._terminate(surplus)
            if missing > 0:
                self._start_many(missing)

    def _start_many(self, count: int, attempts: int = 3) -> None:
        """Spawn ``count`` replicas at once, then wait for each to be healthy."""
        pending = [self._spawn() for _ in range(count)]
        with self._lock:
            self._replicas.extend(pending)
        errors: list[ReplicaStartError] = []
        for replica in pending:
            for attempt in range(1, attempts + 1):
                try:
                    self._wait_healthy(replica)
                    break
                except ReplicaStartError as exc:
                    # the free port was taken between choosing it and uvicorn binding it
                    if "address already in use" not in str(exc).lower() or attempt == attempts:
                        errors.append(exc)
                        break
                    replica = self._spawn()
                    with self._lock:
                        self._replicas.append(replica)
        self._notify()
        if errors:
            raise errors[0]

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env} if self._inherit_env else dict(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _spawn(self) -> _Replica:
        replica_id = f"replica-{next(self._ids)}"
        port = free_port(self.host)
        log_path = self.log_path(replica_id)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._zygote is not None:
            try:
                forked = self._zygote.spawn(port, self.host, log_path, self.access_log)
            except ZygoteError as exc:
                raise ReplicaStartError(f"replica {replica_id}: {exc}") from exc
            logger.info("forked %s pid=%d port=%d", replica_id, forked.pid, port)
            return _Replica(replica_id, port, forked, log_path, None)
        log_file = log_path.open("ab")
        command = [self.python, "-m", "uvicorn", self.app, "--host", self.host, "--port", str(port)]
        if self.factory:
            command.append("--factory")
        if not self.access_log:
            command.append("--no-access-log")
        if self.app_dir is not None:
            command += ["--app-dir", str(self.app_dir)]
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._environment(),
        )
        logger.info("started %s pid=%d port=%d", replica_id, process.pid, port)
        return _Replica(replica_id, port, process, log_path, log_file)

    def _wait_healthy(self, replica: _Replica) -> None:
        url = self._url(replica) + self.health_path
        deadline = time.monotonic() + self.start_timeout_s
        last = "no answer"
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and not self._stopping.is_set():
                if replica.process.poll() is not None:
                    last = f"process exited with code {replica.process.returncode}"
                    break
                try:
                    status = client.get(url).status_code
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if status == 200:
                        replica.state = HEALTHY
                        return
                    last = f"GET {self.health_path} answered {status}"
                time.sleep(0.05)
            else:
                if not self._stopping.is_set():
                    last = f"not healthy after {self.start_timeout_s:g} s ({last})"
        with self._lock:
            if replica in self._replicas:
                self._replicas.remove(replica)
        log_tail = tail(replica.log_path)
        self._terminate([replica])
        message = (
            f"replica {replica.id} ({self.app} on port {replica.port}) failed its health check "
            f"GET {self.health_path}: {last}\n--- last lines of {replica.log_path} ---\n"
            f"{log_tail}"
        )
        raise ReplicaStartError(message)

    def _terminate(self, replicas: list[_Replica]) -> None:
        for replica in replicas:
            replica.state = STOPPED
            if replica.process.poll() is None:
                replica.process.terminate()
        deadline = time.monotonic() + self.stop_grace_s
        for replica in replicas:
            try:
                replica.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM; sending SIGKILL", replica.id)
                replica.process.kill()
                replica.process.wait()
            if replica.log_file is not None:
                replica.log_file.close()

    def _notify(self) -> None:
        snapshot = self.replicas
        for callback in list(self._listeners):
            try:
                callback(snapshot)
            except Exception:
                logger.exception("replica listener %r failed", callback)

    def _check_health(self, client: httpx.Client) -> None:
        """The task definition's container health check: kill a replica failing ``retries``."""
        with self._lock:
            healthy = [r for r in self._replicas if r.state == HEALTHY]
        for replica in healthy:
            try:
                ok = client.get(self._url(replica) + self.health_path).status_code == 200
            except httpx.TransportError:
                ok = False
            failures = 0 if ok else self._failed_checks.get(replica.id, 0) + 1
            self._failed_checks[replica.id] = failures
            if failures >= self.health_check_retries and replica.process.poll() is None:
                logger.warning("%s failed %d health checks; killing it", replica.id, failures)
                replica.process.kill()

    def _watch(self) -> None:
        with httpx.Client(timeout=self.health_check_timeout_s) as client:
            self._watch_with(client)

    def _watch_with(self, client: httpx.Client) -> None:
        backoff = 0.5
        next_check = time.monotonic()
        while not self._stopping.wait(self.monitor_interval_s):
            if self.health_check_interval_s and time.monotonic() >= next_check:
                self._check_health(client)
                next_check = time.monotonic() + self.health_check_interval_s
            with self._lock:
                dead = [r for r in self._replicas if r.process.poll() is not None]
                for replica in dead:
                    self._replicas.remove(replica)
                    replica.state = EXITED
            for replica in dead:
                logger.warning(
                    "%s (pid %d) exited with code %s; replacing it",
                    replica.id,
                    replica.process.pid,
                    replica.process.returncode,
                )
                if replica.log_file is not None:
                    replica.log_file.close()
            if dead:
                self._notify()
            try:
                self._scale_to(self._desired)
            except ReplicaStartError as exc:
                self.last_error = str(exc)
                logger.error("replacement replica failed; retrying in %.1f s: %s", backoff, exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.5
