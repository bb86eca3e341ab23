"""Whole-stack figures: `query-harness up --detach` to ready, memory of every process, teardown.

Run: .venv/bin/python bench/bench_stack.py [--runs 5] [--empty-runs 1]

"Ready" is when `up --detach` returns: the endpoint answers, infra/ is provisioned, the seed went
through the stream to the read side, every ECS task passed the load balancer's health check and
the gateway serves. Each run has a fresh state dir; run 1 also starts with an empty
`.harness/cache` (infra/ parsed, botocore's region lists derived: the first `up` on a machine),
runs 2..N keep that cache as `.harness/cache` is kept between `make up`s. The `up` figure is the
median of runs 2..N (all runs when --runs 1); with ``--empty-runs K`` the first K runs each start
with an empty cache of their own, and their median is printed too. Targets (embedded, 2 cores): up <= 2.5 s median,
teardown <= 1 s median, RSS of the stack <= 600 MB, no process or port left after `down`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness.stack.state import wait_gone

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, state_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_STATE_DIR": state_dir, "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def stack_rss_mb(pid: int) -> tuple[float, int]:
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20, len(processes)


def port_open(url: str) -> bool:
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


@dataclass
class UpRun:
    """One `up --detach` ... teardown."""

    up_s: float
    down_s: float
    rss_mb: float
    processes: int
    leftovers: int
    timings: dict[str, float]
    cold_cache: bool


def run_once(cache: str, cold_cache: bool) -> UpRun:
    """`up --detach` in a fresh state dir whose `cache` is ``cache``, measured, then torn down."""
    with tempfile.TemporaryDirectory() as state_dir:
        os.symlink(cache, Path(state_dir) / "cache")
        started = time.perf_counter()
        up = cli("up", "--detach", "--edge-port", "0", "--gateway-port", "0", state_dir=state_dir)
        up_s = time.perf_counter() - started
        if up.returncode != 0:
            raise RuntimeError(f"up failed: {up.stdout[-2000:]} {up.stderr[-2000:]}")
        state: dict[str, Any] = json.loads((Path(state_dir) / "state.json").read_text())
        time.sleep(1.0)  # let the replicas and Lambda workers settle before measuring memory
        mb, count = stack_rss_mb(state["pid"])
        pids = [p.pid for p in psutil.Process(state["pid"]).children(recursive=True)]
        pids.append(state["pid"])
        # The stack's own teardown, as `down` triggers it: SIGTERM, then every process gone.
        started = time.perf_counter()
        os.kill(state["pid"], signal.SIGTERM)
        wait_gone(pids, timeout_s=30)
        down_s = time.perf_counter() - started
        cli("down", state_dir=state_dir)  # clears the state file (the stack is already gone)
        urls = [
            state["edge_url"],
            state["gateway_url"],
            state["load_balancer_url"],
            *(r["url"] for r in state["replicas"]),
        ]
        alive = [
            p
            for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        leftovers = len(alive) + sum(port_open(u) for u in urls)
    return UpRun(up_s, down_s, mb, count, leftovers, state["timings_s"], cold_cache)


def measure(runs: int, progress: bool = True, empty_runs: int = 1) -> list[UpRun]:
    """``runs`` ups: the first ``empty_runs`` each with an empty cache, the others with the cache
    the last of those left."""
    results: list[UpRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-stack-cache-") as cache:
        for index in range(runs):
            cold = index < max(empty_runs, 1)
            if cold and index > 0:  # an empty cache again: the last empty run's is kept after it
                shutil.rmtree(cache)
                os.mkdir(cache)
            result = run_once(cache, cold_cache=cold)
            results.append(result)
            if progress:
                print(
                    f"run {index + 1}{' (empty cache)' if result.cold_cache else ''}: "
                    f"up {result.up_s:.2f} s, down {result.down_s:.2f} s, RSS "
                    f"{result.rss_mb:.0f} MB in {result.processes} processes, load "
                    f"{os.getloadavg()[0]:.1f}; inside: {result.timings}",
                    flush=True,
                )
    return results


def warm(results: list[UpRun]) -> list[UpRun]:
    """The runs with a kept cache (all of them when there is only one)."""
    return [r for r in results if not r.cold_cache] or results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--empty-runs", type=int, default=1,
                        help="how many of the runs start with an empty .harness/cache (first)")
    args = parser.parse_args()
    packages = ("harness", "service", "lambdas")
    compiled = all(any((ROOT / name / "__pycache__").glob("*.pyc")) for name in packages)
    print(
        "bytecode of harness/service/lambdas: "
        + (
            "compiled (make bytecode)"
            if compiled
            else "not compiled: every process compiles them (run `make bytecode`)"
        )
        + f"; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}"
        + f"; {psutil.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    results = measure(args.runs, empty_runs=args.empty_runs)
    kept = warm(results)
    empty = [r.up_s for r in results if r.cold_cache]
    print()
    print(
        f"up --detach to ready      : median {statistics.median(r.up_s for r in kept):.2f} s "
        f"(target <= 2.5 s) over {len(kept)} runs with a kept cache; "
        f"median {statistics.median(empty):.2f} s over {len(empty)} with an empty one"
    )
    for key in kept[0].timings:
        values = [r.timings[key] for r in kept if key in r.timings]
        print(f"  of which {key:<24}: median {statistics.median(values):.2f} s")
    print(
        f"teardown (SIGTERM -> gone): median {statistics.median(r.down_s for r in results):.2f} s"
        " (target <= 1 s)"
    )
    started = time.perf_counter()
    cli("--help", state_dir=tempfile.gettempdir())
    print(f"  plus the CLI's own start : {time.perf_counter() - started:.2f} s (--help)")
    rss = [r.rss_mb for r in results]
    print(
        f"RSS of all stack processes: median {statistics.median(rss):.0f} MB, max {max(rss):.0f}"
        " MB (target <= 600 MB)"
    )
    print(f"processes or ports left   : {sum(r.leftovers for r in results)} (target 0)")
    print(f"load average at the end   : {os.getloadavg()[0]:.1f} on {psutil.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
