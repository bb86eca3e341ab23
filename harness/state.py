"""The ``.harness/state.json`` file of a running stack, and what can be asked of it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

STATE_FILE = "state.json"


def read(state_dir: Path) -> dict[str, Any] | None:
    """The state of the stack, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write(state_dir: Path, state: dict[str, Any]) -> Path:
    """Write the state atomically (readers never see half a file)."""
    path = state_dir / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def remove(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)


def alive(state: dict[str, Any]) -> bool:
    """Whether the process that wrote the state still runs."""
    try:
        return psutil.Process(int(state["pid"])).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, ValueError):
        return False


def stop_process(pid: int, timeout_s: float) -> bool:
    """SIGTERM the stack process and wait; SIGKILL it and its children after ``timeout_s``."""
    try:
        process = psutil.Process(pid)
        children = process.children(recursive=True)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return True
    gone, alive_ = psutil.wait_procs([process], timeout=timeout_s)
    if not alive_:
        psutil.wait_procs([c for c in children if c.is_running()], timeout=5)
        return True
    for proc in [process, *children]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return False


def probe(state: dict[str, Any], timeout_s: float = 2.0) -> dict[str, str]:
    """GET /health on the gateway and on each replica: '200' or what went wrong."""
    targets = {"gateway": f"{state['gateway_url']}/health"}
    targets.update({f"replica {r['id']}": f"{r['url']}/health" for r in state.get("replicas", [])})
    answers = {}
    for name, url in targets.items():
        try:
            answers[name] = str(httpx.get(url, timeout=timeout_s).status_code)
        except httpx.HTTPError as exc:
            answers[name] = f"unreachable ({type(exc).__name__})"
    return answers


def log_files(state_dir: Path) -> dict[str, Path]:
    """Component name -> log file."""
    log_dir = state_dir / "logs"
    return {p.stem: p for p in sorted(log_dir.glob("*.log"))} if log_dir.is_dir() else {}


def follow(files: dict[str, Path], emit: Callable[[str, str], None], interval_s: float = 0.2,
           stop: Callable[[], bool] = lambda: False) -> None:
    """Print lines appended to ``files`` until interrupted (or ``stop()`` says so)."""
    handles = {name: path.open("r", errors="replace") for name, path in files.items()}
    try:
        for handle in handles.values():
            handle.seek(0, os.SEEK_END)
        while not stop():
            quiet = True
            for name, handle in handles.items():
                for line in handle.readlines():
                    emit(name, line.rstrip("\n"))
                    quiet = False
            if quiet:
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        for handle in handles.values():
            handle.close()
