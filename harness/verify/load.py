"""A headless locust run through its library API, in a process of its own.

locust patches the standard library with gevent when imported, so it never runs inside the verify
process: :func:`run_load` starts ``python -m harness.verify.load`` and reads back one sample per
request (seconds since the start, route, status, milliseconds, request id, error).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One request of the load run."""

    t: float
    route: str
    status: int
    ms: float
    request_id: str
    error: str | None


@dataclass
class LoadRun:
    """A load run in the background: :meth:`wait` returns its samples."""

    process: subprocess.Popen[bytes]
    out: Path
    log: Path
    started: float

    def wait(self, timeout_s: float) -> list[Sample]:
        """Wait for the run to end; its samples (RuntimeError with the log's end if it failed)."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"the load run did not end within {timeout_s:g} s") from None
        if code != 0 or not self.out.is_file():
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"the load run exited with {code}: " + " | ".join(tail))
        data = json.loads(self.out.read_text(encoding="utf-8"))
        return [Sample(**sample) for sample in data["samples"]]


def start_load(
    host: str,
    rate: float,
    duration_s: float,
    work_dir: Path,
    ids_file: Path | None = None,
    ramp_s: float = 0.0,
) -> LoadRun:
    """Start offering ``rate`` requests/s to ``host`` (a stage URL) for ``duration_s`` seconds; with
    ``ramp_s`` the users start one after another over that time, so the offered rate rises
    linearly from one user's to ``rate``, then holds."""
    work_dir.mkdir(parents=True, exist_ok=True)
    users = max(1, math.ceil(rate / 5))  # each simulated user offers up to 5 requests/s
    out, log = work_dir / "load-samples.json", work_dir / "load.log"
    out.unlink(missing_ok=True)
    env = {**os.environ, "VERIFY_USER_RATE": f"{rate / users:.4f}"}
    if ids_file is not None:
        env["VERIFY_QUERY_IDS"] = str(ids_file)
    command = [
        sys.executable, "-m", "harness.verify.load",
        "--host", host, "--users", str(users), "--duration", str(duration_s), "--out", str(out),
        "--ramp", str(ramp_s),
    ]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    return LoadRun(process, out, log, time.monotonic())


def run_load(
    host: str, rate: float, duration_s: float, work_dir: Path, ids_file: Path | None = None
) -> list[Sample]:
    """Offer the load and return one sample per request."""
    return start_load(host, rate, duration_s, work_dir, ids_file).wait(duration_s + 120)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank, of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _main() -> None:  # pragma: no cover - runs in the load process
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ramp", type=float, default=0.0)
    args = parser.parse_args()

    import gevent
    from locust.env import Environment

    from harness.verify.locustfile import QueryUser

    samples: list[dict[str, Any]] = []
    began = time.monotonic()

    def on_request(
        name: str, response: Any, response_time: float, exception: Any, context: Any, **_: Any
    ) -> None:
        status = int(getattr(response, "status_code", 0) or 0)
        samples.append(
            {
                "t": round(time.monotonic() - began - response_time / 1000, 4),
                "route": name,
                "status": status,
                "ms": round(response_time, 3),
                "request_id": (context or {}).get("request_id", ""),
                "error": None if exception is None and status < 400 else str(exception or status),
            }
        )

    env = Environment(user_classes=[QueryUser], host=args.host)
    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.users / args.ramp if args.ramp > 0 else args.users)
    gevent.spawn_later(args.duration, runner.quit)
    runner.greenlet.join()
    args.out.write_text(json.dumps({"samples": samples}), encoding="utf-8")


if __name__ == "__main__":
    _main()
