"""Creating resources as Terraform walks its graph: each one as soon as every resource it depends
on exists, independent ones in parallel, at most ``parallelism`` at a time (Terraform's
``-parallelism`` defaults to 10: "Limit the number of concurrent operations as Terraform walks
the graph")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

#: Terraform's default ``-parallelism``.
TERRAFORM_PARALLELISM = 10


@dataclass(frozen=True)
class _Node:
    create: Callable[[], Any]
    after: frozenset[str]


class ResourceGraph:
    """Named creation steps with dependencies, run by :meth:`apply`."""

    def __init__(self, parallelism: int = TERRAFORM_PARALLELISM) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.parallelism = parallelism
        self._nodes: dict[str, _Node] = {}

    def add(self, name: str, create: Callable[[], Any], after: Iterable[str] = ()) -> str:
        """Add the step ``name``, run once the steps named in ``after`` succeeded; returns ``name``."""
        if name in self._nodes:
            raise ValueError(f"step {name!r} is already in the graph")
        self._nodes[name] = _Node(create, frozenset(after))
        return name

    def apply(self) -> None:
        """Run every step, each after its dependencies. After a failure no new step starts (the
        ones running finish) and the first error is raised; ``terraform apply`` would go on with
        the steps that do not depend on the failed one (a deliberate difference, ARCHITECTURE)."""
        for name, node in self._nodes.items():
            unknown = node.after - self._nodes.keys()
            if unknown:
                raise ValueError(f"step {name!r} depends on unknown steps {sorted(unknown)}")
        pending = dict(self._nodes)
        done: set[str] = set()
        running: dict[Future[Any], str] = {}
        errors: list[BaseException] = []
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="provision") as pool:
            while True:
                if not errors:
                    for name in [n for n, node in pending.items() if node.after <= done]:
                        if len(running) >= self.parallelism:
                            break
                        running[pool.submit(pending.pop(name).create)] = name
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    error = future.exception()
                    if error is None:
                        done.add(name)
                    else:
                        errors.append(error)
        if errors:
            raise errors[0]
        if pending:  # only a cycle leaves steps that never became ready
            raise ValueError(f"steps in a dependency cycle: {sorted(pending)}")
