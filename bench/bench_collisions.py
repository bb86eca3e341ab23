"""Benchmark what a read-key collision costs the stream (issue 18, docs/decisions/0001).

A collision's image is reported as a failed record, so the mapping retries it
(``maximum_retry_attempts`` from infra/terraform) before it sends it to the on-failure queue, and
the records behind it in the shard wait. One run on the whole local stack (embedded backend, no
gateway traffic) prints, over ``--rounds`` rounds each:

- baseline: sync latency of a lone command record (write -> readable in notification-records);
- behind a collision: sync latency of a record written right after a colliding one;
- report latency: write of the colliding record -> its sequence number in the on-failure queue;

as median, p99 and max, and the ratio of the two sync medians.

    .venv/bin/python bench/bench_collisions.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.readside import read_collisions  # noqa: E402
from harness.stack.commands import put_command, wait_for_sync  # noqa: E402
from harness.stack.provision import aws_client  # noqa: E402
from harness.stack.stack import Stack, StackConfig  # noqa: E402

TIMEOUT_S = 120.0


def record(n: int, *, user: str | None = None, created_at: int | None = None) -> dict[str, Any]:
    """A valid command record, unique unless ``user``/``created_at`` say otherwise."""
    return {
        "transaction_id": f"tx_bench_{n}_{time.monotonic_ns()}",
        "created_at": created_at if created_at is not None else int(time.time() * 1000) + n,
        "user_id": user or f"user_bench_{n}_{time.monotonic_ns()}",
        "notification_title": "bench",
        "status": "SENT",
        "platform": "IOS",
        "device_token": "t",
        "payload": "{}",
    }


def synced_after(dynamodb: Any, item: dict[str, Any]) -> float:
    """Write `item` and return the seconds until the read side holds it."""
    start = time.perf_counter()
    put_command(dynamodb, item)
    wait_for_sync(
        dynamodb, item["user_id"], item["created_at"], transaction_id=item["transaction_id"],
        timeout_s=TIMEOUT_S, interval_s=0.01,
    )
    return time.perf_counter() - start


def summary(name: str, samples_s: list[float]) -> float:
    """Print median, p99 and max in ms; return the median."""
    ordered = sorted(s * 1000 for s in samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    print(f"{name:<46} median {median:9.1f} ms   p99 {p99:9.1f} ms   max {ordered[-1]:9.1f} ms"
          f"   (n={len(ordered)})")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state_dir:
        stack = Stack(StackConfig(edge_port=0, gateway_port=0, seed=False,
                                  state_dir=Path(state_dir)))
        started = time.perf_counter()
        stack.start()
        print(f"stack up in {time.perf_counter() - started:.1f} s")
        try:
            state = stack.state()
            url, region = str(state["edge_url"]), str(state["region"])
            dynamodb = aws_client("dynamodb", url, region)
            logs, sqs = aws_client("logs", url, region), aws_client("sqs", url, region)
            baseline, behind, reported = [], [], []
            for n in range(args.rounds):
                baseline.append(synced_after(dynamodb, record(3 * n)))
                holder = record(3 * n + 1)
                synced_after(dynamodb, holder)
                since_ms = int(time.time() * 1000) - 5_000
                loser = record(3 * n + 2, user=holder["user_id"], created_at=holder["created_at"])
                wrote = time.perf_counter()
                put_command(dynamodb, loser)
                behind.append(synced_after(dynamodb, record(3 * n + 3)))
                deadline = time.monotonic() + TIMEOUT_S
                while True:
                    lines = read_collisions(logs, sqs, since_ms=since_ms).lines
                    if any(x.transaction_id == loser["transaction_id"] and x.in_dlq for x in lines):
                        reported.append(time.perf_counter() - wrote)
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{loser['transaction_id']} never reached the queue")
                    time.sleep(0.05)
            base = summary("sync, lone record", baseline)
            after = summary("sync, record right behind a collision", behind)
            summary("collision written -> in stream-processor-dlq", reported)
            print(f"ratio behind-a-collision / lone (medians): {after / base:.1f}x")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
