"""Idle memory of a running stack: RSS, PSS and USS of every one of its processes, sampled over time.

The drift is the trend of the samples taken every 10 s after a settle, as MB per 10 minutes:
the Theil-Sen slope (the median of the slopes between every two samples) times 600 s, for the
whole stack and per process (role: endpoint, zygote, task, Lambda environment, ...). A leak grows
the samples steadily and the slope is its rate; a one-off allocation (a client made lazily, a
cache filled once) is a step, and a step in the first or last quarter of the window, or one
sample taken mid-collection, moves a median of pairwise slopes little, where end-minus-start
counts it whole. The stack's memory is the sum of PSS (each shared page counted once, split
among its sharers); USS (memory no other process shares) is what a leak grows. The sum of RSS
counts a page shared by a zygote and its forked tasks once per process, so it grows when an idle
task merely reads a shared page: printed, but not the figure.

    .venv/bin/python bench/idle_rss.py --minutes 10     # a stack of its own, idle
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import bench_api
import psutil

MB = 2**20
PER_S = 600.0  # the figure is MB per 10 minutes


def theil_sen(points: Sequence[tuple[float, float]]) -> float:
    """The median of the slopes between every two points (per unit of x); NaN below 2 points."""
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    ]
    return statistics.median(slopes) if slopes else float("nan")


@dataclass
class Drift:
    """Samples of the stack's memory: (seconds since the first, RSS, PSS, USS in MB), and the
    USS of each process."""

    samples: list[tuple[float, float, float, float]] = field(default_factory=list)
    per_process: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def minutes(self) -> float:
        """How long the samples span."""
        return self.samples[-1][0] / 60 if self.samples else 0.0

    def drift(self, column: int) -> float:
        """The trend of one column (1 RSS, 2 PSS, 3 USS) in MB per 10 minutes."""
        return theil_sen([(s[0], s[column]) for s in self.samples]) * PER_S

    def change(self, column: int) -> float:
        """Last sample minus first (MB): printed beside the trend, not the figure."""
        return self.samples[-1][column] - self.samples[0][column] if self.samples else 0.0

    def process_drifts(self) -> dict[str, float]:
        """USS trend of each process that lived through the whole run (MB per 10 minutes)."""
        if not self.samples:
            return {}
        start, end = self.samples[0][0], self.samples[-1][0]
        return {
            name: theil_sen(values) * PER_S
            for name, values in self.per_process.items()
            if values[0][0] <= start and values[-1][0] >= end
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
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as state_dir, bench_api.stack(
        state_dir
    ) as (state, up_s):
        print(f"stack up in {up_s:.2f} s; idle {args.settle:g} s, then {args.minutes:g} min")
        time.sleep(args.settle)
        drift = measure(state["pid"], args.minutes, args.every)
    first, last = drift.samples[0], drift.samples[-1]
    print(f"stack PSS {first[2]:.1f} -> {last[2]:.1f} MB, USS {first[3]:.1f} -> {last[3]:.1f} MB"
          f" (RSS summed {first[1]:.1f} -> {last[1]:.1f} MB)")
    print(f"drift over 10 min (Theil-Sen slope of {len(drift.samples)} samples over "
          f"{drift.minutes():.1f} min, x 10 min): PSS {drift.drift(2):+.2f} MB (target <= 1 MB), "
          f"USS {drift.drift(3):+.2f} MB, summed RSS {drift.drift(1):+.2f} MB; last - first: "
          f"PSS {drift.change(2):+.2f} MB, USS {drift.change(3):+.2f} MB")
    for name, value in sorted(drift.process_drifts().items(), key=lambda kv: -abs(kv[1])):
        values = drift.per_process[name]
        print(f"  USS drift {value:+6.2f} MB / 10 min (last - first {values[-1][1] - values[0][1]:+.2f}"
              f" MB)  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
