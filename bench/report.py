"""`make bench`: every figure of the local stack beside its baseline, measured in the same run.

    .venv/bin/python bench/report.py [--quick] [--out reports/bench]

Prints one table (figure, ours, baseline, which baseline, ratio, target) and writes
``report.json`` and three pictures (SVG and PNG) to ``--out``: API latency vs concurrency, sync
latency vs offered write rate, Query latency vs table size (ours vs plain moto). Baselines:
``inprocess`` = moto's ``mock_aws`` with the handlers called directly (bench/inprocess.py);
``moto_server`` = plain ``python -m moto.server`` (unpatched) where the operation exists there;
``spawned`` = a Lambda environment started as a new interpreter. It reuses the measuring
functions of bench_api, bench_cold_start and bench_endpoint (sync: bench_sync_latency's
``write_to_readable``: each write waits on a signal, a consistent GetItem polled on a raw
keep-alive connection, then real gateway GETs; rounds with the signal polled through boto3, as
earlier tables did, alternate with them and have rows of their own). ``make test`` wall time is read
from ``--out``/make-test.json, written by a recorded run (the table says when).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_api
import bench_burst
import bench_cold_start
import bench_stack
import bench_sync_latency
import idle_rss
import inprocess
import psutil
from bench_endpoint import _client, _create_table, _free_port, _load, _noop_zip, _start, _wait_ready

ROOT = Path(__file__).resolve().parents[1]
Row = dict[str, Any]


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else math.nan


def row(figure: str, ours: float, base: float | None, kind: str, unit: str, target: str = "",
        ok: bool | None = None) -> Row:
    ratio = ours / base if base else None
    return {"figure": figure, "ours": ours, "baseline": base, "baseline_kind": kind,
            "ratio": ratio, "unit": unit, "target": target, "ok": ok}


def stack_figures(args: argparse.Namespace, rows: list[Row], curves: dict[str, Any]) -> None:
    """Up, the cold burst, closed-loop API load, sync latency and RSS: one stack, one run."""
    levels = [1, 4, 16, 64]
    base = {c: inprocess.query_load(c, args.seconds / 2) for c in levels}
    sync_base = inprocess.sync_latency(args.sync_samples)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as state_dir, bench_api.stack(
        state_dir
    ) as (state, up_s):
        url = state["gateway_url"]
        burst = bench_burst.measured(url, state["pid"], 64)
        loads, cpu = bench_api.measured_loads(url, state["pid"], levels, args.seconds)
        # the figure (raw GetItem signal) and the boto3 signal of earlier tables, alternated
        signals = bench_sync_latency.alternated(state, args.sync_samples, ["raw", "boto3"])
        sync, sync_boto3 = signals["raw"][0], signals["boto3"][0]
        rates = {r: asyncio.run(bench_sync_latency.write_to_readable(state, r,
                                                                     int(r * args.rate_seconds)))
                 for r in (2.0, 10.0, 25.0)}
        rss, processes = bench_api.stack_rss_mb(state["pid"])
        time.sleep(args.idle_settle)  # the load's last requests and environments settle
        idle = idle_rss.measure(state["pid"], args.idle_minutes)
    moto, _ = _start([sys.executable, "-m", "moto.server", "-p", str(port := _free_port())])
    started = time.perf_counter()
    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        moto_up = time.perf_counter() - started
        moto_rss = psutil.Process(moto.pid).memory_info().rss / 2**20
    finally:
        moto.terminate()
        moto.wait(20)
    up_figures(args, rows, moto_up, up_s)
    burst_rows(burst, pct(base[64][0], 0.99), rows)
    for level, load in loads.items():
        lat, rate = base[level]
        rows.append(row(f"API c{level} p50", load.p(0.5), statistics.median(lat),
                        f"inprocess c{level}", "ms"))
        rows.append(row(f"API c{level} p99", load.p(0.99), pct(lat, 0.99), f"inprocess c{level}",
                        "ms", "<= 100 ms" if level == 16 else "",
                        load.p(0.99) <= 100 if level == 16 else None))
        rows.append(row(f"API c{level} requests/s", load.rate, rate, f"inprocess c{level}",
                        "req/s", ">= 300" if level == 16 else "",
                        load.rate >= 300 if level == 16 else None))
        rows.append(row(f"API c{level} errors", load.errors, 0, "-", "count", "0",
                        load.errors == 0))
    rows.append(row("sync write->readable p50", pct(sync, 0.5), pct(sync_base, 0.5),
                    "inprocess put->handler->query", "ms", "<= 15 ms", pct(sync, 0.5) <= 15))
    rows.append(row("sync write->readable p99", pct(sync, 0.99), pct(sync_base, 0.99),
                    "inprocess put->handler->query", "ms", "<= 60 ms", pct(sync, 0.99) <= 60))
    for share in (0.5, 0.99):  # as earlier tables measured it: the signal's polls through boto3
        rows.append(row(f"sync p{share * 100:.0f}, boto3 GetItem signal (earlier tables)",
                        pct(sync_boto3, share), pct(sync_base, share),
                        "inprocess put->handler->query", "ms"))
    rows.append(row("RSS of the stack (after load)", rss, moto_rss, "moto_server idle", "MB"))
    # anonymous PSS summed is the stack's own memory (heap; a zygote's pages shared with its tasks
    # once): no process outside the stack shares it. PSS and USS also count library pages split
    # with every process on the machine mapping the same files, which move by megabytes when other
    # processes start or stop; summed RSS counts a zygote's pages once per task (bench/idle_rss.py)
    for column, kind, target in ((idle_rss.ANON, "anonymous PSS", True), (idle_rss.PSS, "PSS", False),
                                 (idle_rss.USS, "USS", False), (idle_rss.RSS, "summed RSS", False)):
        drift = idle.drift(column)
        # the trend of samples every 10 s, as MB per 10 minutes, whatever the window
        rows.append(row(f"idle {kind} drift over 10 min, whole stack "
                        f"(trend of {args.idle_minutes:g} min)", drift, None,
                        "-", "MB", "<= 1 MB" if target else "",
                        abs(drift) <= 1 if target else None))
    curves["idle_anon_pss_drift_mb_by_process"] = idle.process_drifts()
    curves["api"] = {
        "concurrency": levels,
        "ours_p50": [loads[c].p(0.5) for c in levels],
        "ours_p99": [loads[c].p(0.99) for c in levels],
        "inprocess_p50": [statistics.median(base[c][0]) for c in levels],
    }
    curves["cpu_ms_per_request"] = cpu
    curves["sync"] = {
        "rate": list(rates),
        "p50": [pct(v, 0.5) for v in rates.values()],
        "p99": [pct(v, 0.99) for v in rates.values()],
    }
    curves["processes"] = processes


def burst_rows(burst: bench_burst.Burst, base_p99: float | None, rows: list[Row]) -> None:
    """The cold burst of 64 right after up: errors, p99 and its CPU (bench_burst.py); the
    baseline is the in-process p99 at concurrency 64 (None: not measured)."""
    load = burst.load
    rows.append(row("cold burst 64 after up: errors", load.errors, 0, "-", "count", "0",
                    load.errors == 0))
    rows.append(row("cold burst 64 after up: p99", load.p(0.99), base_p99,
                    "inprocess c64" if base_p99 is not None else "-", "ms", "<= 1000 ms",
                    load.p(0.99) <= 1000))
    # load-independent: what the burst cost in CPU (all of the stack's processes and the client)
    rows.append(row("  its CPU, all processes, per request", sum(burst.cpu_ms_per_request.values()),
                    None, "-", "ms"))
    count = max(burst.environments, 1)
    rows.append(row(f"  its {burst.environments} new Lambda environments: CPU each",
                    burst.cpu_ms_per_request.get("Lambda environments", 0.0) * 64 / count,
                    None, "-", "ms"))
    # the row above holds every environment's invocations and the fork server: apart
    own = statistics.median(burst.environment_cpu_ms) if burst.environment_cpu_ms else math.nan
    rows.append(row("    a new environment's own CPU, median", own, None, "-", "ms"))
    rows.append(row("    the fork server's, per new environment", burst.server_cpu_ms / count,
                    None, "-", "ms"))
    rows.append(row("  load average (1 min) as it began", burst.load_average, None, "-", "-"))


def burst_figures(rows: list[Row]) -> None:
    """``--only burst``: a stack, the burst right after its up, and nothing else."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as state_dir, bench_api.stack(
        state_dir
    ) as (state, _):
        burst = bench_burst.measured(state["gateway_url"], state["pid"], 64)
    burst_rows(burst, None, rows)


def up_figures(args: argparse.Namespace, rows: list[Row], moto_up: float, load_up: float) -> None:
    """`up --detach` to ready (seeded, every task healthy behind the load balancer, gateway
    serving): once with an empty .harness/cache, then the median of ``--up-runs`` with the cache
    kept (as between two `make up`s; bench_stack.py)."""
    results = bench_stack.measure(1 + args.up_runs, progress=False)
    kept = bench_stack.warm(results)
    median = statistics.median(r.up_s for r in kept)
    rows.append(row(f"up to ready, median of {len(kept)} (cache kept)", median, moto_up,
                    "moto_server start", "s", "<= 2.5 s", median <= 2.5))
    rows.append(row("up to ready, empty .harness/cache", results[0].up_s, moto_up,
                    "moto_server start", "s"))
    rows.append(row("up to ready, the load figures' stack", load_up, moto_up,
                    "moto_server start", "s"))
    for key in ("backend", "provision", "seed", "replicas_healthy", "service_steady", "total"):
        values = [r.timings[key] for r in kept if key in r.timings]
        if values:
            rows.append(row(f"  up step {key} (median, s)", statistics.median(values), None, "-",
                            "s"))


def endpoint_figures(args: argparse.Namespace, rows: list[Row], curves: dict[str, Any]) -> None:
    """Warm Invoke and Query at 1k/10k/100k items: our endpoint vs plain moto_server."""
    sizes = [s for s in (1_000, 10_000, 100_000) if s <= args.max_items]
    ours_port, moto_port = _free_port(), _free_port()
    endpoint, _ = _start([sys.executable, "-m", "harness.aws.endpoint", "--port", str(ours_port)])
    moto, _ = _start([sys.executable, "-m", "moto.server", "-p", str(moto_port)])
    try:
        ours_url, moto_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{moto_port}"
        _wait_ready(ours_url)
        _wait_ready(moto_url)
        lam, iam = _client("lambda", ours_url), _client("iam", ours_url)
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(FunctionName="noop", Runtime="python3.12", Role=role,
                            Handler="noop.handler", Code={"ZipFile": _noop_zip()})
        invoke = inprocess.timed(
            lambda: lam.invoke(FunctionName="noop", Payload=b"{}")["Payload"].read(),
            args.samples, warmup=5)
        direct = inprocess.noop_call(args.samples)
        rows.append(row("warm Invoke (no-op) median", statistics.median(invoke),
                        statistics.median(direct), "inprocess direct call", "ms", "<= 2 ms",
                        statistics.median(invoke) <= 2))
        clients = {"ours": _client("dynamodb", ours_url), "moto": _client("dynamodb", moto_url)}
        query: dict[str, list[float]] = {}
        for client in clients.values():
            _create_table(client)
        loaded = 0
        for size in sizes:
            for name, client in clients.items():
                _load(client, size, loaded)
                # plain moto scans: ~17 ms per 1,000 items and Query; fewer samples there
                samples = args.samples if name == "ours" else max(3, 20_000 // size)
                for kind, spent in inprocess.query_at_size(client, samples).items():
                    query.setdefault(f"{name}_{kind}", []).append(statistics.median(spent))
            loaded = size
        if 10_000 in sizes:
            at = sizes.index(10_000)
            for kind in ("base", "gsi"):
                ours = query[f"ours_{kind}"][at]
                rows.append(row(f"Query 10k items ({kind}) median", ours,
                                query[f"moto_{kind}"][at], "moto_server", "ms", "<= 6 ms",
                                ours <= 6))
        curves["query"] = {"sizes": sizes, **query}
    finally:
        for process in (endpoint, moto):
            process.terminate()
            process.wait(20)


def cold_start_figures(args: argparse.Namespace, rows: list[Row]) -> None:
    """A new Lambda environment: forked (ours) vs spawned as a new interpreter."""
    figures = bench_cold_start.measure(args.starts)
    forked, spawned = figures["forked"], figures["spawned"]
    rows.append(row("new Lambda environment + first invoke, median", forked["median_ms"],
                    spawned["median_ms"], "spawned (python worker.py)", "ms", "<= 100 ms",
                    forked["median_ms"] <= 100))
    rows.append(row("  its REPORT Init Duration, median", forked["init_median_ms"],
                    spawned["init_median_ms"], "spawned (python worker.py)", "ms"))
    rows.append(row("  its CPU (child median + fork server share)",
                    forked["cpu_median_ms"] + forked["server_cpu_ms"], spawned["cpu_median_ms"],
                    "spawned (python worker.py)", "ms"))


def make_test_figure(out: Path, rows: list[Row]) -> None:
    """`make test` wall time from a recorded run (it is not re-run here)."""
    recorded = out / "make-test.json"
    if not recorded.is_file():
        rows.append(row("make test wall time (not recorded)", math.nan, None, "-", "s"))
        return
    data = json.loads(recorded.read_text())
    rows.append(row(f"make test wall time (recorded {data['recorded']})", data["wall_s"], None,
                    "-", "s", "< 600 s", data["wall_s"] < 600))


def print_table(rows: list[Row]) -> None:
    print(f"{'figure':<48} {'ours':>10} {'baseline':>10} {'ratio':>8}  {'target':<11} "
          f"{'ok':<4} baseline is")
    for entry in rows:
        base = "-" if entry["baseline"] is None else f"{entry['baseline']:.3g}"
        ratio = "-" if entry["ratio"] is None else f"{entry['ratio']:.3g}"
        ok = {True: "yes", False: "NO", None: ""}[entry["ok"]]
        print(f"{entry['figure']:<48} {entry['ours']:>10.4g} {base:>10} {ratio:>8}  "
              f"{entry['target']:<11} {ok:<4} {entry['baseline_kind']} ({entry['unit']})")


def pictures(curves: dict[str, Any], out: Path) -> list[Path]:
    """The three curves as SVG and PNG."""
    import matplotlib  # noqa: PLC0415 - only for the pictures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    written: list[Path] = []

    def save(figure: Any, name: str) -> None:
        for suffix in ("svg", "png"):
            path = out / f"{name}.{suffix}"
            figure.savefig(path, bbox_inches="tight")
            written.append(path)
        plt.close(figure)

    if "api" in curves:
        api = curves["api"]
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.plot(api["concurrency"], api["ours_p50"], "o-", label="stack p50")
        axes.plot(api["concurrency"], api["ours_p99"], "o--", label="stack p99")
        axes.plot(api["concurrency"], api["inprocess_p50"], "s:", label="in-process p50")
        axes.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)",
                 title="API latency vs concurrency")
        axes.legend()
        save(figure, "api_latency_vs_concurrency")
        sync = curves["sync"]
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.plot(sync["rate"], sync["p50"], "o-", label="p50")
        axes.plot(sync["rate"], sync["p99"], "o--", label="p99")
        axes.set(xlabel="offered writes/s", ylabel="write -> readable via gateway (ms)",
                 title="Sync latency vs offered write rate")
        axes.legend()
        save(figure, "sync_latency_vs_write_rate")
    if "query" in curves:
        query = curves["query"]
        figure, axes = plt.subplots(figsize=(6, 4))
        for key, style in (("ours_base", "o-"), ("ours_gsi", "o--"), ("moto_base", "s-"),
                           ("moto_gsi", "s--")):
            axes.plot(query["sizes"], query[key], style, label=key.replace("_", " "))
        axes.set(xscale="log", yscale="log", xlabel="items in the table",
                 ylabel="Query median (ms)", title="Query latency vs table size")
        axes.legend()
        save(figure, "query_latency_vs_table_size")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    parser.add_argument("--seconds", type=float, default=6.0, help="per API concurrency level")
    parser.add_argument("--samples", type=int, default=100, help="Invoke and Query samples")
    parser.add_argument("--sync-samples", type=int, default=200,
                        help="writes followed at 5/s (p99 of 60 would be their maximum)")
    parser.add_argument("--rate-seconds", type=float, default=3.0, help="per offered write rate")
    parser.add_argument("--starts", type=int, default=10, help="cold starts per mode")
    parser.add_argument("--max-items", type=int, default=100_000, help="largest table size")
    parser.add_argument("--quick", action="store_true", help="short runs, tables up to 10k")
    parser.add_argument("--up-runs", type=int, default=3, help="ups with a kept cache")
    parser.add_argument("--idle-minutes", type=float, default=10.0, help="idle RSS drift window")
    parser.add_argument("--idle-settle", type=float, default=120.0,
                        help="seconds before it (past the autoscaler's first evaluation)")
    parser.add_argument("--only", choices=("stack", "endpoint", "cold", "burst"), default=None)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.samples, args.sync_samples, args.rate_seconds = 2.0, 20, 20, 1.0
        args.starts, args.max_items, args.up_runs, args.idle_minutes = 4, 10_000, 1, 2.0
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    curves: dict[str, Any] = {}
    began = time.perf_counter()
    if args.only in (None, "stack"):
        stack_figures(args, rows, curves)
    if args.only == "burst":
        burst_figures(rows)
    if args.only in (None, "endpoint"):
        endpoint_figures(args, rows, curves)
    if args.only in (None, "cold"):
        cold_start_figures(args, rows)
    make_test_figure(args.out, rows)
    print_table(rows)
    if "cpu_ms_per_request" in curves:
        print("CPU ms per request by hop (user+system of its processes):")
        for level, by_role in curves["cpu_ms_per_request"].items():
            parts = ", ".join(f"{role} {ms:.1f}" for role, ms in sorted(by_role.items()))
            print(f"  c{level:<3} total {sum(by_role.values()):5.1f}: {parts}")
    load = psutil.getloadavg()
    report = {"rows": rows, "curves": curves, "seconds": time.perf_counter() - began,
              "machine": {"cpus": psutil.cpu_count(), "load_average": load},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    written = pictures(curves, args.out)
    print(f"machine: {psutil.cpu_count()} CPUs, load average {load[0]:.1f} (shared); "
          f"{time.perf_counter() - began:.0f} s; wrote {args.out / 'report.json'} and "
          f"{len(written)} pictures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
