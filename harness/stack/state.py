"""The ``.harness/state.json`` file of a running stack, and what can be asked of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

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
        return not gone(int(state["pid"]))
    except (psutil.Error, KeyError, ValueError):
        return False


def gone(pid: int) -> bool:
    """Whether a process has exited (a zombie counts as exited)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout_s: float, interval_s: float = 0.01) -> list[int]:
    """Wait until every pid has exited; returns those still running at the timeout."""
    deadline = time.monotonic() + timeout_s
    running = [pid for pid in pids if not gone(pid)]
    while running and time.monotonic() < deadline:
        time.sleep(interval_s)
        running = [pid for pid in running if not gone(pid)]
    return running


def stop_process(pid: int, timeout_s: float) -> bool:
    """SIGTERM the stack process and wait for it and its children; SIGKILL what is left after ``timeout_s``."""
    try:
        process = psutil.Process(pid)
        children = [child.pid for child in process.children(recursive=True)]
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return True
    left = wait_gone([pid, *children], timeout_s)
    for straggler in left:
        try:
            psutil.Process(straggler).kill()
        except psutil.NoSuchProcess:
            pass
    return not left


def new_run_logs(state_dir: Path) -> Path:
    """Start this run's logs: the previous run's move to ``logs/previous/`` (one run is kept), so
    a failed start shows only its own lines."""
    log_dir = state_dir / "logs"
    previous = log_dir / "previous"
    old = sorted(log_dir.glob("*.log")) if log_dir.is_dir() else []
    if old:
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir(parents=True)
        for path in old:
            path.replace(previous / path.name)
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir


def log_files(state_dir: Path) -> dict[str, Path]:
    """Component name -> log file."""
    log_dir = state_dir / "logs"
    return {p.stem: p for p in sorted(log_dir.glob("*.log"))} if log_dir.is_dir() else {}


#: a timestamp near the start of a log line: "2026-12-01 13:56:33,939" (logging's asctime, local
#: time) or ISO 8601 with an offset inside JSON ("timestamp", "requestTime")
_STAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?\s*(Z|[+-]\d{2}:?\d{2})?"
)


def line_time(line: str) -> float | None:
    """The epoch seconds a log line was written at, if it says."""
    match = _STAMP.search(line, 0, 200)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    text = f"{day}T{clock}.{(fraction or '0').ljust(6, '0')}"
    if zone:
        text += "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.astimezone()).timestamp()


def merged_tail(files: dict[str, Path], last: int) -> list[tuple[str, str]]:
    """The last ``last`` lines of all ``files`` in time order, as (component, line); a line
    without a timestamp (a traceback, uvicorn's banner) keeps the time of the line before it."""
    entries: list[tuple[float, str, int, str]] = []
    for name, path in files.items():
        when = 0.0
        for number, line in enumerate(path.read_text(errors="replace").splitlines()):
            when = line_time(line) or when
            entries.append((when, name, number, line))
    entries.sort(key=lambda entry: entry[0])  # stable: a file's own order is kept on ties
    return [(name, line) for _, name, _, line in entries[len(entries) - last :]] if last else []


def follow(
    files: dict[str, Path],
    emit: Callable[[str, str], None],
    interval_s: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
) -> None:
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
