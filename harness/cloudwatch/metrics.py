"""A metric sink: samples aggregated per period into statistic sets, sent with PutMetricData.

AWS services publish their metrics to CloudWatch once a period (ECS and the ALB every minute) as
statistic sets: SampleCount, Sum, Minimum, Maximum for the period. The sink does the same; the
period is AWS's 60 s divided by the stack's time scale K. Below 60 s the datapoints are sent as
high-resolution metrics (``StorageResolution=1``), which is how CloudWatch stores sub-minute data,
and each datapoint is stamped with the start of its period, aligned on the epoch, as CloudWatch
aggregates them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness.cloudwatch.periodic import Periodic

__all__ = ["AWS_PERIOD_S", "Collector", "MetricKey", "MetricSink", "period_for"]

logger = logging.getLogger(__name__)

AWS_PERIOD_S = 60.0
MAX_DATUMS_PER_CALL = 1000  # PutMetricData accepts up to 1,000 metrics per request

Dimensions = tuple[tuple[str, str], ...]
#: called once per sample interval; records samples into the sink
Collector = Callable[["MetricSink"], None]


def period_for(time_scale: float) -> float:
    """AWS's one-minute period divided by the time scale K (K=1: real time), in whole seconds
    and at least one: CloudWatch's finest period is a second (high-resolution metrics)."""
    if time_scale <= 0:
        raise ValueError(f"the time scale must be > 0, got {time_scale}")
    return float(max(1, round(AWS_PERIOD_S / time_scale)))


@dataclass(frozen=True)
class MetricKey:
    """One metric: namespace, name, dimensions (in AWS's order) and unit."""

    namespace: str
    name: str
    dimensions: Dimensions
    unit: str


@dataclass
class _Statistics:
    count: float = 0.0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


class MetricSink:
    """Aggregates samples per period and sends each finished period with ``put_metric_data``.

    ``client`` is a boto3 CloudWatch client (anything with ``put_metric_data``). ``collectors``
    run every ``period_s / samples_per_period`` seconds on the sink's thread (ECS samples a task's
    CPU three times a minute; by default up to 3, each at least a second apart); counters
    (``add``) may be called from any thread.
    """

    def __init__(
        self,
        client: Any,
        *,
        period_s: float = AWS_PERIOD_S,
        samples_per_period: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.client = client
        self.period_s = period_s
        # ECS samples three times a period; CPU times tick every 10 ms, so by default a sample
        # spans >= 1 s where the period allows (a 0.33 s sample sees 12 % steps of 256 units)
        if samples_per_period is None:
            samples_per_period = min(3, int(period_s))
        self.samples_per_period = max(1, samples_per_period)
        self.clock = clock
        self._collectors: list[Collector] = []
        self._periods: dict[int, dict[MetricKey, _Statistics]] = {}
        self._lock = threading.Lock()
        interval = period_s / self.samples_per_period
        self._loop = Periodic("metric-sink", interval, self._tick, aligned=clock)
        self.sent = 0  # datapoints sent so far
        self.errors = 0  # PutMetricData calls that failed (logged, data kept for the next try)

    # -- recording --------------------------------------------------------------------------
    def add(
        self,
        namespace: str,
        name: str,
        dimensions: Sequence[tuple[str, str]],
        value: float,
        unit: str,
        *,
        count: float = 1.0,
        at: float | None = None,
    ) -> None:
        """Add ``count`` samples of ``value`` to the current period of one metric."""
        key = MetricKey(namespace, name, tuple(dimensions), unit)
        period = self._period_index(self.clock() if at is None else at)
        with self._lock:
            stats = self._periods.setdefault(period, {}).setdefault(key, _Statistics())
            stats.add(value, count)

    def add_collector(self, collector: Collector) -> None:
        """Run ``collector(sink)`` at every sample interval (gauges such as CPU or host counts)."""
        self._collectors.append(collector)

    # -- publishing -------------------------------------------------------------------------
    def flush(self, *, everything: bool = False) -> int:
        """Send every finished period (all of them with ``everything``); the datapoints sent."""
        current = self._period_index(self.clock())
        with self._lock:
            ready = sorted(p for p in self._periods if everything or p < current)
            batches = {p: self._periods.pop(p) for p in ready}
        datums = [
            self._datum(key, stats, period)
            for period, metrics in batches.items()
            for key, stats in metrics.items()
        ]
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for key, datum in datums:
            by_namespace.setdefault(key.namespace, []).append(datum)
        sent = 0
        for namespace, items in by_namespace.items():
            for chunk in _chunks(items, MAX_DATUMS_PER_CALL):
                try:
                    self.client.put_metric_data(Namespace=namespace, MetricData=chunk)
                except Exception as exc:  # noqa: BLE001 - reported; the stack keeps running
                    self.errors += 1
                    logger.warning("PutMetricData to %s failed: %s", namespace, exc)
                else:
                    sent += len(chunk)
        self.sent += sent
        return sent

    def _datum(
        self, key: MetricKey, stats: _Statistics, period: int
    ) -> tuple[MetricKey, dict[str, Any]]:
        datum: dict[str, Any] = {
            "MetricName": key.name,
            "Dimensions": [{"Name": n, "Value": v} for n, v in key.dimensions],
            "Timestamp": datetime.fromtimestamp(period * self.period_s, UTC),
            "StatisticValues": {
                "SampleCount": stats.count,
                "Sum": stats.total,
                "Minimum": stats.minimum,
                "Maximum": stats.maximum,
            },
            "Unit": key.unit,
        }
        if self.period_s < AWS_PERIOD_S:
            datum["StorageResolution"] = 1
        return key, datum

    def _period_index(self, at: float) -> int:
        return int(at // self.period_s)

    # -- thread -----------------------------------------------------------------------------
    def collect(self) -> None:
        """Run every collector once (the sink's thread does this at each sample interval)."""
        for collector in list(self._collectors):
            try:
                collector(self)
            except Exception:
                logger.exception("metric collector %r failed", collector)

    def start(self) -> MetricSink:
        """Collect and publish on a daemon thread until :meth:`stop`."""
        self._loop.start()
        return self

    def stop(self) -> None:
        """Stop the thread and send what is left."""
        self._loop.stop()
        self.flush(everything=True)

    def _tick(self) -> None:
        self.collect()
        self.flush()


def _chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
