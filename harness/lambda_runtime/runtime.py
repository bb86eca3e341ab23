"""The harness's Lambda runtime: warm worker processes per function, AWS Invoke semantics.

No HTTP here: the endpoint (Invoke API) and the stream poller call :class:`LambdaRuntime`.
Workers run ``harness/lambda_runtime/worker.py`` under ``python`` (default: the current interpreter,
so the project's virtualenv -- boto3, powertools -- is importable; pass ``python3.12`` to match
the Lambda runtime when one with the needed packages is installed).

Choices where AWS leaves room: an empty payload is the event ``{}``; ``context.identity`` is a
CognitoIdentity with both fields None (as AWS's Python runtime gives); ``memory_mb`` is reported,
not enforced; warm workers live until the function is updated/unregistered or ``close()``.

Here: the functions, their pools of warm workers, and one invocation. Its parts: ``pools.py``
(a function version's pool: idle workers, count, limit), ``events.py`` (the Event queue and its
retries), ``logs.py`` (the log lines and their delivery), ``variables.py`` (a worker's
environment variables).
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from harness.lambda_runtime.concurrency import account_concurrency
from harness.lambda_runtime.config import FunctionConfig
from harness.lambda_runtime.environment import Outcome, Worker
from harness.lambda_runtime.events import EventItem, EventQueue
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
    answer,
    decoded_client_context,
    invocation_header,
    validated_event,
)
from harness.lambda_runtime.logs import LogDelivery, LogSink, invocation_lines
from harness.lambda_runtime.pools import Pool, pool_key
from harness.lambda_runtime.variables import (
    RESERVED_ENVIRONMENT_KEYS,
    base_environment,
    function_environment,
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
#: Runs one invocation on a warm worker instead of ``Worker.invoke`` (harness.faults sets one).
#: A hook with a ``passive(function_name) -> bool`` method says when it would only call
#: ``Worker.invoke``: invoke_warm() then runs the call without it.
InvokeHook = Callable[[Worker, str, bytes, bytes], Outcome]
#: invoke_warm() writes the event to the worker's pipe from the event loop: larger events (the
#: write could wait for the worker to read) go through invoke() on a thread.
WARM_EVENT_MAX = 64 * 1024


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
        self.invoke_hook: InvokeHook | None = None
        self._lock = threading.Lock()
        self._pools: dict[str, Pool] = {}
        self._live: set[Worker] = set()
        self._closed = False
        # environments are forked from a process that imported the heavy libraries once
        self._forks = ForkServer(self.python, base_environment(self.python)) if fork else None
        self._logs = LogDelivery(log_sink, LOGGER)
        self._events = EventQueue(
            workers=max_concurrency,
            run=self._run_event,
            closed=lambda: self._closed,
            logger=LOGGER,
            retry_delays_s=event_retry_delays_s,
            throttle_delay_s=event_throttle_delay_s,
        )

    # -- functions ---------------------------------------------------------------------------

    def register(self, config: FunctionConfig) -> None:
        """Create or update a function; warm workers of the old version are replaced."""
        limit = self.max_concurrency
        if config.reserved_concurrency is not None:
            limit = min(limit, config.reserved_concurrency)
        with self._lock:
            self._check_open()
            old = self._pools.get(config.arn)
            self._pools[config.arn] = Pool(config, limit)
        if self._forks is not None:
            self._forks.start(str(config.code_dir))  # imports while the caller goes on
        if old is not None:
            self._retire(old)

    def start_fork_server(self) -> None:
        """Start the fork server now, before any function is registered: it imports the
        libraries every environment shares while the caller goes on (else the first
        registration starts it, and the first environment waits for those imports)."""
        if self._forks is not None:
            self._forks.start()

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
        """The ARN a function is registered under (pools.py: pool_key)."""
        return pool_key(self._pools, function, self.region)

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
            item = EventItem(0.0, 0, pool.config.arn, event, context, request_id,
                             generation=self._events.generation)
            self._events.enqueue(item, new=True)
            return InvokeResult(202, b"", None, None, request_id=request_id)
        outcome = self._run(pool, request_id, event, context)
        return self._answer(pool.config, request_id, outcome, tail)

    async def invoke_warm(
        self, name: str, payload: bytes, *, client_context: str | None = None, tail: bool = False
    ) -> InvokeResult | None:
        """invoke() of a RequestResponse call on the running event loop, when an initialised
        worker is idle and the invoke hook (if any) passes the call through; None otherwise
        (then call invoke() from a thread: it may start a worker or wait for one's init).

        Same checks, errors, concurrency accounting, log lines and answer as invoke(); only the
        wait for the result is the loop's (Worker.invoke_async) instead of a thread's.
        """
        pool = self._pool(name)
        hook = self.invoke_hook
        passive = getattr(hook, "passive", None)
        if hook is not None and (passive is None or not passive(pool.config.name)):
            return None
        event = validated_event(payload, SYNC_PAYLOAD_LIMIT)
        if len(event) > WARM_EVENT_MAX:
            return None
        context = decoded_client_context(client_context)
        if not pool.reserved:
            self._enter_unreserved()
        try:
            worker = pool.take_initialised()
            if worker is None:
                return None
            request_id = str(uuid.uuid4())
            reusable = False
            try:
                header = invocation_header(pool.config, request_id, context)
                outcome = await worker.invoke_async(request_id, header, event)
                reusable = outcome.reusable
            finally:  # also when cancelled: a worker left mid-invocation is not reused
                self._release(pool, worker, reusable)
        finally:
            if not pool.reserved:
                with self._lock:
                    self._unreserved_busy -= 1
        return self._answer(pool.config, request_id, outcome, tail)

    def _answer(
        self, config: FunctionConfig, request_id: str, outcome: Outcome, tail: bool
    ) -> InvokeResult:
        """A RequestResponse invocation's answer; its log lines are queued for delivery."""
        return answer(request_id, outcome, self._log_lines(config, request_id, outcome), tail)

    def _pool(self, name: str) -> Pool:
        with self._lock:
            self._check_open()
            key = self._key(name)
            pool = self._pools.get(key) if key is not None else None
        if pool is None:
            raise ResourceNotFound(f"Function not found: {name}")
        return pool

    def _run(self, pool: Pool, request_id: str, event: bytes, context: Any) -> Outcome:
        if not pool.reserved:
            self._enter_unreserved()
        try:
            worker = self._acquire(pool)
            header = invocation_header(pool.config, request_id, context)
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
        if not pool.take_first():
            return
        self._release(pool, self._new_worker(pool), reusable=True)

    def _acquire(self, pool: Pool) -> Worker:
        worker = pool.take()
        return worker if worker is not None else self._new_worker(pool)

    def _new_worker(self, pool: Pool) -> Worker:
        """A new worker for ``pool``, whose ``count`` the caller has already raised."""
        try:
            worker = Worker(
                pool.config, self.python, self._environment(pool.config), self._forks
            )
        except BaseException:
            pool.forget()
            raise
        with self._lock:
            closed = self._closed
            if not closed:
                self._live.add(worker)
        if closed:
            worker.dispose()
            raise RuntimeError("LambdaRuntime is closed")
        return worker

    def _release(self, pool: Pool, worker: Worker, reusable: bool) -> None:
        if not pool.put_back(worker, reusable, lambda: self._closed):
            self._dispose(worker)

    def _dispose(self, worker: Worker) -> None:
        worker.dispose()
        with self._lock:
            self._live.discard(worker)

    def _retire(self, pool: Pool) -> None:
        for worker in pool.retire():
            self._dispose(worker)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("LambdaRuntime is closed")

    def _environment(self, config: FunctionConfig) -> dict[str, str]:
        """The worker's environment (variables.py): defaults, the function's, then Lambda's."""
        return function_environment(
            config,
            python=self.python,
            region=self.region,
            endpoint_url=self.endpoint_url,
            credentials=self._credentials,
            role_credentials=self._role_credentials,
        )

    # -- logs --------------------------------------------------------------------------------

    def _log_lines(self, config: FunctionConfig, request_id: str, outcome: Outcome) -> list[str]:
        lines = invocation_lines(config, request_id, outcome)
        self._logs.put(config.arn, lines)
        return lines

    # -- Event invocations -------------------------------------------------------------------

    def _run_event(self, item: EventItem) -> Outcome | None:
        """One attempt of an Event invocation (events.py retries it); None when it is dropped."""
        with self._lock:
            pool = self._pools.get(item.name)
        if item.generation != self._events.generation:
            LOGGER.info("Event %s for %s dropped: the runtime was reset", item.request_id,
                        item.name)
            return None
        if pool is None or self._closed:
            LOGGER.warning("Event %s dropped: function %s is gone", item.request_id, item.name)
            return None
        outcome = self._run(pool, item.request_id, item.event, item.client_context)
        self._log_lines(pool.config, item.request_id, outcome)
        return outcome

    def wait_for_events(self, timeout_s: float) -> bool:
        """Wait until every queued Event invocation (and its retries) is finished."""
        return self._events.wait(timeout_s)

    # -- reset and shutdown ------------------------------------------------------------------

    def reset(self) -> int:
        """Forget every function: stop its workers (busy ones too), drop queued Event invocations
        and their retries. The runtime stays open. Returns how many Event invocations were dropped.
        """
        with self._lock:
            self._check_open()
            pools = list(self._pools.values())
            self._pools.clear()
        dropped = self._events.drop(reset=True)
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
        dropped = self._events.drop(reset=False)
        if dropped:
            LOGGER.warning("runtime closed with %d Event invocations queued; dropped", dropped)
        self._events.join_dispatcher()
        for pool in pools:
            self._retire(pool)
        with self._lock:
            busy = list(self._live)
        for worker in busy:  # their invoking threads get an exit error and dispose of them
            worker.terminate()
        if self._forks is not None:
            self._forks.stop()
        self._events.shutdown()
        self._logs.close()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
