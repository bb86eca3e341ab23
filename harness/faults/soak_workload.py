"""The soak's workload: command-record writes at a steady rate, and a sync-latency probe.

:func:`generate` makes a seeded list of writes: each command record is inserted once; some are
modified once or twice later (SENT -> DELIVERED -> FAILED, ``ap_id`` changed or removed, a few
writes apart, so one batch often holds several images of a key) and some removed; poison records
(whose ``transaction_id`` a ``fail`` fault's key pattern matches) are only inserted. Every write
has its own ``notification_title`` (``<run>-w<n>``), so the read side shows which write it holds.
``created_at`` is distinct across the run (and so per user). :class:`Writer` sends the writes
from a few threads at a steady offered rate, each key always on the same thread (per-key order
kept); :class:`LatencyProbe` polls the read table for a sample of writes until each is visible.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeSerializer

__all__ = ["LatencyProbe", "SoakConfig", "Write", "Writer", "generate", "poison_pattern"]

COMMAND_TABLE = "command-records"
READ_TABLE = "notification-records"
_serializer = TypeSerializer()


@dataclass(frozen=True)
class SoakConfig:
    """How big, how fast and how faulty a soak run is."""

    records: int = 10_000
    rate: float = 250.0  # writes per second offered
    users: int = 0  # 0: records // 8
    transient_fraction: float = (
        0.10  # of stream-processor invocations (half unhandled, half partial)
    )
    poison_fraction: float = 0.01  # of command records
    throttle_fraction: float = 0.01  # of writes to the read table
    modify_fraction: float = 0.35
    remove_fraction: float = 0.05
    kill_worker_at: float = 0.4  # share of the writes sent when a worker is killed (< 0: never)
    restart_poller_at: float = 0.6  # same for the poller restart
    writers: int = 4
    seed: int = 13
    sample_every: int = 7  # the latency probe follows one write in this many
    drain_timeout_s: float = 600.0

    @property
    def user_count(self) -> int:
        return self.users or max(1, self.records // 8)


@dataclass
class Write:
    """One write to ``command-records``: a put of ``image``, or a delete of ``key``."""

    index: int
    key: tuple[str, int]  # (transaction_id, created_at)
    user_id: str
    image: dict[str, Any] | None  # None: DeleteItem
    poison: bool = False
    sent_at: float | None = None


def poison_pattern(run: str, mode: str) -> str:
    """The key pattern of the poison records of ``run`` failing in ``mode``."""
    return f"transaction_id={run}-poison{mode[0].upper()}-*"


def generate(config: SoakConfig, run: str) -> list[Write]:
    """The run's writes, in the order they are sent."""
    rng = random.Random(config.seed)
    base_ms = int(time.time() * 1000) - 10 * config.records
    writes: list[Write] = []
    later: list[tuple[int, int, dict[str, Any] | None, tuple[str, int], str]] = []
    order = 0

    def emit(key: tuple[str, int], user: str, image: dict[str, Any] | None, poison: bool) -> None:
        if image is not None:
            image = {**image, "notification_title": f"{run}-w{len(writes)}"}
        writes.append(Write(len(writes), key, user, image, poison))

    for i in range(config.records):
        while later and later[0][0] <= i:
            _, _, change, key, user = heapq.heappop(later)
            emit(key, user, change, False)
        user = f"{run}-u{rng.randrange(config.user_count)}"
        created_at = base_ms + i
        poison = rng.random() < config.poison_fraction
        if poison:
            mode = "U" if rng.random() < 0.5 else "P"
            tx = f"{run}-poison{mode}-{i}"
        else:
            tx = f"{run}-tx{rng.randrange(max(1, config.records // 4))}"
        image: dict[str, Any] = {
            "transaction_id": tx,
            "created_at": created_at,
            "user_id": user,
            "status": "SENT",
            "platform": rng.choice(["IOS", "ANDROID", "WEBPUSH"]),
            "device_token": f"token-{i}",
            "payload": '{"body": "soak"}',
        }
        if rng.random() < 0.5:
            image["marketing_id"] = f"{run}-c{rng.randrange(20)}"
        if rng.random() < 0.8:
            image["ap_id"] = rng.choice(["mobile-app-001", "web-portal-001", "mobile-app-002"])
        emit((tx, created_at), user, image, poison)
        if poison:
            continue
        at = i
        if rng.random() < config.modify_fraction:
            at += rng.randint(1, 12)
            delivered = {**image, "status": "DELIVERED", "ap_id": "web-portal-001"}
            order += 1
            heapq.heappush(later, (at, order, delivered, (tx, created_at), user))
            if rng.random() < 0.5:
                at += rng.randint(1, 12)
                failed = {**delivered, "status": "FAILED", "error_msg": f"error {i}"}
                del failed["ap_id"]
                order += 1
                heapq.heappush(later, (at, order, failed, (tx, created_at), user))
        if rng.random() < config.remove_fraction:
            order += 1
            heapq.heappush(later, (at + rng.randint(1, 12), order, None, (tx, created_at), user))
    while later:
        _, _, change, key, user = heapq.heappop(later)
        emit(key, user, change, False)
    return writes


def new_run_id() -> str:
    """A short prefix that no earlier run used."""
    return f"soak{uuid.uuid4().hex[:6]}"


class Writer:
    """Sends the writes at ``rate`` per second from ``threads`` threads (per-key order kept)."""

    def __init__(self, dynamodb: Any, writes: list[Write], rate: float, threads: int) -> None:
        self._dynamodb = dynamodb
        self._lanes: list[list[Write]] = [[] for _ in range(threads)]
        for write in writes:
            self._lanes[hash(write.key) % threads].append(write)
        self._interval = threads / rate
        self.sent = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.on_sent: Callable[[Write], None] = lambda write: None

    def run(self) -> None:
        """Send everything; returns when every lane is done."""
        threads = [
            threading.Thread(target=self._lane, args=(lane,), name=f"soak-writer-{n}", daemon=True)
            for n, lane in enumerate(self._lanes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _lane(self, lane: list[Write]) -> None:
        due = time.monotonic()
        for write in lane:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            due += self._interval
            try:
                if write.image is None:
                    key = {"transaction_id": write.key[0], "created_at": write.key[1]}
                    self._dynamodb.delete_item(TableName=COMMAND_TABLE, Key=_item(key))
                else:
                    self._dynamodb.put_item(TableName=COMMAND_TABLE, Item=_item(write.image))
            except Exception as exc:  # reported: the check then knows the write may be missing
                with self._lock:
                    self.errors.append(f"write {write.index}: {type(exc).__name__}: {exc}")
                continue
            write.sent_at = time.monotonic()
            with self._lock:
                self.sent += 1
            self.on_sent(write)


def _item(record: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in record.items() if v is not None}


@dataclass
class LatencyProbe:
    """Polls the read table for a sample of writes; ``latencies_s`` are write -> readable."""

    dynamodb: Any
    every: int
    latencies_s: list[float] = field(default_factory=list)
    superseded: int = 0
    _pending: deque[Write] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def offer(self, write: Write) -> None:
        """A write was sent: follow it if it is in the sample."""
        if write.image is not None and not write.poison and write.index % self.every == 0:
            with self._lock:
                self._pending.append(write)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-latency", daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """Stop polling; returns how many sampled writes were never seen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return len(self._pending)

    def _run(self) -> None:
        while not self._stop.wait(0.2):  # light: the probe shares moto with the stream path
            with self._lock:
                batch = list(self._pending)[:40]
            if not batch:
                continue
            keys = {(w.user_id, w.key[1]): w for w in batch}
            try:
                answer = self.dynamodb.batch_get_item(
                    RequestItems={
                        READ_TABLE: {
                            "Keys": [_item({"user_id": u, "created_at": c}) for u, c in keys],
                            "ProjectionExpression": "user_id, created_at, notification_title",
                        }
                    }
                )
            except Exception:  # noqa: BLE001 - a missed poll only delays the measurement
                continue
            now = time.monotonic()
            done: set[int] = set()
            for item in answer.get("Responses", {}).get(READ_TABLE, []):
                write = keys.get((item["user_id"]["S"], int(item["created_at"]["N"])))
                if write is None or write.sent_at is None or write.image is None:
                    continue
                title = item.get("notification_title", {}).get("S", "")
                seen = int(title.rsplit("-w", 1)[-1]) if "-w" in title else -1
                if seen == write.index:
                    self.latencies_s.append(now - write.sent_at)
                    done.add(write.index)
                elif seen > write.index:  # a later write of the key landed first
                    self.superseded += 1
                    done.add(write.index)
            if done:
                with self._lock:
                    self._pending = deque(w for w in self._pending if w.index not in done)
