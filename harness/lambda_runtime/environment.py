"""One Lambda execution environment: a worker process running a function's handler.

:class:`Worker` starts ``worker.py`` in the function's interpreter and code directory and
speaks its framed pipe protocol: it waits for the init frame, sends an invocation, gathers log
lines until the result, and turns a timeout or a crash into AWS's error payloads and REPORT
status. :mod:`harness.lambda_runtime.runtime` pools them per function.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from harness.lambda_runtime.config import FunctionConfig
from harness.lambda_runtime.forkserver import ForkedProcess, ForkServer
from harness.lambda_runtime.worker import (
    FRAME_HEAD,
    INVOKE_HEAD,
    KIND_INIT,
    KIND_INVOKE,
    KIND_LOG,
    KIND_RESULT,
    RESULT_HEAD,
)

__all__ = [
    "INIT_TIMEOUT_S",
    "RESPONSE_PAYLOAD_LIMIT",
    "Outcome",
    "Worker",
    "error_payload",
    "timestamp",
]

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
INIT_TIMEOUT_S = 10.0
RESPONSE_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100  # AWS's figure: 6291556 bytes


class _WorkerGone(OSError):
    """The worker closed its end of the pipe (it exited)."""


@dataclass
class Outcome:
    ok: bool
    payload: bytes
    lines: list[str]
    duration_ms: float
    max_memory_mb: int
    init_lines: list[str] = field(default_factory=list)
    init_duration_ms: float | None = None
    trailer: list[str] = field(default_factory=list)
    status: str | None = None  # REPORT "Status:" for timeouts and crashes
    reusable: bool = True


class Worker:
    """One warm execution environment: a child process speaking the framed pipe protocol.

    Forked from ``forks`` (the runtime's fork server) when given, else started as
    ``python -B worker.py``; either way the function's init runs in the new process.
    """

    def __init__(
        self,
        config: FunctionConfig,
        python: str,
        env: dict[str, str],
        forks: ForkServer | None = None,
    ) -> None:
        self.config = config
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.process: subprocess.Popen[bytes] | ForkedProcess
        if forks is None:
            popen = subprocess.Popen(
                [python, "-B", str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=config.code_dir,
                env=env,
                bufsize=0,
                start_new_session=True,
            )
            assert popen.stdin is not None and popen.stdout is not None
            self.process = popen
            self._write_fd = os.dup(popen.stdin.fileno())
            self._read_fd = os.dup(popen.stdout.fileno())
            popen.stdin.close()
            popen.stdout.close()
        else:
            child_in, self._write_fd = os.pipe()
            self._read_fd, child_out = os.pipe()
            try:
                self.process = forks.spawn(env, str(config.code_dir), child_in, child_out)
            except BaseException:
                os.close(self._write_fd)
                os.close(self._read_fd)
                raise
            finally:
                os.close(child_in)
                os.close(child_out)
            # Init Duration starts at the fork, not while the server was still importing
            self.started -= time.time() - self.process.forked_at
            self.started_wall = self.process.forked_at
        self._poll = select.poll()
        self._poll.register(self._read_fd, select.POLLIN)
        self._buffer = bytearray()
        self._initialised = False
        self.max_memory_mb = 0

    def invoke(self, request_id: str, header: bytes, event: bytes) -> Outcome:
        """Run one invocation; never raises for the function's own failures."""
        init_lines: list[str] = []
        init_ms: float | None = None
        lines: list[str] = []
        sent = self.started
        try:
            if not self._initialised:
                frame = self._read_until(KIND_INIT, init_lines, self.started + INIT_TIMEOUT_S)
                if frame is None:
                    return self._timed_out(request_id, INIT_TIMEOUT_S, lines, init_lines)
                self._initialised = True
                # the worker stamps when its init ended: a worker started ahead of its first
                # invocation (prewarm) reports its init, not the time it then waited
                init_ms = (
                    (float(frame) - self.started_wall) * 1000.0
                    if frame
                    else (time.monotonic() - self.started) * 1000.0
                )
            body = INVOKE_HEAD.pack(len(header)) + header + event
            sent = time.monotonic()
            self._write(FRAME_HEAD.pack(KIND_INVOKE, len(body)) + body)
            result = self._read_until(KIND_RESULT, lines, sent + self.config.timeout_s)
        except OSError:
            return self._exited(request_id, sent, lines, init_lines)
        if result is None:
            return self._timed_out(request_id, self.config.timeout_s, lines, init_lines)
        return self._outcome(result, lines, init_lines, init_ms)

    @property
    def initialised(self) -> bool:
        """Its init has ended (an invocation does not wait for it)."""
        return self._initialised

    async def invoke_async(self, request_id: str, header: bytes, event: bytes) -> Outcome:
        """invoke() of an initialised worker on the running event loop: the loop watches the
        pipe (``add_reader``) instead of a thread blocking on it. A timeout or an exited worker
        ends as in invoke(), on the loop's default executor (it kills and waits for the process).
        """
        assert self._initialised, "invoke_async needs an initialised worker"
        loop = asyncio.get_running_loop()
        lines: list[str] = []
        done: asyncio.Future[bytes | None] = loop.create_future()
        read_fd = self._read_fd

        def readable() -> None:
            if done.done():
                return
            try:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    raise _WorkerGone()
            except BlockingIOError:  # libuv may report a pipe readable that is not ("uv_poll")
                return
            except OSError as exc:
                done.set_exception(exc)
                return
            self._buffer += chunk
            result = self._take(KIND_RESULT, lines)
            if result is not None:
                done.set_result(result)

        body = INVOKE_HEAD.pack(len(header)) + header + event
        sent = time.monotonic()
        try:
            self._write(FRAME_HEAD.pack(KIND_INVOKE, len(body)) + body)
        except OSError:
            return await loop.run_in_executor(None, self._exited, request_id, sent, lines, [])
        def timed_out() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(read_fd, readable)
        timer = loop.call_later(self.config.timeout_s, timed_out)
        try:
            result = await done
        except OSError:
            return await loop.run_in_executor(None, self._exited, request_id, sent, lines, [])
        finally:
            loop.remove_reader(read_fd)
            timer.cancel()
        if result is None:
            timeout_s = self.config.timeout_s
            return await loop.run_in_executor(
                None, self._timed_out, request_id, timeout_s, lines, []
            )
        return self._outcome(result, lines, [], None)

    def _outcome(
        self, result: bytes, lines: list[str], init_lines: list[str], init_ms: float | None
    ) -> Outcome:
        """The Outcome of a result frame (RESULT_HEAD + payload)."""
        ok, init_failed, duration_ms, max_rss_kb = RESULT_HEAD.unpack_from(result)
        self.max_memory_mb = math.ceil(max_rss_kb / 1024)
        payload = result[RESULT_HEAD.size :]
        outcome = Outcome(
            bool(ok),
            payload,
            lines,
            duration_ms,
            self.max_memory_mb,
            init_lines,
            init_ms,
            reusable=not init_failed,
        )
        if len(payload) > RESPONSE_PAYLOAD_LIMIT:
            outcome.ok, outcome.payload = (
                False,
                error_payload(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size exceeded maximum allowed payload size "
                    f"({RESPONSE_PAYLOAD_LIMIT} bytes).",
                ),
            )
        return outcome

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]

    def _read_until(self, kind: bytes, lines: list[str], deadline: float) -> bytes | None:
        """Gather log lines until a ``kind`` frame; None past the deadline; OSError on EOF."""
        while (body := self._take(kind, lines)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self._poll.poll(math.ceil(remaining * 1000)):
                continue
            try:
                chunk = os.read(self._read_fd, 1 << 16)
            except BlockingIOError:  # the event loop (libuv) made the pipe non-blocking
                continue
            if not chunk:
                raise _WorkerGone()
            self._buffer += chunk
        return body

    def _take(self, kind: bytes, lines: list[str]) -> bytes | None:
        """The body of the first buffered ``kind`` frame, log frames before it into ``lines``;
        None while it has not arrived whole."""
        buffer = self._buffer
        while len(buffer) >= FRAME_HEAD.size:
            frame_kind, length = FRAME_HEAD.unpack_from(buffer)
            end = FRAME_HEAD.size + length
            if len(buffer) < end:
                return None
            body = bytes(buffer[FRAME_HEAD.size : end])
            del buffer[:end]
            if frame_kind == kind:
                return body
            if frame_kind == KIND_LOG:
                lines.extend(body.decode("utf-8", "replace").split("\n"))
        return None

    def _timed_out(
        self, request_id: str, timeout_s: float, lines: list[str], init_lines: list[str]
    ) -> Outcome:
        self._sample_memory()
        self.terminate()
        message = f"{timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds"
        return Outcome(
            False,
            error_payload("Sandbox.Timedout", message),
            lines,
            timeout_s * 1000.0,
            self.max_memory_mb,
            init_lines,
            trailer=[message],
            status="timeout",
            reusable=False,
        )

    def _exited(
        self, request_id: str, sent: float, lines: list[str], init_lines: list[str]
    ) -> Outcome:
        self.terminate()
        code = self.process.returncode
        if code == 0:
            reason = "Runtime exited without providing a reason"
        elif code is not None and code < 0:
            reason = f"Runtime exited with error: signal: {_signal_text(-code)}"
        else:
            reason = f"Runtime exited with error: exit status {code}"
        message = f"RequestId: {request_id} Error: {reason}"
        return Outcome(
            False,
            error_payload("Runtime.ExitError", message),
            lines,
            (time.monotonic() - sent) * 1000.0,
            self.max_memory_mb,
            init_lines,
            trailer=[message, "Runtime.ExitError"],
            status="error\tError Type: Runtime.ExitError",
            reusable=False,
        )

    def _sample_memory(self) -> None:
        try:
            rss = psutil.Process(self.process.pid).memory_info().rss
        except psutil.Error:
            return
        self.max_memory_mb = max(self.max_memory_mb, math.ceil(rss / (1024 * 1024)))

    def terminate(self) -> None:
        """Kill the worker and everything it started; wait for it. Safe to call twice."""
        if self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.process.wait(timeout=30.0)

    def dispose(self) -> None:
        """Terminate and release the pipes; only by the thread that owns the worker."""
        self.terminate()
        for fd in (self._write_fd, self._read_fd):
            if fd >= 0:
                os.close(fd)
        self._write_fd = self._read_fd = -1


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode("utf-8")


def _signal_text(number: int) -> str:
    names = {
        signal.SIGKILL: "killed",
        signal.SIGSEGV: "segmentation fault",
        signal.SIGABRT: "aborted",
        signal.SIGTERM: "terminated",
    }
    try:
        return names.get(signal.Signals(number), signal.Signals(number).name.lower())
    except ValueError:
        return str(number)


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
