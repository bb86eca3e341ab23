"""LoadBalancer: round-robin, active health checks, retries on connection errors."""

from __future__ import annotations

import collections
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.ingress.load_balancer import LoadBalancer, default_idempotent
from harness.ingress.replicas import ReplicaSet
from harness.ingress.servers import ASGIServer

APPS_DIR = Path(__file__).parent / "apps"
sys.path.insert(0, str(APPS_DIR))
from echo_upstream import create_echo_app  # noqa: E402


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def closed_port_url() -> str:
    """A URL on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def echo_servers() -> Iterator[list[ASGIServer]]:
    servers = [ASGIServer(create_echo_app(name), name=name).start() for name in ("a", "b")]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def dropper() -> Iterator[str]:
    """A TCP server that accepts connections and closes them without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=5)


def test_default_idempotent_get_and_query_posts_only() -> None:
    assert default_idempotent("GET", "/health")
    assert default_idempotent("POST", "/query/user")
    assert not default_idempotent("POST", "/commands")
    assert not default_idempotent("DELETE", "/query/user")


def test_load_balancer_round_robin_spreads_requests_evenly(echo_servers: list[ASGIServer]) -> None:
    with LoadBalancer([s.url for s in echo_servers]) as lb, httpx.Client(base_url=lb.url) as c:
        hits = collections.Counter(c.get("/anything").json()["target"] for _ in range(10))
    assert hits == {"a": 5, "b": 5}


def test_load_balancer_forwards_method_path_query_body_headers(
    echo_servers: list[ASGIServer],
) -> None:
    with LoadBalancer([echo_servers[0].url]) as lb:
        response = httpx.post(
            f"{lb.url}/query/user?limit=5&x=%2F",
            json={"user_id": "test_user_001"},
            headers={"X-Request-Id": "req-1", "X-Forwarded-For": "10.0.0.9"},
        )
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "a"
    assert len(response.headers.get_list("date")) == 1
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/query/user"
    assert echoed["query"] == "limit=5&x=%2F"
    assert echoed["body"] == '{"user_id":"test_user_001"}'
    assert echoed["headers"]["x-request-id"] == "req-1"
    assert echoed["headers"]["x-forwarded-for"] == "10.0.0.9, 127.0.0.1"


def test_load_balancer_upstream_error_status_passes_through(echo_servers: list[ASGIServer]) -> None:
    with LoadBalancer([echo_servers[0].url]) as lb:
        response = httpx.get(f"{lb.url}/status/503")
    assert response.status_code == 503
    assert response.json() == {"target": "a", "status": 503}


def test_load_balancer_dead_target_retried_and_ejected(echo_servers: list[ASGIServer]) -> None:
    dead = closed_port_url()
    with LoadBalancer([dead, echo_servers[0].url], interval_s=60) as lb:
        statuses = [httpx.post(f"{lb.url}/commands", json={}).status_code for _ in range(4)]
        health = lb.target_health()
    assert statuses == [200, 200, 200, 200]  # connect refused: nothing sent, any request moves
    assert health == {dead: "unhealthy", echo_servers[0].url: "healthy"}


def test_load_balancer_failing_health_check_takes_target_out_then_back() -> None:
    status = {"code": 200}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({}, status["code"])

    flaky = ASGIServer(Starlette(routes=[Route("/health", health)]), name="flaky").start()
    try:
        with LoadBalancer([flaky.url], interval_s=0.05, unhealthy_threshold=2) as lb:
            assert lb.target_health() == {flaky.url: "healthy"}
            status["code"] = 500
            assert wait_for(lambda: lb.target_health()[flaky.url] == "unhealthy")
            response = httpx.get(f"{lb.url}/health")
            assert response.status_code == 503
            assert "no healthy target" in response.json()["message"]
            status["code"] = 200
            assert wait_for(lambda: lb.target_health()[flaky.url] == "healthy")
            assert httpx.get(f"{lb.url}/health").status_code == 200
    finally:
        flaky.stop()


def test_load_balancer_no_targets_answers_503_json() -> None:
    with LoadBalancer([]) as lb:
        response = httpx.get(f"{lb.url}/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"


def test_load_balancer_all_targets_fail_answers_502_json() -> None:
    with LoadBalancer([closed_port_url(), closed_port_url()], interval_s=60) as lb:
        response = httpx.get(f"{lb.url}/health")
    assert response.status_code == 502
    assert "ConnectError" in response.json()["message"]


def test_load_balancer_dropped_connection_retried_only_when_idempotent(
    echo_servers: list[ASGIServer], dropper: str
) -> None:
    with LoadBalancer([dropper, echo_servers[0].url], interval_s=60) as lb:
        queries = [httpx.post(f"{lb.url}/query/user", json={}).status_code for _ in range(4)]
        commands = [httpx.post(f"{lb.url}/commands", json={}).status_code for _ in range(2)]
    assert queries == [200, 200, 200, 200]
    assert sorted(commands) == [200, 502]


def test_load_balancer_killing_a_replica_during_query_loop_loses_nothing(tmp_path: Path) -> None:
    replicas = ReplicaSet(
        "fake_service:create_app", count=2, app_dir=APPS_DIR, log_dir=tmp_path, env={}
    )
    with replicas, LoadBalancer(replicas, interval_s=0.2) as lb, httpx.Client() as client:
        victim = replicas.replicas[0]
        statuses, pids = [], set()
        for i in range(60):
            if i == 10:
                os.kill(victim.pid, signal.SIGKILL)
            response = client.post(f"{lb.url}/query/user", json={"user_id": f"u{i}"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                pids.add(response.json()["pid"])
        assert statuses == [200] * 60
        assert victim.pid in pids and len(pids) >= 2
        assert wait_for(lambda: len(lb.healthy_targets()) == 2)
        assert victim.url not in lb.healthy_targets()
