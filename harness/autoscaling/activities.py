"""Scaling activities, as ``DescribeScalingActivities`` returns them.

moto 5.2.5 stores scalable targets and policies (and creates the two target-tracking alarms) but
does not implement DescribeScalingActivities. The endpoint keeps the activities here: the
autoscaler records each one (``POST`` of the activity to :data:`RECORD_PATH`), and the
endpoint answers the AWS action from this store, newest first, filtered as AWS filters
(ServiceNamespace, ResourceId, ScalableDimension; MaxResults up to 50; NextToken).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from typing import Any

__all__ = ["RECORD_PATH", "Store", "activity"]

RECORD_PATH = "/_harness/application-autoscaling/activities"
MAX_RESULTS = 50


def activity(
    *,
    resource_id: str,
    description: str,
    cause: str,
    status: str,
    message: str,
    start: datetime,
    end: datetime | None,
    service_namespace: str = "ecs",
    scalable_dimension: str = "ecs:service:DesiredCount",
) -> dict[str, Any]:
    """One ScalingActivity in the API's JSON shape (times as epoch seconds, as the API sends)."""
    item: dict[str, Any] = {
        "ActivityId": str(uuid.uuid4()),
        "ServiceNamespace": service_namespace,
        "ResourceId": resource_id,
        "ScalableDimension": scalable_dimension,
        "Description": description,
        "Cause": cause,
        "StartTime": start.timestamp(),
        "StatusCode": status,
        "StatusMessage": message,
    }
    if end is not None:
        item["EndTime"] = end.timestamp()
    return item


class Store:
    """The activities recorded so far (one store for the endpoint, whatever the account)."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Store one activity (JSON); 400 when it is not one."""
        try:
            item = json.loads(body)
        except ValueError:
            return 400, {"__type": "ValidationException", "message": "body is not JSON"}
        required = ("ActivityId", "ServiceNamespace", "ResourceId", "StartTime", "StatusCode")
        if not isinstance(item, dict) or any(k not in item for k in required):
            return 400, {
                "__type": "ValidationException",
                "message": f"an activity needs {', '.join(required)}",
            }
        with self._lock:
            self._items = [i for i in self._items if i["ActivityId"] != item["ActivityId"]]
            self._items.append(item)
        return 200, {}

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Serve RECORD_PATH or DescribeScalingActivities, which the endpoint routes here."""
        if path == RECORD_PATH:
            if method != "POST":
                return 405, {"__type": "ValidationException", "message": "POST an activity"}
            return self.record(body)
        return self.describe(body)

    def describe(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer DescribeScalingActivities."""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"__type": "ValidationException", "message": "body is not JSON"}
        namespace = request.get("ServiceNamespace")
        if not namespace:
            return 400, {
                "__type": "ValidationException",
                "message": "1 validation error detected: Value null at 'serviceNamespace' failed "
                "to satisfy constraint: Member must not be null",
            }
        with self._lock:
            items = list(self._items)
        matches = [
            i
            for i in reversed(items)
            if i["ServiceNamespace"] == namespace
            and request.get("ResourceId") in (None, i["ResourceId"])
            and request.get("ScalableDimension") in (None, i.get("ScalableDimension"))
        ]
        start = int(request.get("NextToken") or 0)
        size = int(request.get("MaxResults") or MAX_RESULTS)
        page = matches[start : start + size]
        answer: dict[str, Any] = {"ScalingActivities": page}
        if start + size < len(matches):
            answer["NextToken"] = str(start + size)
        return 200, answer
