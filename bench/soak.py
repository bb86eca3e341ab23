"""Soak: N command records through the whole stream path under faults, checked exactly.

    .venv/bin/python bench/soak.py                      # 10,000 records on a stack of its own
    .venv/bin/python bench/soak.py --records 1000 --rate 300
    .venv/bin/python bench/soak.py --edge-url http://127.0.0.1:4566   # a stack already up

Faults: 10 % of stream-processor invocations fail (half unhandled, half a partial batch response),
1 % of records are poison (half each mode), 1 % of writes to notification-records are throttled,
one Lambda worker is SIGKILLed mid-batch (at 40 % of the writes) and the poller is restarted (at
60 %). Exits 1 when anything is lost, duplicated, out of order, or misplaced.

``--no-bisect`` / ``--no-partial`` update the stream mapping first (and restore it after), to show
what the check says when BisectBatchOnFunctionError or ReportBatchItemFailures is off.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.faults.client import FaultsClient  # noqa: E402
from harness.faults.soak import run_soak  # noqa: E402
from harness.faults.soak_workload import SoakConfig  # noqa: E402
from harness.stack.provision import aws_client  # noqa: E402

REGION = "ap-southeast-1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="command records (10000)")
    parser.add_argument("--rate", type=float, default=250.0, help="writes/s offered (250)")
    parser.add_argument("--transient", type=float, default=0.10, help="failing invocations")
    parser.add_argument("--poison", type=float, default=0.01, help="share of poison records")
    parser.add_argument("--throttle", type=float, default=0.01, help="throttled read writes")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--edge-url", help="use the stack whose AWS endpoint is here")
    parser.add_argument("--no-bisect", action="store_true", help="mapping without bisect")
    parser.add_argument("--no-partial", action="store_true", help="mapping without partial batch")
    args = parser.parse_args(argv)
    config = SoakConfig(
        records=args.records,
        rate=args.rate,
        transient_fraction=args.transient,
        poison_fraction=args.poison,
        throttle_fraction=args.throttle,
        seed=args.seed,
    )
    with ExitStack() as stack:
        started = time.monotonic()
        edge_url = args.edge_url or _start_stack(stack)
        print(f"stack: {edge_url} (up in {time.monotonic() - started:.1f} s)", flush=True)
        clients = {name: aws_client(name, edge_url, REGION)
                   for name in ("dynamodb", "dynamodbstreams", "sqs", "lambda")}  # fmt: skip
        if args.no_bisect or args.no_partial:
            changes: dict[str, Any] = {}
            if args.no_bisect:
                changes["BisectBatchOnFunctionError"] = False
            if args.no_partial:
                changes["FunctionResponseTypes"] = []
            stack.callback(_update_mapping(clients["lambda"], changes))
        faults = stack.enter_context(FaultsClient(edge_url))
        result = run_soak(clients, faults, config, progress=lambda line: print(line, flush=True))
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1


def _start_stack(stack: ExitStack) -> str:
    from harness.stack.stack import Stack, StackConfig

    state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
    running = Stack(StackConfig(edge_port=0, gateway_port=0, state_dir=state_dir, seed=False))
    running.start()
    stack.callback(running.stop)
    return str(running.state()["edge_url"])


def _update_mapping(lam: Any, changes: dict[str, Any]) -> Any:
    """Apply ``changes`` to the stream-processor mapping; returns what restores it."""
    (mapping,) = lam.list_event_source_mappings(FunctionName="stream-processor")[
        "EventSourceMappings"
    ]
    before = {
        "BisectBatchOnFunctionError": mapping["BisectBatchOnFunctionError"],
        "FunctionResponseTypes": mapping.get("FunctionResponseTypes", []),
    }
    lam.update_event_source_mapping(UUID=mapping["UUID"], **changes)
    print(f"mapping {mapping['UUID']}: {changes} (restored after the run)", flush=True)
    return lambda: lam.update_event_source_mapping(UUID=mapping["UUID"], **before)


if __name__ == "__main__":
    sys.exit(main())
