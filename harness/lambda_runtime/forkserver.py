"""Lambda environments forked from one pre-imported process instead of each starting Python anew.

Starting ``python worker.py`` and importing boto3, botocore, powertools and pydantic costs
~0.5-1 CPU-s per environment; on two cores a burst of cold starts queues for seconds. The fork
server is one process per runtime, in the function's interpreter, that has already imported those
libraries; each new execution environment is a fork of it, ready in a few milliseconds. The child
then does what a fresh environment does: takes the function's environment variables, working
directory and pipes, and imports the handler -- the function's own init, timed in the REPORT
line's Init Duration as before (AWS: "the Init phase ... runs the function's initialization
code", https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).

The server never imports the function's code: only modules that live outside every function's
code directory (site-packages, the standard library). It learns which ones from its children:
after init and after the first invocation, a child reports the non-function modules it imported,
and the server imports them before its next fork. A code or configuration update therefore never
serves stale code: the function's modules are always imported by the child, from its code
directory, with its environment. A package the function ships in its own code (a vendored
pydantic, say) shadows the server's copy: the child forgets the preloaded one before init.

Protocol, over a ``SOCK_SEQPACKET`` socket on the server's stdin (one message each):
parent -> server ``{"id": N, "env": {...}, "cwd": DIR}`` with two descriptors attached (the
child's stdin and stdout pipe ends); server -> parent ``{"id": N, "pid": P}`` (or ``"error"``) and
``{"exited": P, "code": C}`` when a child ends (C negative: killed by that signal). When the
socket closes the server kills its children and exits, so a dead runtime leaves nothing behind.

Standard library only, like ``worker.py``: it runs in the function's interpreter.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ForkServer", "ForkServerError", "ForkedProcess"]

SERVER_SCRIPT = Path(__file__)
MESSAGE_LIMIT = 1 << 20
#: imported before the first fork if present (the rest is learned from the children)
PRELOAD = (
    "boto3",
    "boto3.session",
    "boto3.dynamodb.types",
    "botocore.session",
    "botocore.client",
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.serialize",
    "botocore.httpsession",
    "botocore.retries.standard",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "pydantic",
)


class ForkServerError(RuntimeError):
    """The fork server could not start or fork an environment."""


# ----------------------------------------------------------------------------- parent side


class ForkedProcess:
    """A child of the fork server, with the part of :class:`subprocess.Popen`'s API workers use."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.server.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"lambda environment pid {self.pid}", timeout or 0.0)
        self.returncode = code
        return code

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class ForkServer:
    """The runtime's handle on its fork server (started by :meth:`start` or the first spawn)."""

    def __init__(self, python: str, env: dict[str, str], start_timeout_s: float = 30.0) -> None:
        self.python = python
        self.env = dict(env)
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()  # one spawn request at a time
        self._changed = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._eof = False
        self._next_id = 0
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server (it imports the heavy libraries while the caller goes on)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [self.python, "-B", str(SERVER_SCRIPT)],
                stdin=theirs.fileno(),
                env=self.env,
                cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._socket = ours
        with self._changed:
            self._replies, self._eof = {}, False
        self._reader = threading.Thread(
            target=self._read, args=(ours,), name="lambda-fork-server", daemon=True
        )
        self._reader.start()

    def spawn(self, env: dict[str, str], cwd: str, stdin: int, stdout: int) -> ForkedProcess:
        """Fork an environment whose stdin/stdout are these descriptors (the caller closes them)."""
        with self._lock:
            self._start()
            assert self._socket is not None
            self._next_id += 1
            request_id = self._next_id
            message = json.dumps({"id": request_id, "env": env, "cwd": cwd}).encode()
            try:
                socket.send_fds(self._socket, [message], [stdin, stdout])
            except OSError:
                pass  # the server is gone: the wait below says so
            reply = self._reply(request_id, time.monotonic() + self.start_timeout_s)
        if "error" in reply:
            raise ForkServerError(f"the Lambda fork server could not fork: {reply['error']}")
        return ForkedProcess(self, int(reply["pid"]))

    def exit_code(self, pid: int) -> int | None:
        """How a child ended, or None while it runs."""
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            server_gone = self._eof
        if server_gone:  # nobody reports for it any more: ask the kernel
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return -signal.SIGKILL
        return None

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        """Wait for a child's exit code; None past ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.exit_code(pid)) is None:
            remaining = 0.05 if deadline is None else min(deadline - time.monotonic(), 0.05)
            if remaining <= 0:
                return None
            with self._changed:
                if pid not in self._exits:
                    self._changed.wait(remaining)
        return code

    def stop(self) -> None:
        """Close the socket: the server kills its children, then exits."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if process is not None:
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5.0)
            self._reader = None

    def _reply(self, request_id: int, deadline: float) -> dict[str, Any]:
        with self._changed:
            while request_id not in self._replies:
                if self._eof:
                    code = self._process.poll() if self._process is not None else None
                    raise ForkServerError(
                        f"the Lambda fork server ({self.python}) exited with code {code}; "
                        "its error is on the endpoint's stderr"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ForkServerError(
                        f"the Lambda fork server did not answer in {self.start_timeout_s:g} s"
                    )
                self._changed.wait(remaining)
            return self._replies.pop(request_id)

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(MESSAGE_LIMIT)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._changed:
                if "exited" in message:
                    self._exits[int(message["exited"])] = int(message["code"])
                else:
                    self._replies[int(message["id"])] = message
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()


# ----------------------------------------------------------------------------- server side


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:  # the runtime is gone; the children are being stopped anyway
        pass


def _preload(names: list[str] | tuple[str, ...], tried: set[str]) -> None:
    """Import what is not imported yet; a module that fails is left to the children."""
    for name in names:
        if name in sys.modules or name in tried:
            continue
        tried.add(name)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the child imports it itself (and reports the error)
            pass


#: botocore's parsed data files (service models, endpoint rules), shared by every fork
_BOTOCORE_FILES: dict[str, Any] = {}
_FILE_PREFIX = "file:"


def _share_botocore_data() -> None:
    """Parse each botocore data file once, in the server, for all its children.

    A new botocore session re-reads and re-parses its JSON models (~50 ms CPU for one
    DynamoDB client); forked children find those already parsed. botocore treats them as
    read-only (a Loader already hands the same object to every client of its session).
    """
    loaders = sys.modules.get("botocore.loaders")
    if loaders is None or getattr(loaders.JSONFileLoader.load_file, "shared", False):
        return
    original = loaders.JSONFileLoader.load_file

    def load_file(self: Any, file_path: str) -> Any:
        if file_path not in _BOTOCORE_FILES:
            _BOTOCORE_FILES[file_path] = original(self, file_path)
        return _BOTOCORE_FILES[file_path]

    load_file.shared = True  # type: ignore[attr-defined]
    loaders.JSONFileLoader.load_file = load_file


def _preload_files(paths: list[str]) -> None:
    loaders = sys.modules.get("botocore.loaders")
    for path in paths:
        if loaders is not None and path not in _BOTOCORE_FILES:
            try:
                loaders.JSONFileLoader().load_file(path)
            except Exception:  # noqa: BLE001 - the child parses it itself
                pass


def _become_environment(
    worker: ModuleType, request: dict[str, Any], fds: list[int], report_fd: int, close: list[int]
) -> None:
    """In a forked child: take the function's pipes, cwd and environment, then serve."""
    code = 1
    try:
        os.setsid()  # its own process group, killed as one (as the spawned workers were)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        os.close(fds[0])
        os.close(fds[1])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _forget_shadowed(request["cwd"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:0] = [p for p in extra if p not in sys.path]
        code = int(worker.main(_ImportReport(report_fd, request["cwd"])))
    except SystemExit as exc:  # the function called sys.exit(): exit as its interpreter would
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the runtime sees the exit; the trace goes to stderr
        traceback.print_exc()
    finally:
        os._exit(code)


def _own_names(task_root: str) -> set[str]:
    """Top-level module names the function's code provides (minus the standard library's)."""
    try:
        names = {entry.partition(".")[0] for entry in os.listdir(task_root)}
    except OSError:
        return set()
    return names - set(sys.stdlib_module_names)


def _forget_shadowed(task_root: str) -> None:
    """Drop preloaded modules whose top-level name the function's own code provides."""
    own = _own_names(task_root)
    for name in [n for n in sys.modules if n.partition(".")[0] in own]:
        del sys.modules[name]


class _ImportReport:
    """In a child: tells the server which modules outside the function's code it imported."""

    def __init__(self, fd: int, task_root: str) -> None:
        self._fd: int | None = fd
        self._before = set(sys.modules)
        # the handler's package is the function's even where it is found outside its code
        self._own = _own_names(task_root) | {os.environ.get("_HANDLER", "").partition(".")[0]}
        self._files = set(_BOTOCORE_FILES)

    def __call__(self, last: bool) -> None:
        if self._fd is None:
            return
        names = [
            name
            for name in list(sys.modules)
            if name not in self._before and name.partition(".")[0] not in self._own
        ]
        self._before.update(names)
        files = [_FILE_PREFIX + path for path in _BOTOCORE_FILES if path not in self._files]
        self._files.update(_BOTOCORE_FILES)
        try:
            data = "\n".join(names + files).encode() + b"\n"
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:  # the server is gone: nothing to teach
            last = True
        if last:
            os.close(self._fd)
            self._fd = None


def _reap(children: set[int], sock: socket.socket) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _stop_children(children: set[int]) -> None:
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def main() -> int:
    """Serve fork requests on the socket at fd 0 until it closes."""
    script_dir = os.path.dirname(os.path.abspath(__file__))
    worker = importlib.import_module("worker")  # the sibling worker.py: this directory is on path
    del sys.modules["worker"]  # a function's own `worker` module must not find ours
    sys.path[:] = [p for p in sys.path if p not in ("", script_dir)]
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    tried: set[str] = set()
    _preload(PRELOAD, tried)
    _share_botocore_data()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    reports: dict[int, bytearray] = {}  # a child's report pipe -> what it wrote so far
    while True:
        readable = select.select([sock, wake_r, *reports], [], [])[0]
        if wake_r in readable:
            os.read(wake_r, 512)
            _reap(children, sock)
        for fd in [fd for fd in readable if fd in reports]:
            chunk = os.read(fd, 65536)
            if chunk:
                reports[fd] += chunk
                continue
            os.close(fd)
            lines = [line for line in reports.pop(fd).decode().splitlines() if line]
            _preload([n for n in lines if not n.startswith(_FILE_PREFIX)], tried)
            _share_botocore_data()
            _preload_files([n[len(_FILE_PREFIX) :] for n in lines if n.startswith(_FILE_PREFIX)])
        if sock not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, MESSAGE_LIMIT, 2)
        except OSError:
            data, fds = b"", []
        if not data:
            break
        request = json.loads(data)
        try:
            report_r, report_w = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _send(sock, {"id": request["id"], "error": str(exc)})
            continue
        if pid == 0:
            close = [sock.fileno(), wake_r, wake_w, report_r, *reports]
            _become_environment(worker, request, fds, report_w, close)
        for fd in (*fds, report_w):
            os.close(fd)
        reports[report_r] = bytearray()
        children.add(pid)
        _send(sock, {"id": request["id"], "pid": pid})
    _stop_children(children)
    return 0


if __name__ == "__main__":
    sys.exit(main())
