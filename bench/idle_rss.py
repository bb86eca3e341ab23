"""Idle memory of a running stack: anonymous PSS, PSS, USS and RSS of every one of its
processes, sampled over time.

The figure is the stack's anonymous memory: the sum over its processes of PSS_Anon (heap, stacks,
Python objects; a page a zygote shares with its forked tasks counted once, split among them).
Anonymous pages are shared with no process outside the stack, so the sum moves only when the
stack allocates or frees. Whole PSS and USS also count file-backed pages (code, libraries) split
among every process on the machine that maps the same file: when another stack or test run
starts or stops, they move by megabytes with no change in the stack (an endpoint's USS fell and
rose by 12 MB in one idle run while its anonymous memory grew steadily). Both are printed.

The drift is the trend of the samples taken every 10 s after a settle, as MB per 10 minutes:
the Theil-Sen slope (the median of the slopes between every two samples) times 600 s, for the
whole stack and per process (role: endpoint, zygote, task, Lambda environment, ...). A leak grows
the samples steadily and the slope is its rate; a one-off allocation (a client made lazily, a
cache filled once) is a step, and a step in the first or last quarter of the window, or one
sample taken mid-collection, moves a median of pairwise slopes little, where end-minus-start
counts it whole.

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
KB = 1024
PER_S = 600.0  # the figure is MB per 10 minutes
#: the columns of a sample, after its time
COLUMNS = ("RSS", "PSS", "USS", "anon PSS")
RSS, PSS, USS, ANON = 1, 2, 3, 4


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
    """Samples of the stack's memory: (seconds since the first, RSS, PSS, USS, anonymous PSS, in
    MB), and the anonymous PSS of each process."""

    samples: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    per_process: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def minutes(self) -> float:
        """How long the samples span."""
        return self.samples[-1][0] / 60 if self.samples else 0.0

    def drift(self, column: int) -> float:
        """The trend of one column (RSS, PSS, USS, ANON) in MB per 10 minutes."""
        return theil_sen([(s[0], s[column]) for s in self.samples]) * PER_S

    def change(self, column: int) -> float:
        """Last sample minus first (MB): printed beside the trend, not the figure."""
        return self.samples[-1][column] - self.samples[0][column] if self.samples else 0.0

    def process_drifts(self) -> dict[str, float]:
        """Anonymous-PSS trend of each process that lived through the whole run (MB per 10
        minutes)."""
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


def rollup(pid: int) -> dict[str, int]:
    """``/proc/<pid>/smaps_rollup``: the process's memory totals in bytes (Rss, Pss, Pss_Anon,
    Private_Clean, Private_Dirty, ...)."""
    totals: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            fields = rest.split()
            if len(fields) == 2 and fields[1] == "kB":
                totals[name] = int(fields[0]) * KB
    return totals


def sample(stack_pid: int, drift: Drift, at: float) -> None:
    """One sample of every process of the stack (those that end meanwhile are skipped)."""
    rss = pss = uss = anon = 0.0
    for process in _processes(stack_pid):
        try:
            name = f"{_role(process, stack_pid)} pid {process.pid}"
            info = rollup(process.pid)
        except (psutil.Error, OSError):
            continue
        process_anon = info["Pss_Anon"] / MB
        rss, pss, anon = rss + info["Rss"] / MB, pss + info["Pss"] / MB, anon + process_anon
        uss += (info["Private_Clean"] + info["Private_Dirty"]) / MB
        drift.per_process.setdefault(name, []).append((at, process_anon))
    drift.samples.append((at, rss, pss, uss, anon))


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
    print(" ".join(f"{kind} {first[c]:.1f} -> {last[c]:.1f} MB," for c, kind in
                   enumerate(COLUMNS, 1)).rstrip(","))
    print(f"drift over 10 min (Theil-Sen slope of {len(drift.samples)} samples over "
          f"{drift.minutes():.1f} min, x 10 min): anon PSS {drift.drift(ANON):+.2f} MB "
          f"(target <= 1 MB); PSS {drift.drift(PSS):+.2f}, USS {drift.drift(USS):+.2f}, "
          f"summed RSS {drift.drift(RSS):+.2f} MB; last - first: anon PSS "
          f"{drift.change(ANON):+.2f}, PSS {drift.change(PSS):+.2f}, USS {drift.change(USS):+.2f} MB")
    for name, value in sorted(drift.process_drifts().items(), key=lambda kv: -abs(kv[1])):
        values = drift.per_process[name]
        print(f"  anon PSS drift {value:+6.2f} MB / 10 min (last - first "
              f"{values[-1][1] - values[0][1]:+.2f} MB)  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
