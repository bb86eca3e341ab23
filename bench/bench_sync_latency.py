"""Sync latency of the whole product path: write -> readable through the gateway, with faults.

Each scenario writes command records (inserts) at an offered rate for ``--seconds`` (at most
``--max-writes`` of them), from four writer threads, while a probe follows one write in
``--sample`` through the gateway (``POST /v1/query/user`` again and again, without pausing,
until the record shows up). Scenarios: 100 and 1,000 writes/s offered, each without faults
and with 10 % of stream-processor invocations failing (half an unhandled error, half a partial
batch response). The machine's own ceiling shows as the achieved rate: a rate it cannot write
is printed as achieved, not as offered. Ratios are against the first scenario (100/s, no
faults), measured in the same run. Where the time goes stage by stage: bench_sync_stages.py.

    .venv/bin/python bench/bench_sync_latency.py [--seconds 10] [--sample 20] [--max-writes 2000]

``--follow N``: only make bench's sync row instead (``write_to_readable``: N writes at 5/s, each
followed until a gateway GET held it) on a stack of its own (``query-harness up --detach``, as
make bench runs it) or the one given by ``--edge-url``/``--gateway-url``, after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.faults.client import FaultsClient  # noqa: E402
from harness.faults.soak_workload import SoakConfig, Write, Writer, generate  # noqa: E402
from harness.stack.provision import aws_client  # noqa: E402

REGION = "ap-southeast-1"
SCENARIOS = [(100.0, 0.0), (100.0, 0.10), (1000.0, 0.0), (1000.0, 0.10)]


SIGNAL_PAUSE_S = 0.002  # adds at most 2 ms (1 ms on average) to a sample
#: the stamps of one followed write (perf_counter s; ``polls``/``gets``: how many were asked)
STAMPS = ("written", "acked", "signalled", "get_started", "readable")


class GetItemSignal:
    """A strongly consistent GetItem of one read key at the endpoint, asked again and again on
    a keep-alive connection of its own, its request built once.

    The same request botocore sends (``DynamoDB_20120810.GetItem``, JSON 1.0, signed for the
    endpoint's region; the embedded endpoint reads the credential scope, not the signature, as
    its pollers' in-process requests do), answered by the same handler; only the client side is
    lighter: boto3 builds, signs and parses each call for ~1 ms of CPU, on the two cores the
    write path it measures runs on. A stack that enforces IAM refuses it: an error, not a figure.
    """

    def __init__(self, edge_url: str, region: str, key: dict[str, Any]) -> None:
        parts = urllib.parse.urlsplit(edge_url)
        self._connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                                      timeout=10.0)
        self._body = json.dumps({"TableName": "notification-records", "Key": key,
                                 "ConsistentRead": True}).encode()
        self._headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20000101/{region}/dynamodb/"
                             "aws4_request, SignedHeaders=host;x-amz-target, Signature=0",
        }

    def holds(self) -> bool:
        """True when the item is there (a consistent read)."""
        self._connection.request("POST", "/", self._body, self._headers)
        answer = self._connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GetItem signal answered {answer.status}: {body[:200]!r}")
        return json.loads(body).get("Item") is not None

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


async def write_to_readable(state: dict[str, Any], rate: float, count: int,
                            signal: bool = True, *, boto3_signal: bool = False,
                            stamps: list[dict[str, float]] | None = None) -> list[float]:
    """Write ``count`` command records at ``rate``/s; ms from each write's start until a gateway
    GET (``POST /v1/query/user``, a user of its own) answered with it.

    Each follower waits on a signal that the read side holds the record, then asks the gateway:
    the signal is a strongly consistent GetItem of its read key on notification-records at the
    endpoint, asked every ``SIGNAL_PAUSE_S`` (one moto lookup each, where every gateway GET is a
    gateway, load balancer, replica, Lambda and moto Query that would compete for the two cores
    with the write path it measures; the pause keeps the signal itself from taking a core), on a
    raw keep-alive connection (``GetItemSignal``; ``boto3_signal``: through boto3, as before).
    The figure ends at the answer of a real GET that held the record; if that GET did not (yet)
    hold it, the gateway is asked again without pausing. ``signal=False``: the gateway is asked
    at once after the write's answer, again and again (its GETs then compete with the write
    path). ``stamps``: each write's ``STAMPS`` (and its ``polls`` and ``gets``) are added to it.
    """
    edge = aws_client("dynamodb", state["edge_url"], REGION)
    url, run = state["gateway_url"], uuid.uuid4().hex[:8]
    latencies: list[float] = []

    def landed(user: str, created_at: int, deadline: float, stamp: dict[str, float]) -> None:
        key = {"user_id": {"S": user}, "created_at": {"N": str(created_at)}}
        direct = None if boto3_signal else GetItemSignal(state["edge_url"], REGION, key)
        try:
            while time.perf_counter() < deadline:
                stamp["polls"] += 1
                held = (direct.holds() if direct is not None else "Item" in edge.get_item(
                    TableName="notification-records", Key=key, ConsistentRead=True))
                if held:
                    stamp["signalled"] = time.perf_counter()
                    return
                time.sleep(SIGNAL_PAUSE_S)
        finally:
            if direct is not None:
                direct.close()

    async with httpx.AsyncClient(timeout=30.0) as client:

        async def follow(user: str, created_at: int, stamp: dict[str, float]) -> None:
            written = stamp["written"]
            deadline = written + 10.0
            if signal:
                await asyncio.to_thread(landed, user, created_at, deadline, stamp)
            while time.perf_counter() < deadline:
                stamp["gets"] += 1
                stamp["get_started"] = time.perf_counter()
                response = await client.post(url + "/query/user", json={"user_id": user})
                if response.status_code == 200 and response.json()["count"] > 0:
                    stamp["readable"] = time.perf_counter()
                    latencies.append((stamp["readable"] - written) * 1000.0)
                    return
            latencies.append(float("inf"))

        followers = []
        began = time.perf_counter()
        for index in range(count):
            await asyncio.sleep(max(began + index / rate - time.perf_counter(), 0))
            user, created_at = f"sync-{run}-{index}", 1_750_000_000_000 + index
            item = {"transaction_id": {"S": f"tx-{run}-{index}"},
                    "created_at": {"N": str(created_at)}, "user_id": {"S": user},
                    "notification_title": {"S": "sync"}, "status": {"S": "SENT"},
                    "platform": {"S": "IOS"}, "device_token": {"S": "bench-device"},
                    "payload": {"S": "{}"}}
            # from the write's start, as a client sees it
            stamp = {"written": time.perf_counter(), "polls": 0.0, "gets": 0.0}
            await asyncio.to_thread(edge.put_item, TableName="command-records", Item=item)
            stamp["acked"] = time.perf_counter()
            if stamps is not None:
                stamps.append(stamp)
            followers.append(asyncio.create_task(follow(user, created_at, stamp)))
        await asyncio.gather(*followers)
    return latencies


def stage_lines(stamps: list[dict[str, float]]) -> list[str]:
    """Median and p90 of each step between ``STAMPS`` (ms), and polls/GETs per write."""
    lines, previous = [], "written"
    for stage in STAMPS[1:]:
        steps = sorted((s[stage] - s[previous]) * 1000 for s in stamps
                       if stage in s and previous in s)
        if steps:
            lines.append(f"  {previous:>11} -> {stage:<11} median {statistics.median(steps):6.1f}"
                         f" p90 {steps[int(len(steps) * 0.9)]:6.1f} ms")
            previous = stage
    for name in ("polls", "gets"):
        lines.append(f"  {name} per write: median {statistics.median(s[name] for s in stamps)}")
    return lines


class GatewayProbe:
    """Follows sampled writes through the gateway until each is readable."""

    def __init__(self, gateway_url: str, every: int) -> None:
        self._http = httpx.Client(base_url=gateway_url, timeout=30.0)
        self._every = every
        self._pending: list[Write] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._offered = threading.Event()  # set when a sample is waiting
        self.latencies_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="gateway-probe", daemon=True)

    def offer(self, write: Write) -> None:
        if write.index % self._every == 0:
            with self._lock:
                self._pending.append(write)
            self._offered.set()

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout_s: float) -> int:
        """Until every sample was seen (or the timeout); returns how many were not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.1)
        self._stop.set()
        self._offered.set()
        self._thread.join()
        self._http.close()
        return len(self._pending)

    def _run(self) -> None:
        # Polls without pausing while a sample waits (a pause between polls would add up to its
        # length to every figure), and sleeps on an event while none does.
        while not self._stop.is_set():
            with self._lock:
                batch = self._pending[:8]
                if not batch:
                    self._offered.clear()
            if not batch:
                self._offered.wait(0.1)
                continue
            for write in batch:
                assert write.image is not None and write.sent_at is not None
                answer = self._http.post("/query/user", json={"user_id": write.user_id})
                titles = {r["notification_title"] for r in answer.json().get("records", [])}
                if write.image["notification_title"] in titles:
                    self.latencies_s.append(time.monotonic() - write.sent_at)
                    with self._lock:
                        self._pending.remove(write)


def scenario(
    clients: dict[str, Any], faults: FaultsClient, gateway_url: str, rate: float,
    fault_share: float, writes_count: int, sample: int, run: str,
) -> dict[str, float]:  # fmt: skip
    faults.clear()
    if fault_share:
        for mode, seed in (("unhandled", 1), ("partial", 2)):
            faults.add(kind="fail", function="stream-processor", mode=mode,
                       fraction=fault_share / 2, seed=seed)  # fmt: skip
    config = SoakConfig(records=writes_count, poison_fraction=0.0, modify_fraction=0.0,
                        remove_fraction=0.0, users=max(1, writes_count // 4))  # fmt: skip
    writes = generate(config, run)
    probe = GatewayProbe(gateway_url, sample)
    writer = Writer(clients["dynamodb"], writes, rate, threads=4)
    writer.on_sent = probe.offer
    probe.start()
    started = time.monotonic()
    writer.run()
    elapsed = time.monotonic() - started
    missing = probe.wait(300.0)
    fired = sum(f["fired"] for f in faults.list()["faults"])
    faults.clear()
    latencies = sorted(probe.latencies_s) or [float("nan")]
    return {
        "offered": rate,
        "achieved": writer.sent / elapsed,
        "faults": fault_share,
        "fired": fired,
        "samples": len(probe.latencies_s),
        "missing": missing,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="writing time per scenario")
    parser.add_argument("--sample", type=int, default=20, help="follow one write in N")
    parser.add_argument(
        "--max-writes",
        type=int,
        default=2000,
        help="cap per scenario (the stream path drains "
        "a few dozen records/s on a loaded 2-core machine)",
    )
    parser.add_argument("--edge-url", help="a running stack's AWS endpoint (needs --gateway-url)")
    parser.add_argument("--gateway-url", help="a running stack's gateway stage URL (.../v1)")
    parser.add_argument("--follow", type=int, default=0,
                        help="only the sync row of make bench: N writes followed at 5/s")
    parser.add_argument("--no-signal", action="store_true",
                        help="with --follow: ask the gateway at once, without the GetItem signal")
    parser.add_argument("--boto3-signal", action="store_true",
                        help="with --follow: the GetItem signal through boto3 (as before)")
    parser.add_argument("--compare-signal", action="store_true",
                        help="with --follow: the raw and the boto3 signal alternated, both shown")
    args = parser.parse_args(argv)
    if args.follow:
        return follow(args)
    with ExitStack() as stack:
        if args.edge_url and args.gateway_url:
            edge_url, gateway_url = args.edge_url, args.gateway_url
        else:
            from harness.stack.stack import Stack, StackConfig

            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
            running = Stack(StackConfig(edge_port=0, gateway_port=0, state_dir=state_dir))
            running.start()
            stack.callback(running.stop)
            edge_url, gateway_url = running.state()["edge_url"], running.state()["gateway_url"]
        clients = {"dynamodb": aws_client("dynamodb", edge_url, REGION)}
        faults = stack.enter_context(FaultsClient(edge_url))
        rows = []
        for n, (rate, share) in enumerate(SCENARIOS):
            count = min(int(rate * args.seconds), args.max_writes)
            row = scenario(clients, faults, gateway_url, rate, share, count, args.sample,
                           run=f"bench{int(time.time())}s{n}")  # fmt: skip
            rows.append(row)
            print(f"offered {row['offered']:6.0f}/s  achieved {row['achieved']:6.1f}/s  "
                  f"faults {row['faults']:4.0%} (fired {row['fired']:3.0f})  samples "
                  f"{row['samples']:3.0f} (unseen {row['missing']:.0f})  median "
                  f"{row['median_ms']:8.0f} ms  p99 {row['p99_ms']:8.0f} ms", flush=True)  # fmt: skip
    base = rows[0]
    print("ratios against 100/s without faults (median, p99):")
    for row in rows[1:]:
        print(f"  offered {row['offered']:.0f}/s, faults {row['faults']:.0%}: "
              f"x{row['median_ms'] / base['median_ms']:.2f}, x{row['p99_ms'] / base['p99_ms']:.2f}")  # fmt: skip
    return 0


def alternated(state: dict[str, Any], count: int, modes: list[str], signal: bool = True,
               ) -> dict[str, tuple[list[float], list[dict[str, float]]]]:
    """``write_to_readable`` at 5/s, ``count`` writes per mode ("raw": ``GetItemSignal``,
    "boto3": the signal through boto3), in rounds of 20 alternated (one load for all):
    each mode's latencies (ms) and stamps."""
    results: dict[str, tuple[list[float], list[dict[str, float]]]] = {m: ([], []) for m in modes}
    done = 0
    while done < count:
        size = min(20 if len(modes) > 1 else count, count - done)
        for mode in modes:
            latencies, stamps = results[mode]
            latencies += asyncio.run(write_to_readable(
                state, 5.0, size, signal=signal, boto3_signal=mode == "boto3", stamps=stamps))
        done += size
    return results


def follow(args: argparse.Namespace) -> int:
    """make bench's sync row alone: ``write_to_readable`` at 5/s, after a warm-up.

    ``--compare-signal``: rounds of 20 writes with the raw GetItem signal and with boto3's,
    alternated on the one stack (A/B under the same load), each printed with its stages."""
    import psutil  # noqa: PLC0415

    modes = ["raw", "boto3"] if args.compare_signal else ["boto3" if args.boto3_signal else "raw"]
    with ExitStack() as stack:
        if args.edge_url and args.gateway_url:
            state = {"edge_url": args.edge_url, "gateway_url": args.gateway_url}
        else:
            sys.path.insert(0, str(ROOT / "bench"))
            import bench_api  # noqa: PLC0415

            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sync-"))
            state, _ = stack.enter_context(bench_api.stack(state_dir))
        asyncio.run(write_to_readable(state, 5.0, 10))  # warm-up: every worker exists
        load = os.getloadavg()[0]
        cpu = psutil.cpu_times()
        results = alternated(state, args.follow, modes, signal=not args.no_signal)
        after = psutil.cpu_times()
    idle = (after.idle - cpu.idle) / max(sum(after) - sum(cpu), 1e-9)
    for mode in modes:
        latencies, stamps = sorted(results[mode][0]), results[mode][1]

        def pct(share: float, ordered: list[float] = latencies) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * share))]

        signal = "no signal" if args.no_signal else f"{mode} GetItem signal"
        print(f"sync write->readable ({signal}), {len(latencies)} writes at 5/s: p50 "
              f"{pct(0.5):.1f} ms, p90 {pct(0.9):.1f} ms, p99 {pct(0.99):.1f} ms, max "
              f"{latencies[-1]:.1f} ms (load average {load:.1f} as it began, CPU idle "
              f"{idle:.0%} during it)")
        print("\n".join(stage_lines(stamps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
