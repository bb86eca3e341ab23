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
child's stdin and stdout pipe ends), or ``{"learn": DIR}`` (a function's code to read, no
answer: see ``forkserver_warm.py``); server -> parent ``{"id": N, "pid": P}`` (or ``"error"``) and
``{"exited": P, "code": C}`` when a child ends (C negative: killed by that signal). When the
socket closes the server kills its children and exits, so a dead runtime leaves nothing behind.

This module is the runtime's side; the server is ``forkserver_process.py``, run as a script in
the function's interpreter (standard library only, like ``worker.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from harness.lambda_runtime.forkserver_process import MESSAGE_LIMIT

__all__ = ["ForkServer", "ForkServerError", "ForkedProcess"]

SERVER_SCRIPT = Path(__file__).with_name("forkserver_process.py")


class ForkServerError(RuntimeError):
    """The fork server could not start or fork an environment."""


class ForkedProcess:
    """A child of the fork server, with the part of :class:`subprocess.Popen`'s API workers use."""

    def __init__(self, server: ForkServer, pid: int, forked_at: float) -> None:
        self.server = server
        self.pid = pid
        self.forked_at = forked_at  #: wall clock of the fork: where its init begins
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
        self._lock = threading.Lock()  # one request sent at a time; replies are awaited apart
        self._generation = 0  # which server process: a reply never comes from a dead one
        self._changed = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._eof = False
        self._next_id = 0
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, code_dir: str | None = None) -> None:
        """Start the server (it imports the heavy libraries while the caller goes on).

        ``code_dir``: a function's code, which the server reads (never runs) for the libraries
        it imports and the AWS clients it makes, to prepare them before the first fork
        (``forkserver_warm.py``).
        """
        with self._lock:
            self._start()
            if code_dir is not None and self._socket is not None:
                try:
                    self._socket.send(json.dumps({"learn": code_dir}).encode())
                except OSError:
                    pass  # the server is gone: the next spawn says so

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
            self._generation += 1
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
            generation = self._generation
        # the next request goes out while this one is forked: a burst's spawns do not wait
        # for each other's round trip (the server still forks them one by one)
        reply = self._reply(request_id, generation, time.monotonic() + self.start_timeout_s)
        if "error" in reply:
            raise ForkServerError(f"the Lambda fork server could not fork: {reply['error']}")
        return ForkedProcess(self, int(reply["pid"]), float(reply["at"]))

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

    def _reply(self, request_id: int, generation: int, deadline: float) -> dict[str, Any]:
        with self._changed:
            while request_id not in self._replies:
                if self._eof or self._generation != generation:
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
