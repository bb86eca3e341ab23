"""A cold burst right after `up`, with what its new Lambda environments cost each.

Usage: .venv/bin/python bench/bench_burst.py [--runs 1] [--size 64]
Each run starts `query-harness up --detach` on free ports and fires ``--size`` concurrent
requests through the gateway the moment it is up (bench_api's burst; make bench's "cold burst"
rows, also ``bench/report.py --only burst``). Besides errors and p99 (wall clock: they move with
the machine's load, printed beside them) it splits the Lambda side's CPU, which holds on a
loaded machine:

- each new environment's own run time (``/proc/<pid>/schedstat``; median): its fork, the
  function's init, its first invocation and any later ones of the burst it served;
- the fork server's CPU over the burst (forks, learning from the children's reports), per new
  environment;
- the Lambda role's CPU of bench_api (every environment and the fork server) per new
  environment: the row the last notes compared with the single cold start of
  bench_cold_start.py, which times one *rejected* payload (no DynamoDB client, no Query) and
  so is ~5-10 ms lower than a burst environment's first real query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from dataclasses import dataclass

import bench_api
import psutil


@dataclass
class Burst:
    """A burst's wall-clock figures and its CPU split."""

    load: bench_api.Load
    cpu_ms_per_request: dict[str, float]  #: by role (bench_api.cpu_by_role)
    environments: int  #: new Lambda environments
    environment_cpu_ms: list[float]  #: each new environment's own run time
    server_cpu_ms: float  #: the fork server's CPU over the burst
    load_average: float  #: as it began


def _fork_server(stack_pid: int) -> psutil.Process | None:
    for process in psutil.Process(stack_pid).children(recursive=True):
        try:
            parent = process.parent()
            if "forkserver" in " ".join(process.cmdline()) and not (
                parent is not None and "forkserver" in " ".join(parent.cmdline())
            ):
                return process
        except psutil.Error:
            continue
    return None


def _cpu_ms(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    try:
        return float(sum(process.cpu_times()[:2])) * 1000.0
    except psutil.Error:
        return 0.0


def _run_time_ms(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def measured(url: str, stack_pid: int, size: int) -> Burst:
    """``size`` concurrent requests on a stack that has just come up."""
    before = bench_api.lambda_environments(stack_pid)
    server = _fork_server(stack_pid)
    server_before = _cpu_ms(server)
    load_average = os.getloadavg()[0]
    load, cpu, _ = bench_api.measured_burst(url, stack_pid, size)
    new = bench_api.lambda_environments(stack_pid) - before
    run_times = [t for pid in new if (t := _run_time_ms(pid)) is not None]
    return Burst(load, cpu, len(new), run_times, _cpu_ms(server) - server_before, load_average)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="stacks, one burst each")
    parser.add_argument("--size", type=int, default=64, help="concurrent requests")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    for run in range(args.runs):
        with (
            tempfile.TemporaryDirectory(prefix="bench-burst-") as state_dir,
            bench_api.stack(state_dir) as (state, up_s),
        ):
            burst = measured(state["gateway_url"], state["pid"], args.size)
        lam = burst.cpu_ms_per_request.get("Lambda environments", 0.0) * args.size
        each = statistics.median(burst.environment_cpu_ms) if burst.environment_cpu_ms else 0.0
        print(
            f"run {run}: load {burst.load_average:.1f}, up {up_s:.1f} s; burst of {args.size}: "
            f"errors {burst.load.errors}, p50 {burst.load.p(0.5):.0f} ms, "
            f"p99 {burst.load.p(0.99):.0f} ms; {burst.environments} new environments: own CPU "
            f"median {each:.1f} ms, fork server {burst.server_cpu_ms / max(burst.environments, 1):.1f}"
            f" ms each; Lambda role {lam / max(burst.environments, 1):.1f} ms each; all processes "
            f"{sum(burst.cpu_ms_per_request.values()):.1f} ms per request",
            flush=True,
        )


if __name__ == "__main__":
    main()
