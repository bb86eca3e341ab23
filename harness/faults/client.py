"""Driving the faults of a running stack: the endpoint's control API, and replica kills by pid.

Used by the CLI (``query-harness fault ...``), the pytest plugin (the ``faults`` fixture) and the
soak. Service replicas belong to the stack process, not the endpoint, so killing one is done here,
from the replica pids the stack publishes (``state.json``, ``Stack.state()``).
"""

from __future__ import annotations

import os
import signal
from typing import Any, Self

import httpx
import psutil

from harness.faults.registry import CONTROL_PATH

__all__ = ["FaultApiError", "FaultsClient", "kill_replica"]


class FaultApiError(RuntimeError):
    """The control API refused a request; the message is its one-line reason."""


class FaultsClient:
    """``add``, ``list``, ``remove``, ``clear`` on a running endpoint's ``/_harness/faults``."""

    def __init__(self, edge_url: str, *, timeout_s: float = 120.0) -> None:
        self._http = httpx.Client(base_url=edge_url.rstrip("/"), timeout=timeout_s)

    def add(self, spec: dict[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """Add a fault (``add(kind="fail", function="stream-processor", fraction=0.1)``)."""
        answer = self._call("POST", CONTROL_PATH, json={**(spec or {}), **fields})
        return dict(answer["fault"])

    def list(self) -> dict[str, Any]:
        """``{"faults": [...], "fired_by_kind": {...}, "deliveries": {...}}``."""
        return self._call("GET", CONTROL_PATH)

    def get(self, fault_id: str) -> dict[str, Any]:
        """One fault with its counts."""
        return dict(self._call("GET", f"{CONTROL_PATH}/{fault_id}")["fault"])

    def remove(self, fault_id: str) -> dict[str, Any]:
        """Remove one fault; returns it with its final counts."""
        return dict(self._call("DELETE", f"{CONTROL_PATH}/{fault_id}")["fault"])

    def clear(self) -> int:
        """Remove every fault; returns how many there were."""
        return int(self._call("DELETE", CONTROL_PATH)["cleared"])

    def close(self) -> None:
        """Close the HTTP connection."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise FaultApiError(
                f"the endpoint did not answer ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.status_code == 404 and not isinstance(document, dict):
            raise FaultApiError("this endpoint has no fault injector (not the embedded backend?)")
        if not isinstance(document, dict):
            raise FaultApiError(f"unexpected answer {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise FaultApiError(str(document.get("message") or document))
        return document


def kill_replica(replicas: list[dict[str, Any]], replica_id: str | None = None) -> dict[str, Any]:
    """SIGKILL one running service replica (the first, or ``replica_id``); returns it."""
    running = [r for r in replicas if r.get("pid") and _alive(int(r["pid"]))]
    if replica_id is not None:
        running = [r for r in running if str(r.get("id")) == replica_id]
    if not running:
        known = ", ".join(str(r.get("id")) for r in replicas) or "none"
        wanted = f" {replica_id!r}" if replica_id else ""
        raise FaultApiError(f"no running replica{wanted} to kill (replicas: {known})")
    replica = running[0]
    os.kill(int(replica["pid"]), signal.SIGKILL)
    return replica


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
