"""Whole-stack figures: `query-harness up --detach` to all-healthy, memory of every process, teardown.

Run: .venv/bin/python bench/bench_stack.py [--runs 5]  (run 1 starts with empty caches)
Targets (embedded, 2 cores): up <= 3 s median, teardown <= 1 s median, RSS of the stack <= 600 MB,
no process or port left after `down`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ups, downs, rss, leftovers = [], [], [], 0
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
    )
    cache = tempfile.mkdtemp(prefix="bench-stack-cache-")  # like .harness/cache across `make up`s
    inner: dict[str, list[float]] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as state_dir:
            os.symlink(cache, Path(state_dir) / "cache")
            started = time.perf_counter()
            up = cli(
                "up", "--detach", "--edge-port", "0", "--gateway-port", "0", state_dir=state_dir
            )
            ups.append(time.perf_counter() - started)
            if up.returncode != 0:
                print(up.stdout[-2000:], up.stderr[-2000:])
                return 1
            state = json.loads((Path(state_dir) / "state.json").read_text())
            for key, value in state["timings_s"].items():
                inner.setdefault(key, []).append(value)
            time.sleep(1.0)  # let the replicas and Lambda workers settle before measuring memory
            mb, count = stack_rss_mb(state["pid"])
            rss.append(mb)
            pids = [p.pid for p in psutil.Process(state["pid"]).children(recursive=True)] + [
                state["pid"]
            ]
            # The stack's own teardown, as `down` triggers it: SIGTERM, then every process gone.
            started = time.perf_counter()
            os.kill(state["pid"], signal.SIGTERM)
            wait_gone(pids, timeout_s=30)
            downs.append(time.perf_counter() - started)
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
            leftovers += len(alive) + sum(port_open(u) for u in urls)
            print(
                f"run {run + 1}{' (cold caches: infra, region lists)' if run == 0 else ''}: "
                f"up {ups[-1]:.2f} s, down {downs[-1]:.2f} s, "
                f"RSS {mb:.0f} MB in {count} processes, inside the stack: {state['timings_s']}"
            )
    print()
    print(
        f"up --detach to all-healthy : median {statistics.median(ups):.2f} s (target <= 3 s) over {args.runs} runs"
    )
    for key, values in inner.items():
        print(f"  of which {key:<10}: median {statistics.median(values):.2f} s")
    print(f"teardown (SIGTERM -> gone) : median {statistics.median(downs):.2f} s (target <= 1 s)")
    started = time.perf_counter()
    cli("--help", state_dir=tempfile.gettempdir())
    print(
        f"  plus the CLI's own start : {time.perf_counter() - started:.2f} s (query-harness --help)"
    )
    print(
        f"RSS of all stack processes : median {statistics.median(rss):.0f} MB, max {max(rss):.0f} MB (target <= 600 MB)"
    )
    print(f"processes or ports left    : {leftovers} (target 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
