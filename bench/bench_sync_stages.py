"""Where the sync time goes: write -> readable through the gateway, stage by stage.

The embedded endpoint runs in this process (so its stages can be timed with hooks) and the
stack is brought up on it (``StackConfig.endpoint_url``): the gateway, load balancer, replicas
and Lambda workers are the ones ``query-harness up`` runs. One command record is written at a
time, ``--gap`` apart; after its PutItem is acknowledged a client asks the gateway
(``POST /v1/query/user``) again and again, without pausing, until the record is there.
Stage times (perf_counter, one clock) for each sample:

    sent -> acked (PutItem answered) ; in_stream (moto added the stream record) ;
    read (a poller's GetRecords returned it) ; invoke_start / invoke_end (the batch's Invoke of
    stream-processor) ; handler_request (moto began its conditional PutItem: the function ran,
    its boto3 call reached the endpoint and a moto thread) ; handler_write (moto wrote the item) ;
    readable (the gateway answer that held it; readable_poll_start: when that request began)

Printed: median and p90 of each step and of the time since sent; CPU per sample of every
process of the stack (psutil, robust on a loaded machine where wall clock is not), of this
process's thread groups, and of moto per DynamoDB action (the pollers' GetRecords skip moto's
app, ``stream_patches.get_records_answer``: their CPU is the ``esm`` thread group's).
``--ab NAME`` (``AB_TOGGLES``): a change on for every other sample only, both halves printed.

Processes as ``query-harness up`` lays them out (default): the endpoint alone in this process
(hooked), the stack (gateway, load balancer, ECS, telemetry) in its own
(``query-harness up --endpoint-url``), the client in its own (``--client``: it writes and reads,
and hands its stamps back as JSON). perf_counter is CLOCK_MONOTONIC, one clock for all three.
``--one-process``: the stack and the client run in this process too, beside the endpoint,
sharing its GIL (how this script measured before; the stage figures come out larger).

    .venv/bin/python bench/bench_sync_stages.py [--samples 200] [--gap 0.2] [--one-process]
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.aws.endpoint import Endpoint  # noqa: E402

STAGES = ["sent", "acked", "in_stream", "read", "invoke_start", "handler_request",
          "handler_write", "invoke_end",
          "readable_poll_start", "readable"]
Stages = dict[str, dict[str, float]]


#: ``--ab NAME``: a change of the endpoint's process switched on for the odd samples only (B)
#: and off for the even ones (A), so both see the same load: it is set for a sample when its
#: command record reaches moto, and for the next one when the handler's write lands (that
#: sample's gateway GET then runs in the next one's mode).
AB_TOGGLES: dict[str, Any] = {  # (endpoint, on) -> None
    # the GIL's switch interval 1 ms instead of 5 (no gain measured at load ~5.5)
    "switch-1ms": lambda endpoint, on: sys.setswitchinterval(0.001 if on else 0.005),
}


class Hooks:
    """Timestamps per transaction id and moto CPU per action, from wrappers in this process."""

    def __init__(self, endpoint: Endpoint, ab: str | None = None) -> None:
        self.endpoint = endpoint
        self.toggle = AB_TOGGLES[ab] if ab else None
        self.stages: Stages = collections.defaultdict(dict)
        self.actions: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
        self.counting = False
        self.gc_pauses: list[tuple[float, float, int]] = []  # (start, ms, generation)
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """gc.callbacks: every collection of this process (moto's and the pollers' heap)."""
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        elif self.counting:
            self.gc_pauses.append((self._gc_started, (now - self._gc_started) * 1000,
                                   int(info["generation"])))

    def mark(self, tx: Any, stage: str) -> None:
        if tx and stage not in self.stages[tx]:
            self.stages[tx][stage] = time.perf_counter()
            number = str(tx).rsplit("-", 1)[-1]
            if self.toggle is not None and stage in ("in_stream", "handler_write") and (
                    number.isdigit()):  # a sample of ours (not the seed's records)
                # B (on) for odd sample numbers; the next sample's mode once the write landed
                self.toggle(self.endpoint, (int(number) + (stage == "handler_write")) % 2 == 1)

    def install(self) -> None:
        from moto.dynamodb.models.table import StreamShard, Table

        from harness.aws import moto_app
        from harness.streams import batch, poller

        hooks = self
        add, put_item = StreamShard.add, Table.put_item

        def traced_add(shard: Any, old: Any, new: Any) -> None:
            add(shard, old, new)
            if new is not None and shard.table.name == "command-records":
                value = new.attrs.get("transaction_id")
                hooks.mark(value and value.value, "in_stream")

        def traced_put(table: Any, attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            item = put_item(table, attrs, *args, **kwargs)
            if table.name == "notification-records":
                hooks.mark(attrs.get("transaction_id", {}).get("S"), "handler_write")
            return item

        read, invoke = poller._ShardWorker._read, batch.BatchDelivery._invoke

        def traced_read(worker: Any, limit: int) -> bool:
            known = len(worker.buffer)
            drained = read(worker, limit)
            for record in worker.buffer[known:]:
                hooks.mark(_tx(record), "read")
            return drained

        def traced_invoke(delivery: Any, config: Any, records: list[Any]) -> Any:
            for record in records:
                hooks.mark(_tx(record), "invoke_start")
            try:
                return invoke(delivery, config, records)
            finally:
                for record in records:
                    hooks.mark(_tx(record), "invoke_end")

        call = moto_app.MotoApp.__call__

        def counted_call(app: Any, request: Any) -> Any:
            if b'"notification-records"' in request.body and (
                    request.header("x-amz-target") == "DynamoDB_20120810.PutItem"):
                hooks.mark(_put_tx(request.body), "handler_request")
            started = time.thread_time()
            try:
                return call(app, request)
            finally:
                if hooks.counting:
                    target = request.header("x-amz-target") or f"{request.method} {request.path}"
                    entry = hooks.actions[target.rsplit(".", 1)[-1][:40]]
                    entry[0] += 1
                    entry[1] += time.thread_time() - started

        gc.callbacks.append(self.on_gc)
        StreamShard.add = traced_add  # type: ignore[method-assign]
        Table.put_item = traced_put  # type: ignore[method-assign]
        poller._ShardWorker._read = traced_read  # type: ignore[method-assign]
        batch.BatchDelivery._invoke = traced_invoke  # type: ignore[method-assign]
        moto_app.MotoApp.__call__ = counted_call  # type: ignore[method-assign,assignment]


def _put_tx(body: bytes) -> Any:
    try:
        return json.loads(body)["Item"]["transaction_id"]["S"]
    except (ValueError, KeyError, TypeError):
        return None


def _tx(record: Any) -> Any:
    return (record.event["dynamodb"].get("NewImage") or {}).get("transaction_id", {}).get("S")


def _cpu_by_process(*others: int) -> dict[int, tuple[str, float]]:
    """CPU seconds of this process, its children and ``others`` (pids) with theirs."""
    out = {}
    processes = []
    for root in (os.getpid(), *others):
        try:
            me = psutil.Process(root)
            processes += [me, *me.children(recursive=True)]
        except psutil.Error:
            continue
    for process in processes:
        try:
            times = process.cpu_times()
            label = " ".join(process.cmdline()[1:3])[-60:]
            out[process.pid] = (label, times.user + times.system)
        except psutil.Error:
            continue
    return out


def _cpu_by_thread_group() -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    groups: collections.Counter[str] = collections.Counter()
    for thread in psutil.Process().threads():
        name = names.get(thread.id, "other").rstrip("0123456789_-")
        groups[name.split("-")[0] if name.startswith("esm-") else name] += (
            thread.user_time + thread.system_time)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--warmup", type=int, default=10,
                        help="samples before the measured ones (0: the first write is measured)")
    parser.add_argument("--warm-reads", type=int, default=20,
                        help="gateway reads before any write (make bench's API load comes first)")
    parser.add_argument("--slowest", type=int, default=5,
                        help="print the stage breakdown of this many slowest samples")
    parser.add_argument("--ab", choices=sorted(AB_TOGGLES),
                        help="a change on for the odd samples only: both halves are reported")
    parser.add_argument("--one-process", action="store_true",
                        help="the stack and the client in this process, beside the endpoint")
    parser.add_argument("--client", nargs=2, metavar=("EDGE_URL", "GATEWAY_URL"),
                        help=argparse.SUPPRESS)  # the client process: prints its stamps as JSON
    args = parser.parse_args(argv)
    if args.client:
        stamps = Stamps()
        measured = run(stamps, *args.client, args)
        print(json.dumps({"stages": stamps.stages, "txs": measured[0], "polls": measured[1],
                          "wall": measured[2]}))
        return 0
    from harness.aws.heap import freeze_startup_heap

    endpoint = Endpoint(port=0).start()
    hooks = Hooks(endpoint, args.ab)
    hooks.install()
    with tempfile.TemporaryDirectory(prefix="sync-stages-") as state_dir:
        if args.one_process:
            from harness.stack.stack import Stack, StackConfig

            stack = Stack(StackConfig(endpoint_url=endpoint.url, edge_port=0, gateway_port=0,
                                      state_dir=Path(state_dir)))
            stack.start()
            try:
                freeze_startup_heap()  # as the endpoint's process does 30 s after it started
                measured = run(hooks, endpoint.url, stack.state()["gateway_url"], args)
            finally:
                stack.stop()
                endpoint.stop()
        else:
            try:
                measured = run_apart(hooks, endpoint.url, state_dir, args)
            finally:
                endpoint.stop()
    if args.ab:
        txs = measured[0]
        for label, parity in (("A (off)", 0), ("B (on: " + args.ab + ")", 1)):
            half = [t for t in txs if int(t.rsplit("-", 1)[-1]) % 2 == parity]
            print(f"== {label}: {len(half)} samples")
            stage_table(hooks, half)
    report(hooks, *measured, args.samples)
    breakdown(hooks, measured[0], args.slowest)
    return 0


def run_apart(hooks: Hooks, edge: str, state_dir: str, args: argparse.Namespace) -> tuple[
    list[str], list[int], float, dict[int, tuple[str, float]], dict[str, float]
]:
    """The stack and the client in processes of their own; their stamps merged into ``hooks``."""
    from harness.aws.heap import freeze_startup_heap

    env = {**os.environ, "HARNESS_STATE_DIR": state_dir, "TERM": "dumb"}
    up = subprocess.run([sys.executable, "-m", "harness", "up", "--detach", "--endpoint-url",
                         edge, "--gateway-port", "0"], capture_output=True, text=True, env=env,
                        cwd=ROOT, timeout=300, check=False)
    if up.returncode != 0:
        raise SystemExit(f"up failed: {up.stdout[-1500:]} {up.stderr[-1500:]}")
    try:
        state = json.loads((Path(state_dir) / "state.json").read_text())
        gateway, stack_pid = state["gateway_url"], int(state["pid"])
        freeze_startup_heap()  # as the endpoint's process does 30 s after it started
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", edge, gateway, "--samples", str(args.samples),
             "--gap", str(args.gap), "--warmup", str(args.warmup), "--warm-reads",
             str(args.warm_reads)], stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
        assert client.stdout is not None
        if client.stdout.readline().strip() != "measuring":
            raise SystemExit("the client failed before measuring")
        processes, threads = _cpu_by_process(stack_pid), _cpu_by_thread_group()
        hooks.counting = True
        out, _ = client.communicate(timeout=600)
        hooks.counting = False
        cpu = {pid: (label, spent - processes.get(pid, ("", 0.0))[1])
               for pid, (label, spent) in _cpu_by_process(stack_pid).items()}
        thread_cpu = {name: spent - threads.get(name, 0.0)
                      for name, spent in _cpu_by_thread_group().items()}
    finally:
        subprocess.run([sys.executable, "-m", "harness", "down"], capture_output=True, env=env,
                       cwd=ROOT, timeout=120, check=False)
    answer = json.loads(out)
    for tx, stamps in answer["stages"].items():
        hooks.stages[tx].update(stamps)
    return answer["txs"], answer["polls"], answer["wall"], cpu, thread_cpu


class Stamps:
    """The client's own stamps (sent, acked, readable), handed back to the hooked process."""

    def __init__(self) -> None:
        self.stages: Stages = collections.defaultdict(dict)
        self.counting = False


def run(hooks: Hooks | Stamps, edge: str, gateway: str, args: argparse.Namespace) -> tuple[
    list[str], list[int], float, dict[int, tuple[str, float]], dict[str, float]
]:
    dynamodb = boto3.client("dynamodb", endpoint_url=edge, region_name="ap-southeast-1",
                            aws_access_key_id="test", aws_secret_access_key="test")
    http = httpx.Client(timeout=30)
    run_id = os.urandom(4).hex()
    polls: list[int] = []

    def sample(index: int) -> str:
        tx, user = f"tx-{run_id}-{index}", f"sync-{run_id}-{index}"
        item = {"transaction_id": {"S": tx}, "created_at": {"N": str(1_750_000_000_000 + index)},
                "user_id": {"S": user}, "notification_title": {"S": "sync"},
                "status": {"S": "SENT"}, "platform": {"S": "IOS"},
                "device_token": {"S": "bench-device"}, "payload": {"S": "{}"}}
        hooks.stages[tx]["sent"] = sent = time.perf_counter()
        dynamodb.put_item(TableName="command-records", Item=item)
        hooks.stages[tx]["acked"] = time.perf_counter()
        count = 0
        while time.perf_counter() - sent < 10:
            began = time.perf_counter()
            answer = http.post(gateway + "/query/user", json={"user_id": user})
            count += 1
            if answer.status_code == 200 and answer.json()["count"] > 0:
                hooks.stages[tx]["readable_poll_start"] = began
                hooks.stages[tx]["readable"] = time.perf_counter()
                break
        polls.append(count)
        return tx

    for _ in range(args.warm_reads):  # the read path is warm, the write path as after `up`
        http.post(gateway + "/query/user", json={"user_id": f"warm-{run_id}"})
    for index in range(args.warmup):  # warm-up: every worker and connection exists
        sample(index)
    hooks.stages.clear()
    polls.clear()
    if isinstance(hooks, Stamps):
        print("measuring", flush=True)  # the hooked process starts counting CPU now
    processes, threads = _cpu_by_process(), _cpu_by_thread_group()
    hooks.counting = True
    began = time.perf_counter()
    txs = []
    for index in range(args.warmup, args.warmup + args.samples):
        txs.append(sample(index))
        time.sleep(args.gap)
    wall = time.perf_counter() - began
    hooks.counting = False
    cpu = {pid: (label, spent - processes.get(pid, ("", 0.0))[1])
           for pid, (label, spent) in _cpu_by_process().items()}
    thread_cpu = {name: spent - threads.get(name, 0.0)
                  for name, spent in _cpu_by_thread_group().items()}
    http.close()
    return txs, polls, wall, cpu, thread_cpu


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def stage_table(hooks: Hooks, txs: list[str]) -> None:
    """Median and p90 of each stage step of ``txs``, and of the time since sent."""
    previous = "sent"
    for stage in STAGES[1:]:
        steps = [(hooks.stages[t][stage] - hooks.stages[t][previous]) * 1000 for t in txs
                 if stage in hooks.stages[t] and previous in hooks.stages[t]]
        since = [(hooks.stages[t][stage] - hooks.stages[t]["sent"]) * 1000 for t in txs
                 if stage in hooks.stages[t]]
        if steps:
            print(f"  {previous:>19} -> {stage:<19} median {statistics.median(steps):6.1f} "
                  f"p90 {_pct(steps, 0.9):6.1f} ms | since sent median "
                  f"{statistics.median(since):6.1f} p99 {_pct(since, 0.99):6.1f} ms")
        previous = stage


def report(hooks: Hooks, txs: list[str], polls: list[int], wall: float,
           cpu: dict[int, tuple[str, float]], thread_cpu: dict[str, float], n: int) -> None:
    load = os.getloadavg()
    print(f"{len(txs)} samples, gateway requests per sample median {statistics.median(polls)}, "
          f"load average {load[0]:.1f} {load[1]:.1f} ({psutil.cpu_count()} CPUs)")
    stage_table(hooks, txs)
    pauses = hooks.gc_pauses
    for generation in (0, 1, 2):
        times = [ms for _, ms, gen in pauses if gen == generation]
        if times:
            print(f"  gc generation {generation} in this process: {len(times)} collections, "
                  f"max {max(times):.1f} ms, total {sum(times):.0f} ms "
                  f"({len(gc.get_objects()):,} objects tracked now)")
    print(f"CPU per sample by process ({wall:.1f} s of wall clock):")
    for pid, (label, spent) in sorted(cpu.items(), key=lambda e: -e[1][1]):
        if spent > 0.01:
            print(f"  {pid:>7} {label:<60} {spent * 1000 / n:6.1f} ms")
    groups = sorted(thread_cpu.items(), key=lambda e: -e[1])
    print("  this process by thread: " + ", ".join(
        f"{name} {spent * 1000 / n:.1f}" for name, spent in groups if spent * 1000 / n >= 0.1))
    print("  moto by action (per sample: count x CPU ms each): " + ", ".join(
        f"{action} {count / n:.2f} x {spent * 1000 / max(count, 1):.2f}"
        for action, (count, spent) in sorted(hooks.actions.items(), key=lambda e: -e[1][1])))


def breakdown(hooks: Hooks, txs: list[str], slowest: int) -> None:
    """The stage steps (ms) of the median sample and of the ``slowest`` ones: who owns the tail."""
    def total(tx: str) -> float:
        stages = hooks.stages[tx]
        return stages.get("readable", float("inf")) - stages["sent"]

    ordered = sorted(txs, key=total)
    if not ordered:
        return
    picks = [("p50", ordered[len(ordered) // 2])]
    picks += [(f"#{rank + 1} slowest", tx) for rank, tx in enumerate(ordered[::-1][:slowest])]
    print("stage steps (ms) of single samples:")
    for label, tx in picks:
        stages, steps, previous = hooks.stages[tx], [], "sent"
        for stage in STAGES[1:]:
            if stage in stages and previous in stages:
                steps.append(f"{stage} +{(stages[stage] - stages[previous]) * 1000:.1f}")
                previous = stage
        sent, end = stages["sent"], stages.get("readable", stages["sent"] + 10)
        collected = sum(ms for began, ms, _ in hooks.gc_pauses if sent <= began <= end)
        print(f"  {label:>11} {tx.rsplit('-', 1)[-1]:>4} total {total(tx) * 1000:6.1f}: "
              + ", ".join(steps) + (f" | gc {collected:.1f}" if collected >= 0.5 else ""))


if __name__ == "__main__":
    sys.exit(main())
