"""The endpoint's reset: a gate that holds requests back while state is wiped, and reset hooks.

moto's ``POST /moto-api/reset`` re-initialises every backend in place (``self.__dict__ = {}``,
then ``__init__``). A request served meanwhile sees a half-built backend (``'IAMBackend' object
has no attribute 'access_keys'``). Here every request that touches moto's state passes the
:class:`ResetGate`; a reset closes it, waits for the requests already inside, wipes, and opens
it again: requests that arrive during a reset wait for it instead of failing.

:class:`ResetHooks` is where the endpoint's other holders of state (Lambda runtime, event source
mappings, and whatever later parts add: faults, metrics...) register what a reset must do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ["ResetGate", "ResetHooks"]

logger = logging.getLogger("harness.aws.reset")


class ResetGate:
    """Many requests at once, or one reset alone; re-entrant for a thread already inside."""

    def __init__(self, drain_timeout_s: float = 30.0) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._closed = False
        self._drain_timeout_s = drain_timeout_s
        self._local = threading.local()

    def request(self) -> AbstractContextManager[object]:
        """Hold the gate open for one request (waits while a reset runs)."""
        return _Held(self, wait=True)

    def request_nowait(self) -> AbstractContextManager[bool]:
        """request() that never waits (for the event loop's thread): ``as`` gives False, and
        the gate is not entered, while a reset runs."""
        return _Held(self, wait=False)

    def _enter(self, wait: bool) -> bool:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._closed and wait:
                    self._cond.wait()
                if self._closed:
                    return False
                self._inside += 1
        self._local.depth = depth + 1
        return True

    def _leave(self) -> None:
        depth = self._local.depth = self._local.depth - 1
        if depth == 0:
            with self._cond:
                self._inside -= 1
                if self._inside == 0:
                    self._cond.notify_all()

    @contextmanager
    def closed(self) -> Iterator[None]:
        """Close the gate: new requests wait; the ones inside finish first (bounded wait)."""
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a reset cannot run inside a request that holds the gate")
        with self._cond:
            while self._closed:  # one reset at a time
                self._cond.wait()
            self._closed = True
            deadline = time.monotonic() + self._drain_timeout_s
            while self._inside and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            if self._inside:
                logger.warning("reset: %d request(s) still inside after %.0f s; resetting anyway",
                               self._inside, self._drain_timeout_s)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class _Held:
    """One request inside a ResetGate (a class, not a generator: every request enters one)."""

    __slots__ = ("_gate", "_inside", "_wait")

    def __init__(self, gate: ResetGate, wait: bool) -> None:
        self._gate = gate
        self._wait = wait
        self._inside = False

    def __enter__(self) -> bool:
        self._inside = self._gate._enter(self._wait)
        return self._inside

    def __exit__(self, *exc_info: object) -> None:
        if self._inside:
            self._inside = False
            self._gate._leave()


class ResetHooks:
    """Callables run, in registration order, by every reset while the gate is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[tuple[str, Callable[[], None]]] = []

    def add(self, hook: Callable[[], None], name: str | None = None) -> Callable[[], None]:
        """Register ``hook``; returns a function that unregisters it."""
        entry = (name or str(getattr(hook, "__qualname__", repr(hook))), hook)
        with self._lock:
            self._hooks.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._hooks:
                    self._hooks.remove(entry)

        return remove

    def run(self) -> list[str]:
        """Run every hook; a failing hook is logged and named in the answer, the rest still run."""
        with self._lock:
            hooks = list(self._hooks)
        failed = []
        for name, hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("reset hook %s failed", name)
                failed.append(name)
        return failed


# ---- moto's reset made cheap (pinned with the other patches, see harness.aws.patches) ---------

#: The AWS managed policies as moto parsed them, per (account, IAM partition): immutable
#: data that moto parsed again (~1,500 policies, ~150 ms) for every IAM backend it built.
_MANAGED_POLICY_TEMPLATES: dict[tuple[str, str], list[Any]] = {}
_templates_lock = threading.Lock()


def _copy_policy(template: Any) -> Any:
    """A fresh copy of a parsed managed policy: what may change (attachments, tags, versions) is
    its own; the parsed documents and dates are shared. Not tracked for /moto-api/data.json."""
    policy = object.__new__(type(template))
    policy.__dict__.update(template.__dict__)
    policy.tags = dict(template.tags)
    versions = []
    for version in template.versions:
        copied = object.__new__(type(version))
        copied.__dict__.update(version.__dict__)
        versions.append(copied)
    policy.versions = versions
    return policy


def keep_managed_policies_across_resets() -> None:
    """IAMBackend parses AWS's managed policies once per account and partition, then copies."""
    from moto.iam.models import IAMBackend  # noqa: PLC0415

    original = IAMBackend._init_aws_policies
    if hasattr(original, "__wrapped_by_harness__"):
        return

    def _init_aws_policies(self: Any) -> list[Any]:
        key = (str(self.account_id), str(self.region_name))
        with _templates_lock:
            templates = _MANAGED_POLICY_TEMPLATES.get(key)
            if templates is None:
                templates = _MANAGED_POLICY_TEMPLATES[key] = original(self)
        return [_copy_policy(template) for template in templates]

    _init_aws_policies.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    IAMBackend._init_aws_policies = _init_aws_policies  # type: ignore[method-assign]


def drop_backends_without_rebuilding() -> None:
    """moto's reset re-initialises every backend in place and then drops it: only the backends
    with their own ``reset`` (S3, Batch: threads and files to stop) are reset before the drop."""
    from moto.core.base_backend import BackendDict, BaseBackend, backend_lock  # noqa: PLC0415

    original = BackendDict.reset  # bound to the class, as verify_internals() reads it
    if hasattr(original, "__wrapped_by_harness__"):
        return

    def reset(cls: Any) -> None:
        with backend_lock:
            for backend_dict in cls._instances:
                for account in list(backend_dict.values()):
                    for backend in list(account.values()):
                        if type(backend).reset is not BaseBackend.reset:
                            backend.reset()
                backend_dict.clear()
            cls._instances.clear()

    reset.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    BackendDict.reset = classmethod(reset)  # type: ignore[method-assign, assignment]


def visit_only_built_iam_backends() -> None:
    """Every moto request marks its access key as used in IAM, which built the IAM backend (and
    parsed the managed policies) on the first request after each reset. A key only exists in a
    backend already built, so an unbuilt one is left alone: the same answer, nothing built."""
    from moto.iam import models  # noqa: PLC0415
    from moto.utilities.utils import get_partition  # noqa: PLC0415

    original = models.mark_account_as_visited
    if hasattr(original, "__wrapped_by_harness__"):
        return

    def mark_account_as_visited(
        account_id: str, access_key: str, service: str, region: str
    ) -> None:
        account = dict.get(models.iam_backends, account_id)
        backend = dict.get(account, get_partition(region)) if account is not None else None
        if backend is not None and access_key in backend.access_keys:
            original(account_id, access_key, service, region)

    mark_account_as_visited.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    models.mark_account_as_visited = mark_account_as_visited
