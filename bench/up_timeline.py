"""The start-up timeline of one stack, in this process: every step and every ECS task's changes.

    .venv/bin/python bench/up_timeline.py [--cache DIR]

Prints, in seconds from the start: each progress line of `up` (endpoint ready, each resource
provisioned, seed synced, gateway ready), and each change of an ECS task's (lastStatus,
registered in the target group, the load balancer's target state, container health): PENDING
(forked from the zygote), RUNNING + registered (its port accepts connections), initial -> healthy
(its first health check passed). Then the stack's ``timings_s`` and the CPU seconds every process
used until ready (the machine's 2 cores bound `up` by that sum / 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from harness.stack.stack import Stack, StackConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="a .harness/cache to reuse (default: an empty one)")
    args = parser.parse_args()
    began = time.perf_counter()

    def stamp(message: str) -> None:
        print(f"{time.perf_counter() - began:7.3f} {message}", flush=True)

    state_dir = Path(tempfile.mkdtemp(prefix="up-timeline-"))
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)  # a link to a missing directory fails later
        os.symlink(os.path.abspath(args.cache), state_dir / "cache")
    stack = Stack(StackConfig(edge_port=0, gateway_port=0, state_dir=state_dir), progress=stamp)
    done = threading.Event()

    def watch() -> None:
        seen: dict[str, tuple[str, bool, str, str]] = {}
        while not done.is_set():
            ecs = stack.ecs
            balancer = ecs.load_balancer if ecs is not None else None
            health = balancer.target_health() if balancer is not None else {}
            for task in ecs.controller.snapshot() if ecs is not None else []:
                key = (
                    task.last_status,
                    task.registered,
                    health.get(task.url or "", "-"),
                    task.health_status,
                )
                if seen.get(task.id) != key:
                    seen[task.id] = key
                    stamp(f"task {task.id[:8]} {key[0]:<8} registered={key[1]!s:<5} "
                          f"target={key[2]:<8} container={key[3]}")
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stack.start()
        stamp("READY")
        print("timings_s:", stack.timings)
        me = psutil.Process()
        total = 0.0
        for process in [me, *me.children(recursive=True)]:
            try:
                times = process.cpu_times()
                name = " ".join(process.cmdline()[1:3])[:60]
            except psutil.Error:
                continue
            total += times.user + times.system
            print(f"  cpu {times.user + times.system:5.2f} s  {name}")
        print(f"CPU seconds until ready: {total:.2f} (load average {os.getloadavg()[0]:.1f}, "
              f"{psutil.cpu_count()} CPUs)")
    finally:
        done.set()
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
