"""Item 5: a locust load run mixing the three queries; p99 < 500 ms on every route."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.verify import charts
from harness.verify.load import Sample, percentile, run_load
from harness.verify.model import Evidence, ItemResult, Picture, Table, bi, verdict
from harness.verify.target import Options, Target

LIMIT_MS = 500.0
VERDICT_PERCENTILE = 99
#: against a deployed stage the load stays low: it is someone's real service
REMOTE_MAX_RATE = 5.0
#: the first seconds start the users and the Lambda environments they need (cold starts): they are
#: reported apart and left out of the verdict, which is about the service under steady load
WARMUP_S = 5.0


def check_response_time(target: Target, options: Options) -> ItemResult:
    """Offer ``options.rate`` requests/s for ``options.duration_s`` s; judge p99 per route."""
    rate = options.rate if target.local else min(options.rate, REMOTE_MAX_RATE)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="verify-load-") as tmp:
        samples = run_load(target.gateway_url, rate, options.duration_s, Path(tmp))
    result = judge(samples, rate, options.duration_s)
    result.evidence.fact("load average of this machine (1 min) before / after",
                         "本機負載平均（1 分鐘）前／後", f"{before:.1f} / {os.getloadavg()[0]:.1f} "
                         f"on {os.cpu_count()} CPUs (the stack and the load generator share them)")
    return result


def judge(samples: list[Sample], rate: float, duration_s: float) -> ItemResult:
    """The verdict and evidence of a load run."""
    evidence = Evidence()
    warmup_s = min(WARMUP_S, duration_s / 5)
    warmup = [s for s in samples if s.t < warmup_s]
    samples = [s for s in samples if s.t >= warmup_s]
    evidence.fact("warm-up, not judged", "暖機（不列入判定）",
                  f"first {warmup_s:g} s: {len(warmup)} requests, max "
                  f"{max((s.ms for s in warmup), default=0):.0f} ms")
    evidence.fact("offered load", "施加負載", f"{rate:g} requests/s for {duration_s:g} s (locust, headless)")
    evidence.fact("requests judged", "列入判定的請求", len(samples))
    evidence.fact("verdict percentile", "判定百分位", f"p{VERDICT_PERCENTILE} < {LIMIT_MS:g} ms on every route")
    by_route: dict[str, list[float]] = {}
    for sample in samples:
        by_route.setdefault(sample.route, []).append(sample.ms)
    rows, slow = [], []
    for route, values in sorted(by_route.items()):
        p = {q: percentile(values, q) for q in (50, 90, 95, 99)}
        rows.append([route, str(len(values)), *(f"{p[q]:.1f}" for q in (50, 90, 95, 99)),
                     f"{max(values):.1f}", "ok" if p[99] < LIMIT_MS else "FAIL"])
        if p[VERDICT_PERCENTILE] >= LIMIT_MS:
            slow.append(f"{route}: p99 {p[99]:.0f} ms >= {LIMIT_MS:g} ms")
    evidence.tables.append(Table(bi("Response time per route (ms)", "各路由回應時間（ms）"),
                                 ["route", "requests", "p50", "p90", "p95", "p99", "max", "verdict"], rows))
    errors = [s for s in samples if s.error is not None]
    evidence.fact("failed requests", "失敗請求", len(errors))
    evidence.failures.extend(slow)
    evidence.failures.extend(
        f"t={s.t:.2f}s {s.route} {s.status} {s.error} (X-Request-Id {s.request_id})" for s in errors[:100]
    )
    if not samples:
        evidence.failures.append("the load run made no request")
    else:
        evidence.pictures.append(Picture(
            bi("Response time histogram per route (log scale); the dashed line is 500 ms",
               "各路由回應時間分佈（對數刻度）；虛線為 500 ms"),
            charts.latency_histogram(by_route, LIMIT_MS)))
    worst = max((percentile(v, 99) for v in by_route.values()), default=0.0)
    return verdict(
        not evidence.failures,
        bi(f"p99 < 500 ms on every route (worst p99 {worst:.0f} ms over {len(samples)} requests).",
           f"每個路由 p99 < 500 ms（{len(samples)} 個請求中最差 p99 為 {worst:.0f} ms）。"),
        bi(f"{'; '.join(slow) or f'{len(errors)} request(s) failed'}",
           f"{'；'.join(slow) or f'{len(errors)} 個請求失敗'}"),
        evidence,
        "5",
    )
