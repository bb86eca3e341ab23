"""Idle memory of a running stack: RSS and USS of every one of its processes, sampled over time.

The drift is the median of the last minute's samples minus the median of the first minute's
(medians, so one sample taken mid-collection does not count), for the whole stack and per
process (role: endpoint, zygote, task, Lambda environment, ...). The stack's memory is the sum
of PSS (each shared page counted once, split among its sharers); USS (memory no other process
shares) is what a leak grows. The sum of RSS counts a page shared by a zygote and its forked
tasks once per process, so it grows when an idle task merely reads a shared page: printed, but
not the figure.

    .venv/bin/python bench/idle_rss.py --minutes 10     # a stack of its own, idle
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field

import bench_api
import psutil

MB = 2**20


@dataclass
class Drift:
    """Samples of the stack's memory: (seconds since the first, RSS, PSS, USS in MB), and the
    USS of each process."""

    samples: list[tuple[float, float, float, float]] = field(default_factory=list)
    per_process: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def _window(self, values: list[tuple[float, float]], last: bool, span_s: float) -> float:
        end = values[-1][0]
        chosen = [v for t, v in values if (t >= end - span_s if last else t <= span_s)]
        return statistics.median(chosen) if chosen else float("nan")

    def span(self) -> float:
        """The windows compared: a minute, or a quarter of a shorter run."""
        return min(60.0, self.samples[-1][0] / 4) if self.samples else 0.0

    def drift(self, column: int) -> float:
        """Median of the last window minus the median of the first (MB)."""
        values = [(s[0], s[column]) for s in self.samples]
        span_s = self.span()
        return self._window(values, True, span_s) - self._window(values, False, span_s)

    def process_drifts(self) -> dict[str, float]:
        """USS drift of each process that lived through the whole run (MB)."""
        end = self.samples[-1][0] if self.samples else 0.0
        span_s = self.span()
        return {
            name: self._window(values, True, span_s) - self._window(values, False, span_s)
            for name, values in self.per_process.items()
            if values[0][0] <= span_s and values[-1][0] >= end - span_s
        }


def _role(process: psutil.Process, stack_pid: int) -> str:
    if process.pid == stack_pid:
        return "stack (gateway, load balancer, ECS, telemetry)"
    command = " ".join(process.cmdline())
    for part, role in (("harness.aws.endpoint", "endpoint"), ("forkserver", "Lambda"),
                       ("worker", "Lambda"), ("zygote", "zygote/task")):  # fmt: skip
        if part in command:
            return role
    return command[:60]


def _processes(stack_pid: int) -> list[psutil.Process]:
    root = psutil.Process(stack_pid)
    return [root, *root.children(recursive=True)]


def sample(stack_pid: int, drift: Drift, at: float) -> None:
    """One sample of every process of the stack (those that end meanwhile are skipped)."""
    rss = pss = uss = 0.0
    for process in _processes(stack_pid):
        try:
            info = process.memory_full_info()
            name = f"{_role(process, stack_pid)} pid {process.pid}"
        except psutil.Error:
            continue
        rss, pss, uss = rss + info.rss / MB, pss + info.pss / MB, uss + info.uss / MB
        drift.per_process.setdefault(name, []).append((at, info.uss / MB))
    drift.samples.append((at, rss, pss, uss))


def measure(stack_pid: int, minutes: float, every_s: float = 10.0) -> Drift:
    """Sample the stack every ``every_s`` for ``minutes``; nothing else touches it meanwhile."""
    drift = Drift()
    started = time.monotonic()
    while True:
        at = time.monotonic() - started
        sample(stack_pid, drift, at)
        if at >= minutes * 60:
            return drift
        time.sleep(max(0.0, min(every_s, minutes * 60 - at)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    # the target-tracking policy's first evaluation (a metric period after up) makes its ECS
    # client: ~2.8 MB once in the stack process, which is no drift
    parser.add_argument("--settle", type=float, default=120.0, help="seconds idle before sampling")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as state_dir, bench_api.stack(
        state_dir
    ) as (state, up_s):
        print(f"stack up in {up_s:.2f} s; idle {args.settle:g} s, then {args.minutes:g} min")
        time.sleep(args.settle)
        drift = measure(state["pid"], args.minutes)
    first, last = drift.samples[0], drift.samples[-1]
    print(f"stack PSS {first[2]:.1f} -> {last[2]:.1f} MB, USS {first[3]:.1f} -> {last[3]:.1f} MB"
          f" (RSS summed {first[1]:.1f} -> {last[1]:.1f} MB)")
    print(f"drift over {args.minutes:g} min (last window's median - first's, "
          f"{drift.span():.0f} s each): PSS {drift.drift(2):+.2f} MB (target <= 1 MB), USS {drift.drift(3):+.2f} MB, "
          f"summed RSS {drift.drift(1):+.2f} MB")
    for name, value in sorted(drift.process_drifts().items(), key=lambda kv: -abs(kv[1])):
        print(f"  USS drift {value:+6.2f} MB  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
