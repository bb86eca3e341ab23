"""AWS managed policies loaded by an IAM backend on first use, not when the backend is built.

moto builds an IAM backend on its first IAM request (``get_role`` while a stack is provisioned)
and, with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true``, parses ~1,500 AWS managed policies into it
then (~0.2 CPU-s, once per account and partition; harness.aws.reset keeps the parsed copies).
Most requests never look at them: creating roles, inline policies, assuming roles. Here the
backend's ``managed_policies`` is a mapping that parses them the first time anything reads or
writes it (attach a policy, list or get one, create a customer managed policy...), so every
answer is the same, in the same order (AWS's policies first), and the cost moves to the first
request that needs them, which a ``query-harness up`` never sends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

__all__ = ["LazyManagedPolicies", "load_managed_policies_on_first_use"]


class _Pending(list[Any]):
    """``aws_managed_policies`` of a backend whose policies are not loaded yet (empty)."""


class LazyManagedPolicies(MutableMapping[str, Any]):
    """``IAMBackend.managed_policies``, filled by ``load()`` on first access."""

    def __init__(self, load: Callable[[], dict[str, Any]]) -> None:
        self._load: Callable[[], dict[str, Any]] | None = load
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._load is None

    @property
    def data(self) -> dict[str, Any]:
        if self._load is not None:
            with self._lock:
                if self._load is not None:
                    self._data = {**self._load(), **self._data}
                    self._load = None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def __repr__(self) -> str:
        return f"LazyManagedPolicies({'loaded' if self.loaded else 'not loaded'})"


def load_managed_policies_on_first_use() -> None:
    """Patch moto's IAMBackend so that its managed policies load on first use (see above)."""
    from moto.iam.models import IAMBackend  # noqa: PLC0415

    init_aws = IAMBackend._init_aws_policies  # harness.aws.reset's copy of the parsed ones
    init_managed = IAMBackend._init_managed_policies
    if hasattr(init_managed, "__wrapped_by_harness__"):
        return

    def _init_aws_policies(self: Any) -> list[Any]:
        return _Pending()  # IAMBackend.__init__ calls this first, then _init_managed_policies

    def _init_managed_policies(self: Any) -> Any:
        if not isinstance(self.aws_managed_policies, _Pending):
            return init_managed(self)

        def load() -> dict[str, Any]:
            self.aws_managed_policies = init_aws(self)
            return init_managed(self)

        return LazyManagedPolicies(load)

    _init_aws_policies.__wrapped_by_harness__ = init_aws  # type: ignore[attr-defined]
    _init_managed_policies.__wrapped_by_harness__ = init_managed  # type: ignore[attr-defined]
    IAMBackend._init_aws_policies = _init_aws_policies  # type: ignore[method-assign]
    IAMBackend._init_managed_policies = _init_managed_policies  # type: ignore[method-assign]
