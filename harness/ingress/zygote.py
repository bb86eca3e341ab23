"""Replicas forked from one pre-imported process instead of each importing the service anew.

Importing FastAPI, pydantic, boto3 and the service costs ~0.5 CPU-s per interpreter; a replica
forked from a process that already did it starts in milliseconds. The zygote is that process
(``python -m harness.ingress.zygote APP``): it imports the app's module and uvicorn, then forks one child
per request. Each child builds its own app (calling the factory, as ``uvicorn --factory`` does)
and serves it with ``uvicorn.run``, logging to its own file. gunicorn's ``--preload`` works the
same way; ECS starts every task from the same image.

Protocol (one JSON object per line): the parent writes ``{"port": N, "host": H, "log": PATH,
"access_log": BOOL, "env": {...} (optional: the child's whole environment, e.g. an ECS task
definition revision's)}`` to the zygote's stdin; the zygote answers ``{"ready": true}`` once,
``{"spawned": PID}`` per request and ``{"exited": PID, "code": C}`` when a child ends (C negative:
killed by that signal, as :class:`subprocess.Popen` reports it). When its stdin closes (the
parent stopped or died), the zygote stops its children and exits, so none is left behind.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["ForkedProcess", "Zygote", "ZygoteError", "redirect_output"]


class ZygoteError(RuntimeError):
    """The zygote could not load the app or fork a replica; the message has its log's tail."""


# ----------------------------------------------------------------------------- parent side


class ForkedProcess:
    """A child of the zygote, with the part of :class:`subprocess.Popen`'s API replicas use."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"replica pid {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The parent's handle on one zygote process (started on first :meth:`spawn`)."""

    def __init__(
        self,
        app: str,
        *,
        env: Mapping[str, str],
        python: str = sys.executable,
        app_dir: Path | None = None,
        log_path: Path,
        start_timeout_s: float = 15.0,
        boto3_models: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        #: AWS services whose botocore models the children's clients read (:func:`_warm_boto3`)
        self.boto3_models = boto3_models
        self.env = dict(env)
        self.python = python
        self.app_dir = app_dir
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()  # one spawn request at a time
        self._changed = threading.Condition()
        self._replies: list[dict[str, Any]] = []
        self._exits: dict[int, int] = {}
        self._eof = False
        self._reader: threading.Thread | None = None
        #: called with (pid, exit code) from the reader thread as soon as a child ends
        self.on_exit: list[Callable[[int, int], None]] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the zygote process (it imports the app while the caller goes on)."""
        if self._process is not None:
            if self._process.poll() is None:
                return
            self.stop()  # it died: release its pipes and log before starting another
        command = [self.python, "-m", "harness.ingress.zygote", self.app]
        if self.app_dir is not None:
            command += ["--app-dir", str(self.app_dir)]
        if self.boto3_models:
            command += ["--boto3-models", ",".join(self.boto3_models)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        with self._changed:
            self._replies, self._eof = [], False
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.env,
        )
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name="zygote-reader", daemon=True
        )
        self._reader.start()

    def spawn(
        self,
        port: int,
        host: str,
        log_path: Path,
        access_log: bool,
        env: Mapping[str, str] | None = None,
    ) -> ForkedProcess:
        """Fork a replica serving on ``host:port`` that logs to ``log_path`` (with ``env``, if given,
        as its whole environment instead of the zygote's)."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self.start()
            process = self._process
            assert process is not None and process.stdin is not None
            request: dict[str, Any] = {
                "port": port,
                "host": host,
                "log": str(log_path),
                "access_log": access_log,
            }
            if env is not None:
                request["env"] = dict(env)
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
            except OSError:
                pass  # the zygote is gone: the wait below reports it with its log
            reply = self._next_reply(time.monotonic() + self.start_timeout_s)
        return ForkedProcess(self, int(reply["spawned"]))

    def exit_code(self, pid: int) -> int | None:
        """How a child ended, or None while it runs."""
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            zygote_gone = self._eof
        if zygote_gone:  # nobody reports for it any more: ask the kernel
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return -signal.SIGKILL
        return None

    def stop(self, grace_s: float = 3.0) -> None:
        """Close the zygote's stdin: it stops its children, then itself."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout=grace_s + 2.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _next_reply(self, deadline: float) -> dict[str, Any]:
        with self._changed:
            while not self._replies:
                if self._eof:
                    raise ZygoteError(self._failure("exited"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ZygoteError(
                        self._failure(f"did not answer in {self.start_timeout_s:g} s")
                    )
                self._changed.wait(remaining)
            reply = self._replies.pop(0)
        if "error" in reply:
            raise ZygoteError(self._failure(str(reply["error"])))
        return reply

    def _failure(self, what: str) -> str:
        code = self._process.poll() if self._process is not None else None
        exited = f"process exited with code {code}" if code is not None else what
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-20:]
        except OSError:
            lines = []
        return (
            f"the replica zygote ({self.app}) failed: {exited}\n"
            f"--- last lines of {self.log_path} ---\n" + "\n".join(lines)
        )

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                if "exited" in message:
                    self._exits[int(message["exited"])] = int(message["code"])
                elif "spawned" in message or "error" in message:
                    self._replies.append(message)
                self._changed.notify_all()
            if "exited" in message:
                for callback in list(self.on_exit):
                    callback(int(message["exited"]), int(message["code"]))
        process.wait()
        with self._changed:
            self._eof = True
            self._changed.notify_all()


# ----------------------------------------------------------------------------- zygote side


def redirect_output(log_path: Path) -> None:
    """Point this process's stdout and stderr at ``log_path`` (appending) and stdin at /dev/null."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(devnull)


def _emit(fd: int, message: dict[str, Any]) -> None:
    try:
        os.write(fd, json.dumps(message).encode() + b"\n")
    except OSError:  # the parent is gone; its children are being stopped anyway
        pass


def _serve_child(app: str, request: dict[str, Any], keep_closed: list[int]) -> None:
    """In a forked child: become a replica (own log, default signals) and run uvicorn."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        for fd in keep_closed:
            os.close(fd)
        redirect_output(Path(request["log"]))
        if isinstance(request.get("env"), dict):
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        import uvicorn  # noqa: PLC0415 - already imported by the zygote

        uvicorn.run(
            app,
            host=request["host"],
            port=int(request["port"]),
            factory=True,
            access_log=bool(request.get("access_log")),
        )
        code = 0
    except SystemExit as exc:  # uvicorn exits 3 when it cannot bind or start
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported in the replica's log, never returned
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _warm_boto3(models: tuple[str, ...]) -> None:
    """Read, into boto3's default session, the botocore data a child's ``boto3.client(...)``
    reads: the endpoint data (``endpoints.json``, 1.2 MB), the SDK defaults and retry rules, and
    the models of ``models``. A forked child finds them parsed (~90 ms CPU less per child for a
    Lambda client). Only this data is loaded: no client is made, and credentials, region and
    configuration are still resolved in the child, from the child's own environment (boto3
    reads them when a client is made). One difference from a fresh session: the data path
    (``AWS_DATA_PATH``) is the zygote's."""
    boto3: Any = sys.modules.get("boto3")  # the app's import: ingress imports no AWS SDK
    if boto3 is None:
        return  # the app does not use boto3: nothing to share
    try:  # boto3's and botocore's internals: if they move, the children read the data themselves
        session = boto3._get_default_session()._session
        loader = session.get_component("data_loader")
        session._get_internal_component("endpoint_resolver")  # endpoints.json, partitions.json
        for name in ("sdk-default-configuration", "_retry"):
            loader.load_data(name)
        for service in models:
            loader.load_service_model(service, "service-2")
            loader.load_service_model(service, "endpoint-rule-set-1")
    except Exception:  # noqa: BLE001 - an optimisation only: said in the zygote's log, not fatal
        print("zygote: botocore's data not preloaded (each task reads it itself):",
              file=sys.stderr)
        traceback.print_exc()


def _preload(app: str, boto3_models: tuple[str, ...] = ()) -> None:
    """Import the app's module and what uvicorn imports to serve it, without building the app;
    then botocore's data for the children's clients (:func:`_warm_boto3`)."""
    import importlib  # noqa: PLC0415

    import uvicorn.server  # noqa: PLC0415, F401
    from uvicorn.config import (  # noqa: PLC0415
        HTTP_PROTOCOLS,
        LIFESPAN,
        LOOP_FACTORIES,
        WS_PROTOCOLS,
    )
    from uvicorn.importer import import_from_string  # noqa: PLC0415

    for dotted in (HTTP_PROTOCOLS["auto"], WS_PROTOCOLS["auto"], LIFESPAN["auto"]):
        import_from_string(dotted)
    import_from_string(str(LOOP_FACTORIES["auto"]))
    importlib.import_module(app.partition(":")[0])
    _warm_boto3(boto3_models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("app", help="module:factory, as for uvicorn --factory")
    parser.add_argument("--app-dir", default=None, help="put this directory first on sys.path")
    parser.add_argument(
        "--boto3-models",
        default="",
        help="comma-separated AWS services whose botocore models to load before forking",
    )
    args = parser.parse_args(argv)
    if args.app_dir:
        sys.path.insert(0, args.app_dir)
    out = os.dup(1)  # the protocol; stray prints of imported code go to the log instead
    os.dup2(2, 1)
    try:
        _preload(args.app, tuple(filter(None, args.boto3_models.split(","))))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then exit
        traceback.print_exc()
        _emit(out, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent stops us by closing stdin
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _emit(out, {"ready": True})
    children: set[int] = set()
    buffered = b""
    while True:
        readable = select.select([0, wake_r], [], [])[0]
        if wake_r in readable:
            os.read(wake_r, 512)
            _reap(children, out)
        if 0 in readable:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                request = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                gc.freeze()  # the child's collections never visit (and so copy) our objects
                pid = os.fork()
                if pid == 0:
                    _serve_child(args.app, request, [out, wake_r, wake_w])
                children.add(pid)
                _emit(out, {"spawned": pid})
    _stop_children(children, out)
    return 0


def _reap(children: set[int], out: int) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _emit(out, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _stop_children(children: set[int], out: int, grace_s: float = 3.0) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while children and time.monotonic() < deadline:
        _reap(children, out)
        time.sleep(0.01)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while children:
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        children.discard(pid)


if __name__ == "__main__":
    sys.exit(main())
