"""The poller of one DynamoDB Streams event source mapping: shard discovery, reading, batching.

One supervisor thread per mapping lists the stream's shards and starts one worker thread per
shard (parents before children). A worker sleeps on an event that ``wake()`` sets after each
write to the table, with a slow fallback poll, reuses ``NextShardIterator`` (never re-creates
iterators in a loop) and keeps a checkpoint per shard that survives disable/enable.
No HTTP server code lives here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from harness.streams.batch import (
    MAX_PAYLOAD_BYTES,
    BatchDelivery,
    FailureDestination,
    PollerConfig,
    PollerStopped,
    PollerTimings,
    StreamRecord,
)
from harness.streams.types import Invoker

__all__ = ["CheckpointStore", "ShardCheckpoint", "StreamPoller"]

LOG = logging.getLogger("harness.streams.poller")

#: DynamoDB Streams' GetRecords limit.
MAX_GET_RECORDS = 1000
_LOST_ITERATOR_CODES = {"ExpiredIteratorException", "TrimmedDataAccessException"}


@dataclass
class ShardCheckpoint:
    """How far a shard is done: after ``sequence_number``; ``iterator`` points there if known."""

    sequence_number: str | None = None
    iterator: str | None = None
    finished: bool = False


@dataclass
class CheckpointStore:
    """The checkpoints of one mapping, kept across disable/enable."""

    shards: dict[str, ShardCheckpoint] = field(default_factory=dict)
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def shard(self, shard_id: str) -> ShardCheckpoint:
        """The checkpoint of ``shard_id`` (created empty)."""
        with self.lock:
            return self.shards.setdefault(shard_id, ShardCheckpoint())


class StreamPoller:
    """Polls every shard of one mapping's stream and delivers batches to its function."""

    def __init__(
        self,
        *,
        config: Callable[[], PollerConfig],
        streams_client: Any,
        invoker: Invoker,
        destination: FailureDestination,
        checkpoints: CheckpointStore,
        on_ready: Callable[[], None],
        on_stopped: Callable[[], None],
        on_result: Callable[[str], None],
        clock: Callable[[], float] = time.time,
        timings: PollerTimings | None = None,
        previous: StreamPoller | None = None,
    ) -> None:
        self._config = config
        self._streams = streams_client
        self._invoker = invoker
        self._destination = destination
        self._checkpoints = checkpoints
        self._on_ready = on_ready
        self._on_stopped = on_stopped
        self._on_result = on_result
        self._clock = clock
        self._timings = timings or PollerTimings()
        self._previous = previous
        self._stop = threading.Event()
        self._rescan = threading.Event()
        self._lock = threading.Lock()
        self._workers: dict[str, _ShardWorker] = {}
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name=f"esm-{config().uuid[:8]}")

    def start(self) -> None:
        """Start the supervisor thread (returns at once; ``on_ready`` follows)."""
        self._thread.start()

    def wake(self) -> None:
        """A write happened on the table: poll every shard now."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake.set()

    def request_stop(self) -> None:
        """Ask every thread to stop after its current call; ``on_stopped`` follows."""
        self._stop.set()
        self._rescan.set()
        self.wake()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the supervisor (which waits for the workers)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        """True while any thread of this poller runs."""
        return self._thread.is_alive()

    def _supervise(self) -> None:
        try:
            if self._previous is not None:
                self._previous.join()
            ready = False
            failures = 0
            while not self._stop.is_set():
                try:
                    self._start_workers(self._describe_shards())
                    failures = 0
                except (ClientError, BotoCoreError) as exc:
                    failures += 1
                    self._on_result(f"PROBLEM: Could not read the stream: {exc}")
                    LOG.warning("mapping %s: listing shards failed: %s", self._config().uuid, exc)
                    self._rescan.wait(self._timings.backoff(failures))
                    continue
                if not ready:
                    ready = True
                    self._checkpoints.started = True
                    self._on_ready()
                self._rescan.wait(self._timings.shard_rescan_s)
                self._rescan.clear()
        except Exception:
            LOG.exception("mapping %s: supervisor failed", self._config().uuid)
            self._on_result("PROBLEM: Internal error of the poller")
        finally:
            self._stop.set()
            with self._lock:
                workers = list(self._workers.values())
            for worker in workers:
                worker.wake.set()
            for worker in workers:
                worker.thread.join()
            self._on_stopped()

    def _describe_shards(self) -> list[dict[str, Any]]:
        arn = self._config().event_source_arn
        shards: list[dict[str, Any]] = []
        params: dict[str, Any] = {"StreamArn": arn}
        while True:
            description = self._streams.describe_stream(**params)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            params["ExclusiveStartShardId"] = last

    def _start_workers(self, shards: list[dict[str, Any]]) -> None:
        listed = {shard["ShardId"] for shard in shards}
        for shard in shards:
            shard_id = shard["ShardId"]
            checkpoint = self._checkpoints.shard(shard_id)
            with self._lock:
                if shard_id in self._workers and self._workers[shard_id].thread.is_alive():
                    continue
            if checkpoint.finished:
                continue
            parent = shard.get("ParentShardId")
            if parent in listed and not self._checkpoints.shard(str(parent)).finished:
                continue  # children wait until their parent is fully processed
            start_type = (self._config().starting_position if not self._checkpoints.started
                          else "TRIM_HORIZON")
            iterator = self._initial_iterator(shard_id, checkpoint, start_type)
            worker = _ShardWorker(self, shard_id, checkpoint, iterator, start_type)
            with self._lock:
                self._workers[shard_id] = worker
            worker.thread.start()

    def _initial_iterator(self, shard_id: str, checkpoint: ShardCheckpoint, start: str) -> str:
        if checkpoint.iterator is not None:
            return checkpoint.iterator
        iterator = self.shard_iterator(shard_id, checkpoint, start)
        checkpoint.iterator = iterator
        return iterator

    def shard_iterator(self, shard_id: str, checkpoint: ShardCheckpoint, start: str) -> str:
        """A new iterator right after the checkpoint, else at ``start``."""
        params: dict[str, Any] = {"StreamArn": self._config().event_source_arn,
                                  "ShardId": shard_id}
        if checkpoint.sequence_number is not None:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                          SequenceNumber=checkpoint.sequence_number)
        else:
            params["ShardIteratorType"] = start
        return str(self._streams.get_shard_iterator(**params)["ShardIterator"])


class _ShardWorker:
    """Reads one shard, batches its records and hands them to ``BatchDelivery``."""

    def __init__(self, poller: StreamPoller, shard_id: str, checkpoint: ShardCheckpoint,
                 iterator: str, start_type: str) -> None:
        self.poller = poller
        self.shard_id = shard_id
        self.checkpoint = checkpoint
        self.iterator: str | None = iterator
        self.start_type = start_type
        self.wake = threading.Event()
        self.buffer: list[StreamRecord] = []
        self.first_buffered_at: float | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.reposition = False
        self.caught_up = False  # the last GetRecords found no more records in the shard
        p = poller
        self.delivery = BatchDelivery(config=p._config, invoker=p._invoker,
                                      destination=p._destination, shard_id=shard_id, stop=p._stop,
                                      clock=p._clock, timings=p._timings, report=p._on_result)
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"esm-{p._config().uuid[:8]}-{shard_id[-8:]}")

    def _run(self) -> None:
        stop = self.poller._stop
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if self._step():
                        return
                    failures = 0
                except PollerStopped:
                    return
                except Exception as exc:
                    failures += 1
                    self._recover(exc, failures)
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=True)

    def _recover(self, exc: Exception, failures: int) -> None:
        """Re-read from the checkpoint after an unexpected error (nothing done is lost)."""
        uuid = self.poller._config().uuid
        lost_iterator = (isinstance(exc, ClientError)
                         and exc.response.get("Error", {}).get("Code") in _LOST_ITERATOR_CODES)
        if isinstance(exc, (ClientError, BotoCoreError)):
            LOG.warning("mapping %s shard %s: %s", uuid, self.shard_id, exc)
            self.poller._on_result(f"PROBLEM: Could not read the stream: {exc}")
        else:
            LOG.exception("mapping %s shard %s: unexpected error", uuid, self.shard_id)
            self.poller._on_result(f"PROBLEM: Internal error of the poller: {exc}")
        self.poller._stop.wait(self.poller._timings.backoff(failures))
        if lost_iterator or not isinstance(exc, (ClientError, BotoCoreError)):
            self.buffer.clear()
            self.first_buffered_at = None
            self.checkpoint.iterator = None
            self.iterator = None
            self.reposition = True
        self.caught_up = False

    def _step(self) -> bool:
        """One read/decide/deliver round; True when the shard is finished."""
        config = self.poller._config()
        if self.reposition:
            self.iterator = self.poller.shard_iterator(self.shard_id, self.checkpoint,
                                                       self.start_type)
            self.reposition = False
        if not self.buffer and self.caught_up and self.iterator is not None:
            # The last read found the shard drained and all it returned is delivered: the next
            # record comes with a wake (the endpoint's write notification, set since that read's
            # GetRecords began) or is found by the fallback poll. No empty GetRecords per batch.
            self.wake.wait(self.poller._timings.fallback_poll_s)
            self.caught_up = False
        capacity = config.batch_size * config.parallelization_factor
        drained = True
        if self.iterator is not None and len(self.buffer) < capacity:
            drained = self.caught_up = self._read(
                min(MAX_GET_RECORDS, capacity - len(self.buffer)))
        if not self.buffer:
            if self.iterator is None:
                self.checkpoint.finished = True
                self.poller._rescan.set()
                return True
            return False  # caught up: the next step waits for a wake
        if not drained and len(self.buffer) < capacity:
            return False  # more is waiting in the shard: read it first
        window = config.maximum_batching_window_s
        if (window > 0 and len(self.buffer) < config.batch_size and self.iterator is not None
                and self.first_buffered_at is not None):
            remaining = self.first_buffered_at + window - time.monotonic()
            if remaining > 0:
                self.wake.wait(min(remaining, self.poller._timings.fallback_poll_s))
                return False
        chunk = self.buffer[:capacity]
        self._process(chunk, config)
        del self.buffer[:len(chunk)]
        self._mark_done(chunk[-1])
        self.first_buffered_at = time.monotonic() if self.buffer else None
        return False

    def _read(self, limit: int) -> bool:
        """GetRecords once with the current iterator; True when the shard looked drained."""
        self.wake.clear()
        answer = self.poller._streams.get_records(ShardIterator=self.iterator, Limit=limit)
        records = answer.get("Records", [])
        self.iterator = answer.get("NextShardIterator")
        config = self.poller._config()
        for raw in records:
            self.buffer.append(StreamRecord.from_stream(raw, config.event_source_arn,
                                                        config.region))
        if records and self.first_buffered_at is None:
            self.first_buffered_at = time.monotonic()
        if not self.buffer:
            self.checkpoint.iterator = self.iterator  # points right after the checkpoint
        return len(records) < limit

    def _mark_done(self, record: StreamRecord) -> None:
        self.checkpoint.sequence_number = record.sequence_number
        self.checkpoint.iterator = None

    def _process(self, chunk: list[StreamRecord], config: PollerConfig) -> None:
        factor = config.parallelization_factor
        if factor == 1:
            self._deliver_lane(chunk, config.batch_size, self._mark_done)
            return
        lanes: dict[int, list[StreamRecord]] = defaultdict(list)
        for record in chunk:
            lanes[record.key_hash % factor].append(record)
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=10,
                                               thread_name_prefix=self.thread.name)
        futures: list[Future[None]] = [
            self.executor.submit(self._deliver_lane, lane, config.batch_size, lambda _r: None)
            for lane in lanes.values()
        ]
        wait_futures(futures)
        for future in futures:
            future.result()  # re-raises PollerStopped or an error after every lane has ended

    def _deliver_lane(self, records: list[StreamRecord], batch_size: int,
                      on_done: Callable[[StreamRecord], None]) -> None:
        batch: list[StreamRecord] = []
        size = 0
        for record in records:
            if batch and (len(batch) >= batch_size or size + record.size > MAX_PAYLOAD_BYTES - 64):
                self.delivery.deliver(batch, on_done)
                batch, size = [], 0
            batch.append(record)
            size += record.size
        if batch:
            self.delivery.deliver(batch, on_done)
