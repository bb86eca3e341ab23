"""The harness's Lambda runtime: warm worker processes per function, AWS Invoke semantics.

No HTTP here: the endpoint (Invoke API) and the stream poller call :class:`LambdaRuntime`.
Workers run ``harness/lambda_runtime/worker.py`` under ``python`` (default: the current interpreter,
so the project's virtualenv -- boto3, powertools -- is importable; pass ``python3.12`` to match
the Lambda runtime when one with the needed packages is installed).

Choices where AWS leaves room: an empty payload is the event ``{}``; ``context.identity`` is a
CognitoIdentity with both fields None (as AWS's Python runtime gives); ``memory_mb`` is reported,
not enforced; warm workers live until the function is updated/unregistered or ``close()``.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import math
import os
import queue
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.lambda_runtime.concurrency import account_concurrency
from harness.lambda_runtime.config import FunctionConfig
from harness.lambda_runtime.environment import Outcome, Worker
from harness.lambda_runtime.forkserver import ForkServer
from harness.lambda_runtime.invocation import (
    EVENT_PAYLOAD_LIMIT,
    SYNC_PAYLOAD_LIMIT,
    InvalidRequestContent,
    InvokeResult,
    LambdaRuntimeError,
    RequestTooLarge,
    ResourceNotFound,
    TooManyRequests,
    decoded_client_context,
    result_too_large,
    validated_event,
)

__all__ = [
    "RESERVED_ENVIRONMENT_KEYS",
    "FunctionConfig",
    "InvalidRequestContent",
    "InvokeHook",
    "InvokeResult",
    "LambdaRuntime",
    "LambdaRuntimeError",
    "LogSink",
    "RequestTooLarge",
    "ResourceNotFound",
    "TooManyRequests",
]

LOGGER = logging.getLogger(__name__)
EVENT_MAX_AGE_S = 6 * 60 * 60  # AWS's default MaximumEventAgeInSeconds
TAIL_BYTES = 4096
#: Invocations' log lines are delivered in batches: the log thread waits this long after the
#: first queued invocation, then sends everything queued with one sink call per function. On
#: AWS a function's logs arrive later still ("It might take 5 to 10 minutes for logs to show up
#: after a function invocation", the Lambda developer guide, "Sending Lambda function logs to
#: CloudWatch Logs"); one PutLogEvents per invocation was ~40 us of fixed cost each.
LOG_FLUSH_S = 0.05
LOG_BATCH_MAX = 200
RESERVED_ENVIRONMENT_KEYS = frozenset(
    """
    _HANDLER _X_AMZN_TRACE_ID AWS_DEFAULT_REGION AWS_REGION AWS_EXECUTION_ENV
    AWS_LAMBDA_FUNCTION_NAME AWS_LAMBDA_FUNCTION_MEMORY_SIZE AWS_LAMBDA_FUNCTION_VERSION
    AWS_LAMBDA_INITIALIZATION_TYPE AWS_LAMBDA_LOG_GROUP_NAME AWS_LAMBDA_LOG_STREAM_NAME
    AWS_ACCESS_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
    AWS_LAMBDA_RUNTIME_API LAMBDA_TASK_ROOT LAMBDA_RUNTIME_DIR
    """.split()
)  # variables a function may not set (CreateFunction rejects them)

LogSink = Callable[[str, list[str]], None]
#: Runs one invocation on a warm worker instead of ``Worker.invoke`` (harness.faults sets one).
InvokeHook = Callable[[Worker, str, bytes, bytes], Outcome]


class _Pool:
    """Warm workers of one function version; grows on demand up to its concurrency limit."""

    def __init__(self, config: FunctionConfig, limit: int) -> None:
        self.config = config
        self.limit = limit
        self.reserved = config.reserved_concurrency is not None
        self.lock = threading.Lock()
        self.idle: list[Worker] = []
        self.count = 0
        self.retired = False


@dataclass(order=True)
class _EventItem:
    due: float
    seq: int
    name: str = field(compare=False)
    event: bytes = field(compare=False)
    client_context: Any = field(compare=False)
    request_id: str = field(compare=False)
    generation: int = field(compare=False, default=0)
    attempt: int = field(compare=False, default=0)
    enqueued: float = field(compare=False, default_factory=time.monotonic)


class LambdaRuntime:
    """Runs registered functions in warm worker processes with AWS Invoke semantics."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        log_sink: LogSink | None = None,
        max_concurrency: int | None = None,
        python: str | None = None,
        aws_access_key_id: str = "test",
        aws_secret_access_key: str = "test",
        event_retry_delays_s: Sequence[float] = (60.0, 120.0),
        event_throttle_delay_s: float = 1.0,
        role_credentials: Callable[[str, str], dict[str, str]] | None = None,
        fork: bool = True,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        #: the account limit (concurrency.py: AWS's 1,000 unless given, capped by the machine)
        self.max_concurrency = max_concurrency = account_concurrency(max_concurrency)
        self._unreserved_busy = 0  # executions of functions without reserved concurrency
        self.python = python or sys.executable
        self._credentials = (aws_access_key_id, aws_secret_access_key)
        #: (role ARN, function name) -> the execution role's session variables (harness.iam)
        self._role_credentials = role_credentials
        self._log_sink = log_sink
        self._retry_delays = tuple(event_retry_delays_s)
        self._throttle_delay = event_throttle_delay_s
        self.invoke_hook: InvokeHook | None = None
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._live: set[Worker] = set()
        self._closed = False
        # environments are forked from a process that imported the heavy libraries once
        self._forks = ForkServer(self.python, self._base_environment()) if fork else None
        self._logs: queue.SimpleQueue[tuple[str, list[str]] | None] = queue.SimpleQueue()
        self._log_thread = threading.Thread(
            target=self._deliver_logs, name="lambda-logs", daemon=True
        )
        self._log_thread.start()
        self._events: list[_EventItem] = []
        self._event_seq = itertools.count()
        self._event_cond = threading.Condition()
        self._events_pending = 0
        self._generation = 0  # bumped by reset(): older Event invocations and retries are dropped
        self._executor = ThreadPoolExecutor(max(max_concurrency, 1), "lambda-event")
        self._dispatcher = threading.Thread(
            target=self._dispatch_events, name="lambda-events", daemon=True
        )
        self._dispatcher.start()

    # -- functions ---------------------------------------------------------------------------

    def register(self, config: FunctionConfig) -> None:
        """Create or update a function; warm workers of the old version are replaced."""
        limit = self.max_concurrency
        if config.reserved_concurrency is not None:
            limit = min(limit, config.reserved_concurrency)
        with self._lock:
            self._check_open()
            old = self._pools.get(config.arn)
            self._pools[config.arn] = _Pool(config, limit)
        if self._forks is not None:
            self._forks.start(str(config.code_dir))  # imports while the caller goes on
        if old is not None:
            self._retire(old)

    def unregister(self, function: str) -> None:
        """Forget a function (by ARN, or by name in the runtime's region) and stop its workers."""
        with self._lock:
            key = self._key(function)
            pool = self._pools.pop(key, None) if key is not None else None
        if pool is None:
            raise ResourceNotFound(f"Function not found: {function}")
        self._retire(pool)

    def functions(self) -> list[str]:
        """Names of the registered functions."""
        with self._lock:
            return sorted(pool.config.name for pool in self._pools.values())

    def config(self, function: str) -> FunctionConfig | None:
        """A registered function's configuration (by ARN or name), or None."""
        with self._lock:
            key = self._key(function)
            return self._pools[key].config if key is not None else None

    def _key(self, function: str) -> str | None:
        """The ARN a function is registered under: an ARN as given; a bare name resolves to the
        function of that name in the runtime's region (else the only one of that name)."""
        if function in self._pools:
            return function
        named = [arn for arn, pool in self._pools.items() if pool.config.name == function]
        home = [arn for arn in named if _region_of(arn) == self.region]
        found = home or named
        return found[0] if len(found) == 1 else None

    # -- invoke ------------------------------------------------------------------------------

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        client_context: str | None = None,
        tail: bool = False,
    ) -> InvokeResult:
        """Invoke a function (ARN, or name in the runtime's region) as the Invoke API does."""
        pool = self._pool(name)
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, None, request_id=request_id)
        if invocation_type not in ("RequestResponse", "Event"):
            raise InvalidRequestContent(
                f"Invalid invocation type {invocation_type!r}: "
                "expected RequestResponse, Event or DryRun"
            )
        limit = SYNC_PAYLOAD_LIMIT if invocation_type == "RequestResponse" else EVENT_PAYLOAD_LIMIT
        event = validated_event(payload, limit)
        context = decoded_client_context(client_context)
        if invocation_type == "Event":
            item = _EventItem(0.0, 0, pool.config.arn, event, context, request_id,
                              generation=self._generation)
            self._enqueue(item, new=True)
            return InvokeResult(202, b"", None, None, request_id=request_id)
        outcome = self._run(pool, request_id, event, context)
        lines = self._log_lines(pool.config, request_id, outcome)
        log_result = None
        if tail:
            text = ("\n".join(lines) + "\n").encode("utf-8")
            log_result = base64.b64encode(text[-TAIL_BYTES:]).decode("ascii")
        return InvokeResult(
            200,
            outcome.payload,
            None if outcome.ok else "Unhandled",
            log_result,
            request_id=request_id,
        )

    def _pool(self, name: str) -> _Pool:
        with self._lock:
            self._check_open()
            key = self._key(name)
            pool = self._pools.get(key) if key is not None else None
        if pool is None:
            raise ResourceNotFound(f"Function not found: {name}")
        return pool

    def _run(self, pool: _Pool, request_id: str, event: bytes, context: Any) -> Outcome:
        if not pool.reserved:
            self._enter_unreserved()
        try:
            worker = self._acquire(pool)
            config = pool.config
            deadline_ms = int(time.time() * 1000 + config.timeout_s * 1000)
            header = json.dumps(
                {"id": request_id, "deadline_ms": deadline_ms, "arn": config.arn, "cc": context}
            ).encode()
            hook = self.invoke_hook
            outcome = (
                worker.invoke(request_id, header, event)
                if hook is None
                else hook(worker, request_id, header, event)
            )
            self._release(pool, worker, outcome.reusable)
        finally:
            if not pool.reserved:
                with self._lock:
                    self._unreserved_busy -= 1
        return outcome

    def _enter_unreserved(self) -> None:
        """Count one execution against the account's unreserved concurrency, or throttle.

        AWS: functions without reserved concurrency share the account limit minus what the
        others reserved; beyond it, ConcurrentInvocationLimitExceeded.
        """
        with self._lock:
            reserved = sum(
                p.config.reserved_concurrency or 0 for p in self._pools.values() if p.reserved
            )
            available = max(self.max_concurrency - reserved, 0)
            if self._unreserved_busy >= available:
                raise TooManyRequests(
                    f"Rate Exceeded. Account concurrency limit of {self.max_concurrency} "
                    f"({available} unreserved) reached",
                    "ConcurrentInvocationLimitExceeded",
                )
            self._unreserved_busy += 1

    def prewarm(self, name: str) -> None:
        """Start one execution environment of ``name`` before its first invocation.

        AWS initialises environments ahead of demand too ("proactive initialization"); the
        event source mappings ask for it when they start, since their first batch follows at
        once. Its REPORT line still carries the Init Duration. No-op if ``name`` has workers.
        """
        pool = self._pool(name)
        with pool.lock:
            if pool.idle or pool.count:
                return
            pool.count += 1
        self._release(pool, self._new_worker(pool), reusable=True)

    def _acquire(self, pool: _Pool) -> Worker:
        with pool.lock:
            if pool.idle:
                return pool.idle.pop()
            if pool.count >= pool.limit:
                raise TooManyRequests(
                    f"Rate Exceeded. Concurrency limit of {pool.limit} reached "
                    f"for function {pool.config.name}"
                )
            pool.count += 1
        return self._new_worker(pool)

    def _new_worker(self, pool: _Pool) -> Worker:
        """A new worker for ``pool``, whose ``count`` the caller has already raised."""
        try:
            worker = Worker(
                pool.config, self.python, self._environment(pool.config), self._forks
            )
        except BaseException:
            with pool.lock:
                pool.count -= 1
            raise
        with self._lock:
            closed = self._closed
            if not closed:
                self._live.add(worker)
        if closed:
            worker.dispose()
            raise RuntimeError("LambdaRuntime is closed")
        return worker

    def _release(self, pool: _Pool, worker: Worker, reusable: bool) -> None:
        with pool.lock:
            if reusable and not pool.retired and not self._closed:
                pool.idle.append(worker)
                return
            pool.count -= 1
        self._dispose(worker)

    def _dispose(self, worker: Worker) -> None:
        worker.dispose()
        with self._lock:
            self._live.discard(worker)

    def _retire(self, pool: _Pool) -> None:
        with pool.lock:
            pool.retired = True
            idle, pool.idle = pool.idle, []
            pool.count -= len(idle)
        for worker in idle:
            self._dispose(worker)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("LambdaRuntime is closed")

    def _base_environment(self) -> dict[str, str]:
        """What every worker's environment starts from (and the fork server runs with)."""
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "en_US.UTF-8", "TZ": ":UTC"}
        python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if not _is_current_interpreter(self.python):  # let it reach this environment's packages
            python_path.append(sysconfig.get_paths()["purelib"])
        if python_path:
            env["PYTHONPATH"] = os.pathsep.join(python_path)
        return env

    def _environment(self, config: FunctionConfig) -> dict[str, str]:
        """The worker's environment: defaults, then the function's variables, then Lambda's."""
        env = self._base_environment()
        env.update(config.environment)
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": _region_of(config.arn) or self.region,
                "AWS_DEFAULT_REGION": _region_of(config.arn) or self.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{_python_version(self.python)}",
                "_HANDLER": config.handler,
                "LAMBDA_TASK_ROOT": str(config.code_dir),
                "AWS_ACCESS_KEY_ID": self._credentials[0],
                "AWS_SECRET_ACCESS_KEY": self._credentials[1],
                "AWS_ENDPOINT_URL": self.endpoint_url,
            }
        )
        if config.role and self._role_credentials is not None:
            env.update(self._role_credentials(config.role, config.name))
        return env

    # -- logs --------------------------------------------------------------------------------

    def _log_lines(self, config: FunctionConfig, request_id: str, outcome: Outcome) -> list[str]:
        lines = [*outcome.init_lines, f"START RequestId: {request_id} Version: $LATEST"]
        lines += outcome.lines
        lines += outcome.trailer
        lines.append(f"END RequestId: {request_id}")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
            f"Billed Duration: {max(math.ceil(outcome.duration_ms), 1)} ms\t"
            f"Memory Size: {config.memory_mb} MB\t"
            f"Max Memory Used: {outcome.max_memory_mb} MB"
        )
        if outcome.init_duration_ms is not None:
            report += f"\tInit Duration: {outcome.init_duration_ms:.2f} ms"
        if outcome.status:
            report += f"\tStatus: {outcome.status}"
        lines.append(report)
        if self._log_sink is not None or LOGGER.isEnabledFor(logging.DEBUG):
            self._logs.put((config.arn, lines))
        return lines

    def _deliver_logs(self) -> None:
        """Deliver queued log lines every LOG_FLUSH_S, one sink call per function per batch."""
        while (item := self._logs.get()) is not None:
            time.sleep(LOG_FLUSH_S)
            batch: dict[str, list[str]] = {}
            stopping = False
            for count in range(1, LOG_BATCH_MAX + 1):  # invocations in this batch
                batch.setdefault(item[0], []).extend(item[1])
                if count == LOG_BATCH_MAX:
                    break
                try:
                    item = self._logs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
            for name, lines in batch.items():
                self._deliver(name, lines)
            if stopping:
                return

    def _deliver(self, name: str, lines: list[str]) -> None:
        for line in lines:
            LOGGER.debug("[%s] %s", name, line)
        if self._log_sink is None:
            return
        try:
            self._log_sink(name, lines)
        except Exception:
            LOGGER.exception("log sink failed for %s; %d lines dropped", name, len(lines))

    # -- Event invocations -------------------------------------------------------------------

    def _enqueue(self, item: _EventItem, delay_s: float = 0.0, *, new: bool = False) -> None:
        with self._event_cond:
            if self._closed or item.generation != self._generation:
                LOGGER.warning(
                    "runtime %s: Event %s for %s dropped",
                    "closed" if self._closed else "reset",
                    item.request_id,
                    item.name,
                )
                return
            item.due = time.monotonic() + delay_s
            item.seq = next(self._event_seq)
            if new:
                self._events_pending += 1
            heapq.heappush(self._events, item)
            self._event_cond.notify_all()

    def _dispatch_events(self) -> None:
        with self._event_cond:
            while not self._closed:
                wait = None
                if self._events:
                    wait = self._events[0].due - time.monotonic()
                    if wait <= 0:
                        self._executor.submit(self._run_event, heapq.heappop(self._events))
                        continue
                self._event_cond.wait(wait)

    def _run_event(self, item: _EventItem) -> None:
        done = True
        try:
            with self._lock:
                pool = self._pools.get(item.name)
            if item.generation != self._generation:
                LOGGER.info("Event %s for %s dropped: the runtime was reset", item.request_id,
                            item.name)
                return
            if pool is None or self._closed:
                LOGGER.warning("Event %s dropped: function %s is gone", item.request_id, item.name)
                return
            try:
                outcome = self._run(pool, item.request_id, item.event, item.client_context)
            except TooManyRequests:  # throttles are retried and do not count as attempts
                if time.monotonic() - item.enqueued > EVENT_MAX_AGE_S:
                    LOGGER.warning(
                        "Event %s for %s throttled for %d s; discarded",
                        item.request_id,
                        item.name,
                        EVENT_MAX_AGE_S,
                    )
                    return
                done = False
                self._enqueue(item, self._throttle_delay)
                return
            self._log_lines(pool.config, item.request_id, outcome)
            if result_too_large(outcome):
                # AWS discards an Event invocation's result (only a destination would get it, with
                # its own size limit): a function that returned over 6 MB still succeeded.
                LOGGER.info("Event %s for %s: result over 6 MB discarded", item.request_id,
                            item.name)
            elif item.generation != self._generation:
                LOGGER.info("Event %s for %s ended by a reset; not retried", item.request_id,
                            item.name)
            elif not outcome.ok and item.attempt < len(self._retry_delays):
                delay = self._retry_delays[item.attempt]
                item.attempt += 1
                done = False
                self._enqueue(item, delay)
            elif not outcome.ok:
                LOGGER.warning(
                    "Event %s for %s failed %d times; discarded: %s",
                    item.request_id,
                    item.name,
                    item.attempt + 1,
                    outcome.payload[:500],
                )
        except Exception:
            LOGGER.exception("Event %s for %s failed in the runtime", item.request_id, item.name)
        finally:
            if done:
                with self._event_cond:
                    if item.generation == self._generation:
                        self._events_pending = max(self._events_pending - 1, 0)
                    self._event_cond.notify_all()

    def wait_for_events(self, timeout_s: float) -> bool:
        """Wait until every queued Event invocation (and its retries) is finished."""
        deadline = time.monotonic() + timeout_s
        with self._event_cond:
            while self._events_pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._event_cond.wait(remaining)
        return True

    # -- reset and shutdown ------------------------------------------------------------------

    def reset(self) -> int:
        """Forget every function: stop its workers (busy ones too), drop queued Event invocations
        and their retries. The runtime stays open. Returns how many Event invocations were dropped.
        """
        with self._lock:
            self._check_open()
            pools = list(self._pools.values())
            self._pools.clear()
        with self._event_cond:
            self._generation += 1
            dropped = len(self._events)
            self._events.clear()
            self._events_pending = 0
            self._event_cond.notify_all()
        for pool in pools:
            self._retire(pool)
        with self._lock:
            busy = list(self._live)  # every worker belonged to a pool just retired
        for worker in busy:  # their invoking threads get an exit error and dispose of them
            worker.terminate()
        if dropped or pools:
            LOGGER.info("runtime reset: %d function(s) and %d queued Event invocation(s) dropped",
                        len(pools), dropped)
        return dropped


    def close(self) -> None:
        """Kill every worker, drop queued Event invocations and wait for it all to stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        with self._event_cond:
            dropped = len(self._events)
            self._events.clear()
            self._events_pending = 0
            self._event_cond.notify_all()
        if dropped:
            LOGGER.warning("runtime closed with %d Event invocations queued; dropped", dropped)
        self._dispatcher.join()
        for pool in pools:
            self._retire(pool)
        with self._lock:
            busy = list(self._live)
        for worker in busy:  # their invoking threads get an exit error and dispose of them
            worker.terminate()
        if self._forks is not None:
            self._forks.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._logs.put(None)
        self._log_thread.join()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_VERSIONS: dict[str, str] = {}


def _is_current_interpreter(python: str) -> bool:
    """True for this process's interpreter (not resolving symlinks: a venv's python is one)."""
    found = shutil.which(python) or python
    return os.path.abspath(found) == os.path.abspath(sys.executable)


def _python_version(python: str) -> str:
    """``3.11`` for the interpreter at ``python`` (asked once, then remembered)."""
    if _is_current_interpreter(python):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if python not in _VERSIONS:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        _VERSIONS[python] = out.stdout.strip()
    return _VERSIONS[python]


def _region_of(arn: str) -> str:
    """``arn:aws:lambda:<region>:...`` → ``<region>`` (empty when not an ARN)."""
    parts = arn.split(":", 5)
    return parts[3] if len(parts) > 4 and parts[0] == "arn" else ""
