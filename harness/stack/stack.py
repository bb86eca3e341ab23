"""The whole V3 stack on one machine: backend, provisioning, seed, replicas, load balancer, gateway."""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.stack.backends import Backend, BackendUnavailable, docker_available, make_backend
from harness.stack.infra import ROOT, Infra, load_infra_cached
from harness.stack.project import code_dir, find_state_dir
from harness.stack.serving import start_gateway, task_environment
from harness.stack.steps import Step, record_time, timing

if TYPE_CHECKING:  # imported where used: the endpoint is launched before they load (~0.35 s)
    from harness.ingress.gateway import Gateway
    from harness.ingress.load_balancer import LoadBalancer
    from harness.stack.ecs_service import EcsService
    from harness.stack.telemetry import Telemetry

logger = logging.getLogger("harness.stack.stack")
Progress = Callable[[str], None]


class StackError(RuntimeError):
    """The stack could not come up; the message says what failed and what to do."""


@dataclass
class StackConfig:
    """How to bring the stack up (the CLI's options)."""

    backend: str = "embedded"
    edge_port: int = 4566
    gateway_port: int = 8080
    replicas: int | None = None  # None: the ECS service's desiredCount
    endpoint_url: str | None = None  # an already running LocalStack
    region: str = "ap-southeast-1"
    seed: bool = True
    root: Path = ROOT
    state_dir: Path = field(default_factory=find_state_dir)
    allowed_source_cidrs: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    time_scale: float = 1.0  # AWS periods divided by this (harness.ecs.timescale): one K for all
    enforce_iam: bool = False  # the embedded endpoint decides every request with IAM (9a)


def ensure_port_free(port: int, what: str, flag: str) -> None:
    """Fail early, and clearly, when a fixed port is taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"port {port} ({what}) is already in use: is a stack already up? Run "
                f"'query-harness down', or pick another port with {flag} (0 = any free port)."
            ) from None


class Stack:
    """Brings the system up in dependency order and tears it down in reverse."""

    def __init__(self, config: StackConfig | None = None, progress: Progress | None = None) -> None:
        self.config = config or StackConfig()
        self.progress = progress or (lambda message: logger.info("%s", message))
        self.backend: Backend | None = None
        self.infra: Infra | None = None
        self.ecs: EcsService | None = None
        self.load_balancer: LoadBalancer | None = None
        self.gateway: Gateway | None = None
        self.telemetry: Telemetry | None = None
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self.log_dir = self.config.state_dir / "logs"
        self._telemetry_lock = threading.Lock()
        self._stopped = False
        # what a query through the gateway needs: the functions, and healthy tasks behind it
        self._functions_made = threading.Event()
        self._tasks_serving = threading.Event()

    @property
    def replicas(self) -> EcsService | None:
        """The service's tasks, listed as replicas (``stack.replicas.replicas``), for callers
        written before the ECS service ran them."""
        return self.ecs

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Stack:
        """Start everything; on any failure, stop what was started and raise StackError."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _timed(self, name: str, started: float) -> None:
        record_time(self.timings, name, started)

    def _start(self) -> None:
        cfg = self.config
        self._t0 = t0 = time.perf_counter()
        self._stopped = False
        from harness.ecs.timescale import TimeScale  # noqa: PLC0415

        # One factor for every part: the endpoint and the tasks inherit it (TimeScale.from_env()).
        os.environ.update(TimeScale(cfg.time_scale).export())
        if cfg.enforce_iam:  # the embedded endpoint reads it (harness.aws.iam_enforcement)
            os.environ["HARNESS_ENFORCE_IAM"] = "1"
        if cfg.backend == "embedded" and not cfg.endpoint_url:
            ensure_port_free(cfg.edge_port, "AWS endpoint", "--edge-port")
        ensure_port_free(cfg.gateway_port, "gateway", "--gateway-port")
        if cfg.backend == "localstack" and not cfg.endpoint_url and not docker_available():
            raise BackendUnavailable(
                "no Docker engine is reachable; the localstack backend needs one. "
                "Use --backend embedded, or give a running LocalStack with --endpoint-url."
            )
        # An external endpoint's needs are known once it answered (see identify_endpoint).
        vendor_dir = None if cfg.endpoint_url else self._vendor_dir()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if cfg.endpoint_url:
            self.progress(f"checking the AWS endpoint at {cfg.endpoint_url}")
        else:
            self.progress(f"starting the {cfg.backend} backend")
        self.backend = backend = make_backend(
            cfg.backend,
            edge_port=cfg.edge_port,
            endpoint_url=cfg.endpoint_url,
            region=cfg.region,
            log_dir=self.log_dir,
            cache_dir=cfg.state_dir / "cache",
        )
        launch = getattr(backend, "launch", None)
        # The embedded endpoint boots in its own process while infra/ is read and replicas start.
        edge = launch() if launch is not None else None
        if edge is None:
            backend.start()
            edge = backend.endpoint_url
        if cfg.endpoint_url:
            vendor_dir = self._vendor_dir()
            self.progress(f"the AWS endpoint answers: {getattr(backend, 'kind', '?')}")
        self._timed("backend_launch", t0)

        t = time.perf_counter()
        account = getattr(backend, "account_id", None)
        from harness.stack.ecs_service import EcsService  # noqa: PLC0415
        from harness.stack.provision import (  # noqa: PLC0415 - see the top
            Provisioner,
            aws_client,
            new_session,
        )

        # One boto3 session for provisioning and telemetry: botocore's endpoint data and each
        # service's model are read once (aws_client makes one client at a time from it).
        session = new_session()
        if account is None:
            account = aws_client("sts", edge, cfg.region, session).get_caller_identity()["Account"]
        self.infra = infra = load_infra_cached(
            cfg.root, region=cfg.region, account_id=account, cache_dir=cfg.state_dir / "cache"
        )
        self._timed("infra", t)
        from harness.stack.telemetry import Telemetry, ecs_tasks  # noqa: PLC0415

        # metrics, task logs, autoscaling and the task role's credentials (telemetry.py)
        self.telemetry = Telemetry(
            infra, edge, cfg.region, time_scale=cfg.time_scale, session=session
        )

        # The ECS service's tasks boot (separate processes) while the AWS side is provisioned.
        self.ecs = EcsService(
            infra,
            env={
                **task_environment(infra, edge, cfg.region, cfg.root),
                **self.telemetry.task_environment(),
            },
            log_dir=self.log_dir,
            root=code_dir(cfg.root),  # where the service's code is (the checkout, or site-packages)
            time_scale=TimeScale(cfg.time_scale),
            desired_count=cfg.replicas,
        )
        self.telemetry.watch_tasks(ecs_tasks(self.ecs.controller))
        # replicas, then the load balancer and gateway
        serving = Step("serving-start", functools.partial(self._start_serving, infra, account))
        serving.start()

        # Clients and the Lambda zip are made while the endpoint boots.
        provisioner = Provisioner(
            infra, edge, progress=self.progress, vendor_dir=vendor_dir, session=session
        )
        provisioner.prepare()
        if launch is not None:
            backend.wait_ready()  # type: ignore[attr-defined]
        self._timed("backend", t0)
        self.progress(f"AWS endpoint ready on {edge}")

        t = time.perf_counter()
        provisioner.apply_resources()
        self._functions_made.set()
        # The ECS objects and the REST API are only described on the endpoint (the harness serves
        # them itself): they are made while the mapping's first Lambda environment starts and the
        # seed travels the stream (mostly a Lambda's work, in its own process), not beside the
        # tables and functions, which the seed waits for.
        control = Step(
            "provision-control-plane",
            timing(
                self.timings,
                "provision_control_plane",
                functools.partial(self._control_plane, provisioner, edge, serving),
            ),
        )
        control.start()
        # CreateEventSourceMapping answers Creating at once; the function's first environment,
        # then the poller, start in the endpoint, and provisioning waits for Enabled as
        # Terraform does (~1 s on 2 cores). A mapping that starts at TRIM_HORIZON (infra/)
        # reads the stream from its oldest record, as on AWS, so the seed is written and
        # followed meanwhile, and the mappings are seen Enabled after it (no polls of both).
        early = cfg.seed and all(
            m.settings.get("StartingPosition") == "TRIM_HORIZON" for m in infra.mappings
        )
        mappings = Step(
            "provision-mappings", functools.partial(self._mappings, provisioner, not early)
        )
        provision_started = t

        def mappings_made() -> None:
            mappings.result()
            self._timed("provision", provision_started)

        mappings.start()
        if not early:
            mappings_made()
        if cfg.seed:
            t = time.perf_counter()
            from harness.stack.commands import (  # noqa: PLC0415
                SyncTimeout,
                load_seed,
                seed,
                seed_file,
            )

            since_ms = int(time.time() * 1000)
            try:
                count_seeded = seed(
                    provisioner.client("dynamodb"),
                    load_seed(seed_file(cfg.root)),
                    after_write=mappings_made if early else None,
                )
            except SyncTimeout as exc:
                message = f"the seed did not sync: {exc}"
                raise StackError(
                    self._with_function_errors(message, provisioner, since_ms)
                ) from None
            self._timed("seed", t)
            self.progress(f"seeded {count_seeded} command records; all reached the read side")
        if early:
            provisioner.wait_mappings()  # Enabled by now: the seed went through them
        self._timed("mappings_enabled", t0)
        control.result()
        serving.join()
        if serving.error is not None:
            raise StackError(str(serving.error)) from serving.error
        assert self.gateway is not None
        self._timed("total", t0)
        self.progress(f"gateway ready on {self.gateway.stage_url}")

    def _mappings(self, provisioner: Any, wait: bool) -> None:
        provisioner.apply_mappings(wait=wait)
        if self.config.endpoint_url:  # code built elsewhere may not load there: say so now
            self._check_functions(provisioner)

    def wait_queryable(self, timeout_s: float) -> bool:
        """Block until a query through the gateway can be answered (the gateway serves, the
        tasks are healthy, the functions exist), while :meth:`start` still seeds; False if not
        within ``timeout_s``. Lets a caller probe the read path beside the seed."""
        deadline = time.monotonic() + timeout_s
        return self._tasks_serving.wait(timeout_s) and self._functions_made.wait(
            max(0.0, deadline - time.monotonic())
        )

    def _control_plane(self, provisioner: Any, edge: str, serving: Step) -> None:
        """The ECS objects and the REST API on the endpoint; then, on the embedded endpoint,
        ``aws ecs ...`` there drives the tasks (the service exists on it first); then, once the
        gateway exists, telemetry (its autoscaler needs the ECS service on the endpoint)."""
        provisioner.apply_control_plane()
        cfg = self.config
        if cfg.backend == "embedded" and not cfg.endpoint_url:
            assert self.ecs is not None
            self.ecs.serve_api(edge, os.environ.get("AWS_ACCESS_KEY_ID", "test"))
        serving.join()
        with self._telemetry_lock:  # not after stop() (a failed start stops what it started)
            if self.gateway is not None and self.telemetry is not None and not self._stopped:
                self.telemetry.start()

    def _start_serving(self, infra: Infra, account: str) -> None:
        """ECS tasks, then the load balancer and the gateway in front of them (a thread of its
        own, while the AWS side is provisioned and seeded)."""
        assert self.ecs is not None
        self.ecs.start()  # the load balancer is up; the tasks boot while the gateway starts
        self.load_balancer = self.ecs.load_balancer
        assert self.load_balancer is not None
        self.gateway = start_gateway(
            infra, self.load_balancer, self.telemetry, self.config, account, self.log_dir
        )
        self._timed("gateway_ready", self._t0)
        self.ecs.wait_healthy()
        self._timed("replicas_healthy", self._t0)
        self.ecs.wait_steady()
        self._timed("service_steady", self._t0)
        self._tasks_serving.set()
        self.progress(
            f"{len(self.load_balancer.healthy_targets())} ECS tasks healthy "
            f"({self.ecs.scale.describe()})"
        )

    def _check_functions(self, provisioner: Any) -> None:
        """Fail now, with AWS's error, when a function's code cannot load on the endpoint."""
        from harness.stack.health import function_start_errors  # noqa: PLC0415

        assert self.infra is not None
        names = [function.name for function in self.infra.functions]
        problems = function_start_errors(provisioner.client("lambda"), names)
        if problems:
            raise StackError(
                "a Lambda function cannot start on the endpoint: " + "; ".join(problems)
            )

    def _with_function_errors(self, message: str, provisioner: Any, since_ms: int) -> str:
        """``message``, plus what the functions logged as errors since ``since_ms``."""
        from harness.stack.health import function_log_errors  # noqa: PLC0415

        assert self.infra is not None
        logged = [
            f"{function.name}: {line}"
            for function in self.infra.functions
            for line in function_log_errors(provisioner.client("logs"), function.name, since_ms)
        ]
        return message + (" — the functions logged: " + " | ".join(logged) if logged else "")

    def _vendor_dir(self) -> Path | None:
        """Dependencies to ship in the Lambda zip: none on the embedded runtime, built ones elsewhere."""
        if self.config.backend == "embedded" and not self.config.endpoint_url:
            return None
        if getattr(self.backend, "kind", None) == "harness":
            return None  # this project's endpoint (python -m harness.endpoint) runs them locally
        vendor = self.config.root / "build" / "lambda-deps"
        if not vendor.is_dir():
            raise StackError(
                "LocalStack runs the Lambdas in its own python3.12 containers, which need their "
                f"dependencies: build them once with 'make lambda-package' (into {vendor})."
            )
        return vendor

    def stop(self) -> None:
        """Tear down in reverse order; safe to call twice or after a failed start."""
        with self._telemetry_lock:
            self._stopped = True
            if self.telemetry is not None:  # first: it sends what it holds to the endpoint
                self.telemetry.stop()
                self.telemetry = None
        parts = [
            (name, getattr(self, name))
            for name in ("gateway", "ecs", "backend")
        ]
        # Nothing is served any more, so the parts stop in parallel (each waits on its own I/O).
        threads = [
            threading.Thread(target=self._stop_part, args=(name, part), name=f"stop-{name}")
            for name, part in parts
            if part is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.gateway = self.load_balancer = self.ecs = self.backend = None

    @staticmethod
    def _stop_part(name: str, part: Any) -> None:
        started = time.perf_counter()
        try:
            part.stop()
        except Exception:  # keep tearing down the rest, but say what failed
            logger.exception("stopping the %s failed", name)
        logger.info("stopped the %s in %.3f s", name, time.perf_counter() - started)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what is where

    def state(self) -> dict[str, Any]:
        """Where everything is, as written to ``.harness/state.json``."""
        assert self.backend is not None and self.gateway is not None and self.ecs is not None
        assert self.load_balancer is not None
        ecs = self.ecs.state()
        telemetry = self.telemetry
        measured = telemetry.ecs_metrics.last if telemetry and telemetry.ecs_metrics else {}
        for task in ecs["tasks"]:  # AWS/ECS utilisation of each task, as last measured
            task["cpu_percent"], task["memory_percent"] = measured.get(task["id"], (None, None))
        return {
            "pid": os.getpid(),
            "backend": self.config.backend,
            "edge_url": self.backend.endpoint_url,
            "gateway_url": self.gateway.stage_url,
            "load_balancer_url": self.load_balancer.url,
            "replicas": [  # the ECS tasks, as the status table shows them
                {
                    "id": t["id"][:12],
                    "url": t["url"],
                    "pid": t["pid"],
                    "state": "HEALTHY" if t["health"] == "HEALTHY" else t["last_status"],
                }
                for t in ecs["tasks"]
                if t["url"] and t["last_status"] == "RUNNING"
            ],
            "ecs": ecs,
            "region": self.config.region,
            "time_scale": self.config.time_scale,
            "log_dir": str(self.log_dir.resolve()),
            "timings_s": self.timings,
            "python": sys.executable,
            "config": {k: str(v) for k, v in asdict(self.config).items()},
        }
