"""The soak: N command records through the real stream path under faults, then an exact check.

:func:`run_soak` clears the stack's faults, adds the run's (transient function failures, poison
records in both failure modes, write throttling on the read table, a watch on write order),
sends the writes at a steady rate while a probe measures sync latency, kills the Lambda worker
and restarts the stream poller at set points of the run, waits until the read side and the
on-failure queue have settled, and checks everything against what was written
(:mod:`harness.faults.soak_check`). Used by ``bench/soak.py`` (``make soak``) and by the short
soak in ``tests/e2e``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.faults.client import FaultsClient
from harness.faults.soak_check import Evidence, Verdict, check, read_dlq, read_side, read_stream
from harness.faults.soak_workload import (
    READ_TABLE,
    LatencyProbe,
    SoakConfig,
    Write,
    Writer,
    generate,
    new_run_id,
    poison_pattern,
)

__all__ = ["SoakResult", "run_soak"]

FUNCTION = "stream-processor"
DLQ_NAME = "stream-processor-dlq"
#: the evidence must stay unchanged this long (retries back off up to 2 s) to count as settled
SETTLE_S = 12.0


@dataclass
class SoakResult:
    """A run's verdict and figures, and the lines that print them."""

    run: str
    verdict: Verdict
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.verdict.problems

    def lines(self) -> list[str]:
        """The printed report."""
        f, c = self.figures, self.verdict.counts
        lines = [
            f"soak {self.run}: {c.get('keys', 0)} command records, {c.get('writes', 0)} writes "
            f"({c.get('live', 0)} live, {c.get('removed', 0)} removed, "
            f"{c.get('poison', 0)} poison) at {f['rate']:.0f}/s offered, "
            f"{c.get('writes', 0) / max(f['writing_s'], 1e-9):.0f}/s achieved",
            f"faults fired by kind: {f['fired_by_kind']}",
            f"stream-processor: {f['invocations']} invocations, {f['redeliveries']} redeliveries "
            f"(retries, bisected halves, resumptions), {f['smaller_redeliveries']} of them "
            f"smaller than the batch before (bisects / partial resumptions)",
            f"on-failure messages: {c.get('dlq_messages', 0)}; read records: "
            f"{c.get('read_items', 0)}; stream records: {c.get('stream_records', 0)}",
            f"lost {c.get('lost', 0)}, duplicate {c.get('duplicates', 0)}, out of order (older "
            "image applied) "
            f"{c.get('regressions', 0)}, stale {c.get('stale', 0)}; removed items briefly "
            f"re-created by a redelivered older image (then removed again): "
            f"{c.get('resurrected', 0)}",
            f"sync latency (write -> read table, {f['latency_samples']} samples): median "
            f"{f['latency_median_ms']:.0f} ms, p99 {f['latency_p99_ms']:.0f} ms, max "
            f"{f['latency_max_ms']:.0f} ms",
            f"total {f['total_s']:.1f} s (writing {f['writing_s']:.1f} s, settling "
            f"{f['settling_s']:.1f} s), {f['records_per_s']:.0f} records/s",
        ]
        lines += [f"PROBLEM: {problem}" for problem in self.verdict.problems]
        lines.append("soak: OK" if self.ok else f"soak: FAILED ({len(self.verdict.problems)})")
        return lines


def _fired_by_label(faults: list[dict[str, Any]]) -> dict[str, int]:
    """Fired counts by kind, fail faults told apart by mode and transient or poison."""
    fired: dict[str, int] = {}
    for fault in faults:
        if fault["kind"] == "watch":
            continue
        label = fault["kind"]
        if label == "fail":
            label += f" {fault['mode']} {'poison' if fault['keys'] else 'transient'}"
        fired[label] = fired.get(label, 0) + int(fault["fired"])
    return fired


def _faults(config: SoakConfig, run: str) -> list[dict[str, Any]]:
    half = config.transient_fraction / 2
    specs: list[dict[str, Any]] = [
        {"kind": "watch", "table": READ_TABLE},
        {"kind": "fail", "function": FUNCTION, "mode": "unhandled", "fraction": half,
         "seed": config.seed},
        {"kind": "fail", "function": FUNCTION, "mode": "partial", "fraction": half,
         "seed": config.seed + 1},
        {"kind": "fail", "function": FUNCTION, "mode": "unhandled",
         "keys": [poison_pattern(run, "unhandled")]},
        {"kind": "fail", "function": FUNCTION, "mode": "partial",
         "keys": [poison_pattern(run, "partial")]},
    ]  # fmt: skip
    if config.throttle_fraction > 0:
        specs.append({"kind": "throttle", "table": READ_TABLE, "fraction": config.throttle_fraction,
                      "operations": ["PutItem", "DeleteItem"], "seed": config.seed + 2})  # fmt: skip
    return specs


def run_soak(
    clients: dict[str, Any],
    faults: FaultsClient,
    config: SoakConfig,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> SoakResult:
    """One soak run on a stack (``clients``: boto3 dynamodb, dynamodbstreams and sqs)."""
    dynamodb, streams, sqs = clients["dynamodb"], clients["dynamodbstreams"], clients["sqs"]
    run = new_run_id()
    writes = generate(config, run)
    queue_url = sqs.get_queue_url(QueueName=DLQ_NAME)["QueueUrl"]
    faults.clear()
    for spec in _faults(config, run):
        faults.add(spec)
    probe = LatencyProbe(dynamodb, config.sample_every)
    writer = Writer(dynamodb, writes, config.rate, config.writers)
    triggers = _Triggers(faults, config, len(writes), progress)

    def sent(write: Write) -> None:
        probe.offer(write)
        triggers.check(writer.sent)

    writer.on_sent = sent
    progress(f"soak {run}: {len(writes)} writes at {config.rate:.0f}/s offered")
    started = time.monotonic()
    probe.start()
    writer.run()
    written = time.monotonic()
    progress(f"written in {written - started:.1f} s; waiting for the read side to settle")
    _, verdict = _settle(dynamodb, streams, sqs, queue_url, faults, run, writes, config)
    settled = time.monotonic()
    unmeasured = probe.stop()
    triggers.join()
    listed = faults.list()
    faults.clear()
    for error in writer.errors[:5]:
        verdict.problems.append(f"a write failed: {error}")
    deliveries = listed["deliveries"].get(FUNCTION, {})
    latencies = sorted(probe.latencies_s) or [0.0]
    total = settled - started
    figures = {
        "rate": config.rate,
        "fired_by_kind": _fired_by_label(listed["faults"]),
        "invocations": deliveries.get("invocations", 0),
        "redeliveries": deliveries.get("redeliveries", 0),
        "smaller_redeliveries": deliveries.get("smaller_redeliveries", 0),
        "latency_samples": len(probe.latencies_s),
        "latency_unmeasured": unmeasured,
        "latency_median_ms": statistics.median(latencies) * 1000,
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "latency_max_ms": latencies[-1] * 1000,
        "writing_s": written - started,
        "settling_s": settled - written,
        "total_s": total,
        "records_per_s": verdict.counts.get("writes", 0) / total if total else 0.0,
    }
    figures["fired_by_kind"].update(triggers.fired)
    return SoakResult(run, verdict, figures)


def _settle(
    dynamodb: Any, streams: Any, sqs: Any, queue_url: str, faults: FaultsClient, run: str,
    writes: list[Write], config: SoakConfig,
) -> tuple[Evidence, Verdict]:  # fmt: skip
    """Wait until the stream path is idle, then collect evidence until it checks out or stops
    changing for SETTLE_S (or time is up). Reading everything back is heavy on moto, which the
    stream path shares, so it is done only once the path looks idle."""
    deadline = time.monotonic() + config.drain_timeout_s
    _wait_idle(dynamodb, faults, writes, deadline)
    ranges: list[tuple[str, int, int]] = []
    last_change = time.monotonic()
    fingerprint: tuple[int, ...] = ()
    while True:
        ranges += read_dlq(sqs, queue_url)
        watch = next(f for f in faults.list()["faults"] if f["kind"] == "watch")
        evidence = Evidence(
            read_stream(dynamodb, streams, run),
            read_side(dynamodb, run),
            ranges,
            watch["fired"],
            watch.get("resurrected", 0),
        )
        verdict = check(writes, evidence)
        now = (len(evidence.read_items), len(ranges), _invocations(faults), verdict.counts["stale"])
        if now != fingerprint:
            fingerprint, last_change = now, time.monotonic()
        if not verdict.problems:
            return evidence, verdict
        if time.monotonic() - last_change > SETTLE_S or time.monotonic() > deadline:
            return evidence, verdict
        time.sleep(3.0)


def _invocations(faults: FaultsClient) -> int:
    return int(faults.list()["deliveries"].get(FUNCTION, {}).get("invocations", 0))


def _wait_idle(dynamodb: Any, faults: FaultsClient, writes: list[Write], deadline: float) -> None:
    """Until the last live writes are readable at their final image and no invocation ran for a
    few seconds, or none ran for SETTLE_S (cheap: one BatchGetItem and one control-API call a
    second)."""
    final: dict[tuple[str, int], Write] = {w.key: w for w in writes if w.sent_at is not None}
    tail = [w for w in list(final.values())[-20:] if w.image is not None and not w.poison]
    keys = {(w.user_id, w.key[1]): w.image["notification_title"] for w in tail if w.image}
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        invocations = _invocations(faults)
        if invocations != count:
            count, since = invocations, time.monotonic()
        idle = time.monotonic() - since
        if idle > SETTLE_S or (idle > 3.0 and _titles(dynamodb, keys) == keys):
            return
        time.sleep(1.0)


def _titles(dynamodb: Any, keys: dict[tuple[str, int], str]) -> dict[tuple[str, int], str]:
    if not keys:
        return {}
    answer = dynamodb.batch_get_item(RequestItems={READ_TABLE: {
        "Keys": [{"user_id": {"S": u}, "created_at": {"N": str(c)}} for u, c in keys],
        "ProjectionExpression": "user_id, created_at, notification_title",
    }})  # fmt: skip
    return {
        (i["user_id"]["S"], int(i["created_at"]["N"])): i["notification_title"]["S"]
        for i in answer.get("Responses", {}).get(READ_TABLE, [])
    }


class _Triggers:
    """Kills a worker and restarts the poller once the writer reaches the configured shares."""

    def __init__(
        self, faults: FaultsClient, config: SoakConfig, total: int, progress: Callable[[str], None]
    ) -> None:
        self._faults = faults
        self._progress = progress
        self._pending = sorted(
            (int(share * total), kind)
            for share, kind in ((config.kill_worker_at, "kill-worker"),
                                (config.restart_poller_at, "restart-poller"))
            if share >= 0
        )  # fmt: skip
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.fired: dict[str, int] = {}

    def check(self, sent: int) -> None:
        with self._lock:
            due = [kind for at, kind in self._pending if at <= sent]
            self._pending = [(at, kind) for at, kind in self._pending if at > sent]
        for kind in due:
            thread = threading.Thread(target=self._fire, args=(kind,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _fire(self, kind: str) -> None:
        spec: dict[str, Any] = {"kind": kind, "function": FUNCTION}
        if kind == "kill-worker":
            spec.update(count=1, delay_ms=2)
        fault = self._faults.add(spec)
        self._progress(f"{kind} added ({fault['id']})")
        if kind == "kill-worker":
            deadline = time.monotonic() + 60
            while self._faults.get(fault["id"])["fired"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        self.fired[kind] = self._faults.get(fault["id"])["fired"]

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
