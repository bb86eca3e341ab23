"""Warm Invoke of a no-op function through the endpoint: wall time, and CPU per Invoke by side.

Usage: .venv/bin/python bench/bench_invoke_endpoint.py [--calls 400] [--rounds 3]
Starts `python -m harness.aws.endpoint` on a free port, creates a no-op function, warms it, then
per round times ``--calls`` boto3 Invokes one after another (as make bench's warm-Invoke row
does; target: median <= 2 ms) and prints the median and p90 wall time with the CPU per Invoke
of this client (botocore), of the endpoint process (uvicorn, the Invoke API, the runtime,
log delivery) and of the environment (the endpoint's children: the function's process and its
idle fork server), and the load average. CPU per Invoke is what a change of the endpoint moves; the wall
time also moves with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import psutil
from bench_endpoint import _client, _free_port, _noop_zip, _start, _wait_ready


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu_s(processes: list[psutil.Process]) -> float:
    """CPU seconds of the endpoint's child processes (the environment, the fork server)."""
    total = 0.0
    for process in processes:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def main() -> None:
    """Run the benchmark and print one line per round."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="Invokes per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the first warms up)")
    args = parser.parse_args()
    port = _free_port()
    endpoint, _ = _start([sys.executable, "-m", "harness.aws.endpoint", "--port", str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        lam, iam = _client("lambda", url), _client("iam", url)
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(FunctionName="noop", Runtime="python3.12", Role=role,
                            Handler="noop.handler", Code={"ZipFile": _noop_zip()})
        server = psutil.Process(endpoint.pid)
        for _ in range(50):
            lam.invoke(FunctionName="noop", Payload=b"{}")["Payload"].read()
        children = server.children(recursive=True)  # the fork server and the environment
        for _ in range(args.rounds):
            server_before, client_before = sum(server.cpu_times()[:2]), _cpu_s()
            environment_before = _children_cpu_s(children)
            wall: list[float] = []
            for _ in range(args.calls):
                began = time.perf_counter()
                lam.invoke(FunctionName="noop", Payload=b"{}")["Payload"].read()
                wall.append((time.perf_counter() - began) * 1000.0)
            server_ms = (sum(server.cpu_times()[:2]) - server_before) * 1000.0 / args.calls
            client_ms = (_cpu_s() - client_before) * 1000.0 / args.calls
            environment_ms = (_children_cpu_s(children) - environment_before) * 1000.0 / args.calls
            p90 = sorted(wall)[int(len(wall) * 0.9)]
            print(f"warm Invoke: median {statistics.median(wall):.3f} ms, p90 {p90:.3f} ms; CPU "
                  f"per Invoke: client {client_ms:.3f} ms, endpoint {server_ms:.3f} ms, "
                  f"environment {environment_ms:.3f} ms; load {os.getloadavg()[0]:.1f}")
    finally:
        endpoint.terminate()
        endpoint.wait()


if __name__ == "__main__":
    main()
