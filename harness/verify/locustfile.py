"""The acceptance load: the three queries mixed, each request tagged with a known X-Request-Id.

Run by ``query-harness verify`` (item 5) through locust's library API, headless, in its own process
(:mod:`harness.verify.load`). The same file drives a deployed stage with locust's own distributed
mode when one machine cannot offer enough load (see the README)::

    locust -f harness/verify/locustfile.py --master --headless -u 200 -r 20 -t 5m --host https://…/v1
    locust -f harness/verify/locustfile.py --worker --master-host MASTER   # on each load machine

Ids come from the JSON file named by ``VERIFY_QUERY_IDS`` (``{"user": [...], "marketing": [...],
"fail": [...]}``), else from the seed. Each simulated user offers ``VERIFY_USER_RATE`` requests/s.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path

from locust import FastHttpUser, constant_throughput, task

SEED_IDS = {
    "user": ["test_user_001", "test_user_002"],
    "marketing": ["campaign_2024_new_year"],
    "fail": ["tx_002"],
}


def query_ids() -> dict[str, list[str]]:
    """The ids the queries ask for."""
    source = os.environ.get("VERIFY_QUERY_IDS")
    if not source:
        return SEED_IDS
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    return {kind: list(data.get(kind) or SEED_IDS[kind]) for kind in SEED_IDS}


IDS = query_ids()
KEYS = {"user": "user_id", "marketing": "marketing_id", "fail": "transaction_id"}


class QueryUser(FastHttpUser):
    """A client of the internal API: user queries most often, then campaigns, then failures."""

    wait_time = constant_throughput(float(os.environ.get("VERIFY_USER_RATE", "1")))

    def _query(self, kind: str) -> None:
        request_id = f"verify-load-{uuid.uuid4()}"
        self.client.post(
            f"/query/{kind}",
            json={KEYS[kind]: random.choice(IDS[kind])},
            headers={"X-Request-Id": request_id},
            name=f"/query/{kind}",
            context={"request_id": request_id},
        )

    @task(3)
    def user(self) -> None:
        self._query("user")

    @task(2)
    def marketing(self) -> None:
        self._query("marketing")

    @task(1)
    def fail(self) -> None:
        self._query("fail")
