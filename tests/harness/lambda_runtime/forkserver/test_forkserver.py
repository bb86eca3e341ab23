"""Environments forked from the fork server: fresh code, own init, no borrowed modules, one
environment per cold start, and the server's own lifecycle."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.lambda_runtime.runtime import LambdaRuntime
from tests.harness.lambda_runtime.forkserver.forkserver_helpers import (
    REGION,
    Lines,
    fork_server_pid,
    invoke,
    register,
)


def test_environment_is_forked_from_the_fork_server(runtime: LambdaRuntime, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import os\ndef handler(event, context):\n    return os.getppid()\n"
    )
    register(runtime, tmp_path)
    assert invoke(runtime) == fork_server_pid(runtime)


def test_code_update_in_place_reaches_a_new_forked_environment(
    runtime: LambdaRuntime, tmp_path: Path, logs: Lines
) -> None:
    app = tmp_path / "app.py"
    helper = tmp_path / "helper.py"
    for version in ("one", "two"):
        helper.write_text(f"VERSION = {version!r}\n")
        app.write_text(
            "import os\nimport helper\n"
            f"def handler(event, context):\n    return ['{version}', helper.VERSION, "
            "os.environ['COLOUR'], os.getppid()]\n"
        )
        register(runtime, tmp_path, COLOUR=f"colour-{version}")
        assert invoke(runtime) == [version, version, f"colour-{version}", fork_server_pid(runtime)]
    deadline = time.monotonic() + 30  # logs are delivered by a thread of their own
    while len(reports := [line for line in logs.lines if line.startswith("REPORT")]) < 2:
        assert time.monotonic() < deadline, logs.lines
        time.sleep(0.01)
    assert all(re.search(r"Init Duration: [0-9.]+ ms", line) for line in reports)


def test_vendored_package_shadows_the_preloaded_one(runtime: LambdaRuntime, tmp_path: Path) -> None:
    (tmp_path / "boto3").mkdir()
    (tmp_path / "boto3" / "__init__.py").write_text("VENDORED = True\n")
    (tmp_path / "app.py").write_text(
        "import boto3\ndef handler(event, context):\n"
        "    return [getattr(boto3, 'VENDORED', False), boto3.__file__]\n"
    )
    register(runtime, tmp_path)
    vendored, path = invoke(runtime)
    assert vendored is True
    assert path == str(tmp_path / "boto3" / "__init__.py")


def test_function_init_never_runs_in_the_fork_server(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    inits = tmp_path / "inits.txt"
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        f"import os\nwith open({str(inits)!r}, 'a') as f:\n    f.write(f'{{os.getpid()}}\\n')\n"
        "def handler(event, context):\n    return os.getpid()\n"
    )
    pids = []
    for _ in range(3):
        register(runtime, code)
        pids += [invoke(runtime), invoke(runtime)]
    assert inits.read_text().split() == [str(pid) for pid in pids[::2]]
    assert str(fork_server_pid(runtime)) not in inits.read_text().split()


def test_close_stops_the_fork_server_and_its_environments(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import os\ndef handler(event, context):\n    return os.getpid()\n"
    )
    rt = LambdaRuntime(endpoint_url="http://127.0.0.1:9", region=REGION)
    register(rt, tmp_path)
    worker_pid = invoke(rt)
    server_pid = fork_server_pid(rt)
    rt.close()
    assert not psutil.pid_exists(worker_pid)
    assert not psutil.pid_exists(server_pid)


def test_fork_server_started_before_any_function_forks_the_first_environment(
        runtime: LambdaRuntime, tmp_path: Path) -> None:
    """start_fork_server() (the endpoint's --prewarm) starts the server before a function
    exists; the first function's environment is its fork, not a second server's."""
    assert runtime._forks is not None and runtime._forks.pid is None
    runtime.start_fork_server()
    server_pid = fork_server_pid(runtime)
    assert psutil.Process(server_pid).ppid() == os.getpid()
    (tmp_path / "app.py").write_text(
        "import os\ndef handler(event, context):\n    return os.getppid()\n"
    )
    register(runtime, tmp_path)
    assert invoke(runtime) == server_pid == fork_server_pid(runtime)


def test_without_fork_environments_are_started_as_new_interpreters(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import os\ndef handler(event, context):\n    return os.getppid()\n"
    )
    with LambdaRuntime(endpoint_url="http://127.0.0.1:9", region=REGION, fork=False) as rt:
        register(rt, tmp_path)
        assert invoke(rt) == psutil.Process().pid


def test_concurrent_cold_starts_each_get_their_own_forked_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    """Spawn requests sent while others are being forked are each answered with their child."""
    from concurrent.futures import ThreadPoolExecutor

    arrived = tmp_path / "arrived"
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(  # each invocation waits until all 8 have begun
        f"import os, time\nARRIVED = {str(arrived)!r}\n"
        "def handler(event, context):\n"
        "    with open(ARRIVED, 'a') as f:\n        f.write('.')\n"
        "    deadline = time.monotonic() + 60\n"
        "    while os.path.getsize(ARRIVED) < 8 and time.monotonic() < deadline:\n"
        "        time.sleep(0.01)\n"
        "    return [os.getpid(), os.getppid()]\n"
    )
    register(runtime, tmp_path / "code")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: invoke(runtime), range(8)))
    assert len({pid for pid, _ in answers}) == 8
    assert {parent for _, parent in answers} == {fork_server_pid(runtime)}


def test_the_functions_modules_are_compiled_in_the_server_and_never_served_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import of exactly the bytes the server compiled gets its code; changed bytes compile."""
    import importlib._bootstrap_external as external

    from harness.lambda_runtime import forkserver_warm

    # the server patches the class for good; this process gets it back after the test
    monkeypatch.setattr(
        external.SourceLoader, "source_to_code", external.SourceLoader.source_to_code
    )
    app = tmp_path / "app.py"
    app.write_text("VALUE = 1\n")
    forkserver_warm.scan(str(tmp_path), {"app"})
    forkserver_warm.share_compiled_code()
    loader = external.SourceFileLoader("app", str(app))
    code = loader.source_to_code(app.read_bytes(), str(app))
    assert code is forkserver_warm._COMPILED[str(app)][1]
    assert loader.source_to_code(app.read_bytes(), str(tmp_path / "elsewhere.py")) is not code
    app.write_text("VALUE = 2\n")  # a code update the server has not read: compiled here
    changed = loader.source_to_code(app.read_bytes(), str(app))
    namespace: dict[str, Any] = {}
    exec(changed, namespace)  # noqa: S102 - the test's own two-line module
    assert namespace["VALUE"] == 2
