"""LoadBalancer as an ALB: round-robin, health checks, no retry, 502/504, fail-open, draining."""

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

from harness.ingress.load_balancer import LoadBalancer
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
    """A TCP server that passes health checks and closes every other connection unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            request = conn.recv(65536)
            if request.startswith(b"GET /health "):
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=5)


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


def test_load_balancer_target_never_healthy_gets_no_traffic(
    echo_servers: list[ASGIServer],
) -> None:
    dead = closed_port_url()
    with LoadBalancer([dead, echo_servers[0].url], interval_s=60) as lb:
        statuses = [httpx.post(f"{lb.url}/commands", json={}).status_code for _ in range(4)]
        health = lb.target_health()
    assert statuses == [200, 200, 200, 200]  # a new target needs one passing check first
    assert health[dead] in {"initial", "unhealthy"} and health[echo_servers[0].url] == "healthy"


def test_load_balancer_dead_target_keeps_traffic_until_checks_fail_no_retry(
    echo_servers: list[ASGIServer],
) -> None:
    victim, survivor = echo_servers
    with LoadBalancer([victim.url, survivor.url], interval_s=60, unhealthy_threshold=2) as lb:
        victim_url = victim.url
        victim.stop()
        statuses = [httpx.post(f"{lb.url}/commands", json={}).status_code for _ in range(4)]
        assert lb.target_health()[victim_url] == "healthy"  # one request error takes nothing out
        lb.check_now()
        assert lb.target_health()[victim_url] == "healthy"  # 1 of unhealthy_threshold=2
        lb.check_now()
        assert lb.target_health()[victim_url] == "unhealthy"
        after = [httpx.post(f"{lb.url}/commands", json={}).status_code for _ in range(4)]
    assert sorted(statuses) == [200, 200, 502, 502]  # every other request hit the dead target
    assert after == [200, 200, 200, 200]


def test_load_balancer_failing_health_check_takes_target_out_then_back(
    echo_servers: list[ASGIServer],
) -> None:
    status = {"code": 200}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"target": "flaky"}, status["code"])

    flaky = ASGIServer(Starlette(routes=[Route("/health", health)]), name="flaky").start()
    steady = echo_servers[0].url
    try:
        with LoadBalancer([flaky.url, steady], interval_s=0.05, unhealthy_threshold=2) as lb:
            assert lb.target_health() == {flaky.url: "healthy", steady: "healthy"}
            status["code"] = 500
            assert wait_for(lambda: lb.target_health()[flaky.url] == "unhealthy")
            targets = {httpx.get(f"{lb.url}/health").json()["target"] for _ in range(4)}
            assert targets == {"a"}
            status["code"] = 200
            assert wait_for(lambda: lb.target_health()[flaky.url] == "healthy")
            targets = {httpx.get(f"{lb.url}/health").json()["target"] for _ in range(4)}
            assert targets == {"a", "flaky"}
    finally:
        flaky.stop()


def test_load_balancer_all_unhealthy_fails_open() -> None:
    status = {"code": 200}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": status["code"]}, status["code"])

    sick = ASGIServer(Starlette(routes=[Route("/health", health)]), name="sick").start()
    try:
        with LoadBalancer([sick.url], interval_s=0.05, unhealthy_threshold=2) as lb:
            status["code"] = 500
            assert wait_for(lambda: lb.target_health()[sick.url] == "unhealthy")
            response = httpx.get(f"{lb.url}/health")
        assert response.status_code == 500  # sent to the unhealthy target anyway, as ALB does
        assert response.json() == {"status": 500}
    finally:
        sick.stop()


def test_load_balancer_silent_target_answers_504(echo_servers: list[ASGIServer]) -> None:
    with LoadBalancer([echo_servers[0].url], idle_timeout_s=0.3) as lb:
        response = httpx.get(f"{lb.url}/slow/2000", timeout=10)
    assert response.status_code == 504
    assert "timed out" in response.json()["message"]


def test_load_balancer_draining_target_finishes_in_flight_gets_no_new(
    echo_servers: list[ASGIServer],
) -> None:
    registered = [echo_servers[0].url]
    with LoadBalancer(lambda: list(registered), interval_s=60) as lb:
        results: list[int] = []
        slow = threading.Thread(
            target=lambda: results.append(httpx.get(f"{lb.url}/slow/3000", timeout=10).status_code)
        )
        slow.start()
        assert wait_for(lambda: lb.in_flight(echo_servers[0].url) == 1)
        registered[:] = [echo_servers[1].url]  # deregistered: draining
        lb.check_now()
        assert lb.target_health() == {echo_servers[1].url: "healthy"}
        new = {httpx.get(f"{lb.url}/x").json()["target"] for _ in range(4)}
        assert lb.in_flight(echo_servers[0].url) == 1
        slow.join(timeout=10)
        assert wait_for(lambda: lb.in_flight(echo_servers[0].url) == 0)
    assert results == [200]  # the in-flight request on the draining target finished
    assert new == {"b"}


def test_load_balancer_no_targets_answers_503_json() -> None:
    with LoadBalancer([]) as lb:
        response = httpx.get(f"{lb.url}/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"


def test_load_balancer_reset_connection_answers_502_no_retry(
    echo_servers: list[ASGIServer], dropper: str
) -> None:
    with LoadBalancer([dropper, echo_servers[0].url], interval_s=60) as lb:
        assert lb.target_health() == {dropper: "healthy", echo_servers[0].url: "healthy"}
        statuses = [httpx.post(f"{lb.url}/query/user", json={}).status_code for _ in range(4)]
        message = httpx.post(f"{lb.url}/query/user", json={}).json()["message"]
    assert statuses == [502, 200, 502, 200]  # the reset is the client's: no second target tried
    assert message.startswith("Bad Gateway")


def test_load_balancer_crash_fails_the_requests_in_flight(tmp_path: Path) -> None:
    """What a crash costs: requests in flight on the killed replica fail with 502; none move."""
    replicas = ReplicaSet(
        "fake_service:create_app", count=2, app_dir=APPS_DIR, log_dir=tmp_path, env={}
    )
    with replicas, LoadBalancer(replicas, interval_s=0.2) as lb, httpx.Client() as client:
        victim = replicas.replicas[0]
        statuses: list[int] = []
        lock = threading.Lock()

        def slow_query(i: int) -> None:
            response = httpx.post(f"{lb.url}/query/slow", json={"sleep_ms": 1500}, timeout=10)
            with lock:
                statuses.append(response.status_code)

        threads = [threading.Thread(target=slow_query, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        assert wait_for(lambda: lb.in_flight(victim.url) == 2)
        os.kill(victim.pid, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=15)
        assert sorted(statuses) == [200, 200, 502, 502]
        assert wait_for(lambda: len(lb.healthy_targets()) == 2)
        assert victim.url not in lb.healthy_targets()
        after = [client.post(f"{lb.url}/query/user", json={}).status_code for _ in range(10)]
        assert after == [200] * 10
