"""ReplicaSet: uvicorn processes started with an environment, watched and replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from harness.ingress.replicas import HEALTHY, ReplicaInfo, ReplicaSet, ReplicaStartError

APPS_DIR = Path(__file__).parent / "apps"


def make_replicas(tmp_path: Path, count: int = 2, **env: str) -> ReplicaSet:
    """A ReplicaSet of the fake service with ``env``, logging under ``tmp_path``."""
    return ReplicaSet(
        "fake_service:create_app",
        count=count,
        env=env,
        app_dir=APPS_DIR,
        log_dir=tmp_path / "logs",
        start_timeout_s=10.0,
        stop_grace_s=2.0,
    )


def wait_for(predicate: object, timeout_s: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true or the timeout passes."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[ReplicaSet]:
    replica_set = make_replicas(tmp_path, FAKE_MARKER="from-task-definition")
    with replica_set:
        yield replica_set


def test_replica_set_start_with_env_replicas_healthy(replicas: ReplicaSet) -> None:
    infos = replicas.replicas
    assert len(infos) == 2
    assert {info.state for info in infos} == {HEALTHY}
    assert len({info.url for info in infos}) == 2
    for info in infos:
        answer = httpx.get(f"{info.url}/env/FAKE_MARKER").json()
        assert answer["value"] == "from-task-definition"
        assert psutil.Process(info.pid).is_running()
    assert replicas.target_urls() == [info.url for info in infos]


def test_replica_set_killed_replica_replaced_with_new_pid(replicas: ReplicaSet) -> None:
    seen: list[list[ReplicaInfo]] = []
    replicas.add_listener(seen.append)
    victim, survivor = replicas.replicas
    os.kill(victim.pid, signal.SIGKILL)

    def replaced() -> bool:
        infos = replicas.replicas
        return (
            len(infos) == 2
            and victim.pid not in {i.pid for i in infos}
            and all(i.state == HEALTHY for i in infos)
        )

    assert wait_for(replaced), replicas.replicas
    new = next(i for i in replicas.replicas if i.id != survivor.id)
    assert new.id != victim.id
    assert httpx.get(f"{new.url}/health").status_code == 200
    assert victim.url not in replicas.target_urls()
    assert any(victim.pid not in {i.pid for i in snapshot} for snapshot in seen)


def test_replica_set_replica_failing_health_checks_killed_and_replaced(tmp_path: Path) -> None:
    replica_set = make_replicas(tmp_path, count=2)
    replica_set.health_check_interval_s, replica_set.health_check_retries = 0.1, 2
    with replica_set:
        sick, well = replica_set.replicas
        httpx.post(f"{sick.url}/admin/health/500")
        assert wait_for(
            lambda: (
                sick.pid not in {i.pid for i in replica_set.replicas}
                and len(replica_set.target_urls()) == 2
            )
        )
        assert well in replica_set.replicas
        assert not psutil.pid_exists(sick.pid) or (
            psutil.Process(sick.pid).status() == psutil.STATUS_ZOMBIE
        )


def test_replica_set_failing_health_check_raises_with_last_log_lines(tmp_path: Path) -> None:
    replica_set = make_replicas(tmp_path, count=1, FAKE_HEALTH_STATUS="500")
    replica_set.start_timeout_s = 2.0
    with pytest.raises(ReplicaStartError) as caught:
        replica_set.start()
    message = str(caught.value)
    assert "GET /health answered 500" in message
    assert "health check will answer 500" in message  # a line from the replica's log
    assert replica_set.replicas == []


def test_replica_set_crashing_app_raises_with_exit_code_and_log(tmp_path: Path) -> None:
    replica_set = make_replicas(tmp_path, count=1, FAKE_CRASH="no QUERY_LAMBDA_NAME")
    with pytest.raises(ReplicaStartError, match="process exited with code") as caught:
        replica_set.start()
    assert "cannot start: no QUERY_LAMBDA_NAME" in str(caught.value)


def test_replica_set_stop_leaves_no_process_and_frees_ports(tmp_path: Path) -> None:
    replica_set = make_replicas(tmp_path).start()
    infos = replica_set.replicas
    ports = [int(info.url.rsplit(":", 1)[1]) for info in infos]
    replica_set.stop()
    for info in infos:
        assert not psutil.pid_exists(info.pid) or (
            psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE
        )
    assert all(port_is_free(port) for port in ports)
    assert replica_set.replicas == []
    children = psutil.Process().children(recursive=True)
    assert not [c for c in children if c.pid in {i.pid for i in infos}]


def test_replica_set_scale_changes_count_and_keeps_logs(replicas: ReplicaSet) -> None:
    replicas.scale(3)
    assert len(replicas.target_urls()) == 3
    first = replicas.replicas[0]
    replicas.scale(1)
    assert [info.id for info in replicas.replicas] == [first.id]
    assert replicas.log_path(first.id).exists()


def test_replicas_fork_from_one_zygote_that_imported_the_app(replicas: ReplicaSet) -> None:
    pids = {info.pid for info in replicas.replicas}
    parents = {psutil.Process(pid).ppid() for pid in pids}
    assert len(parents) == 1 and os.getpid() not in parents
    zygote = psutil.Process(parents.pop())
    assert "harness.ingress.zygote" in " ".join(zygote.cmdline())


def test_replicas_without_preload_are_fresh_interpreters(tmp_path: Path) -> None:
    replica_set = ReplicaSet(
        "fake_service:create_app",
        count=1,
        env={"FAKE_MARKER": "plain"},
        app_dir=APPS_DIR,
        log_dir=tmp_path / "logs",
        preload=False,
    )
    with replica_set:
        (info,) = replica_set.replicas
        assert psutil.Process(info.pid).ppid() == os.getpid()
        assert httpx.get(f"{info.url}/env/FAKE_MARKER").json()["value"] == "plain"


def test_zygote_that_cannot_import_the_app_fails_the_start_with_its_log(tmp_path: Path) -> None:
    replica_set = ReplicaSet(
        "no_such_module:create_app", count=1, app_dir=APPS_DIR, log_dir=tmp_path / "logs"
    )
    with pytest.raises(ReplicaStartError, match="zygote .* failed: ModuleNotFoundError") as caught:
        replica_set.start()
    assert "zygote.log ---\nTraceback" in str(caught.value)


def test_replicas_stop_when_the_owning_process_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the zygote sees its stdin close and stops them."""
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_replicas import make_replicas
from pathlib import Path
replicas = make_replicas(Path({str(tmp_path)!r}), count=2).start()
print(" ".join(str(info.pid) for info in replicas.replicas), flush=True)
time.sleep(60)
"""
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids)
        owner.kill()
        owner.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in pids), timeout_s=10.0)
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
