"""The Lambda fork server's own process: preloads libraries, forks execution environments.

Run by :class:`harness.lambda_runtime.forkserver.ForkServer` as
``python -B forkserver_process.py`` with a ``SOCK_SEQPACKET`` socket on stdin; the protocol and
what is (and is never) preloaded are described in ``forkserver.py``. Standard library only, like
``worker.py`` beside it, which each forked child runs.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from types import FunctionType, MethodType, ModuleType
from typing import Any

__all__ = ["MESSAGE_LIMIT", "PRELOAD", "main"]

MESSAGE_LIMIT = 1 << 20
#: the modules beside this script that it loads (standard library only, like it)
_SIBLINGS = ("worker", "forkserver_warm", "forkserver_child")
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
    # each new session's Loader also lists botocore's data directories again (~2,800 stat and
    # ~900 listdir calls, a third of a DynamoDB client's creation): the same read-only tree
    for name in ("list_available_services", "list_api_versions", "determine_latest_version"):
        setattr(loaders.Loader, name, _shared_listing(name, getattr(loaders.Loader, name)))


#: pure functions of botocore's own code, answered once for every fork (see _share_botocore_code)
_ARGSPECS: dict[Any, Any] = {}
_ALIASES: dict[str, str] = {}


def _plain_function(func: Any) -> FunctionType | None:
    """The function whose ``**kwargs`` decide ``func``'s: itself, a bound method's, or a
    callable object's ``__call__`` (None where a ``__signature__`` could say otherwise)."""
    if isinstance(func, MethodType):
        func = func.__func__
    elif not isinstance(func, FunctionType) and not hasattr(func, "__signature__"):
        func = type(func).__call__ if callable(func) else None
    if type(func) is FunctionType and not hasattr(func, "__signature__"):
        return func
    return None


def _share_botocore_code() -> None:
    """Memoise what each new botocore session recomputes about botocore's own code.

    A session registers ~130 built-in event handlers; for each one botocore asks
    ``inspect.getfullargspec`` whether it takes ``**kwargs`` and rewrites the event name through
    its alias table -- ~20 ms CPU of a cold environment's first client, the same answers in
    every environment. Answers are kept per function (a bound method's or a callable object's is
    its function's), and only for names rewritten through botocore's own ``EVENT_ALIASES``.
    """
    hooks = sys.modules.get("botocore.hooks")
    if hooks is None or getattr(hooks.accepts_kwargs, "shared", False):
        return
    accepts_kwargs = hooks.accepts_kwargs

    def shared_accepts_kwargs(func: Any) -> Any:
        code = _plain_function(func)
        if code is None:
            return accepts_kwargs(func)
        if code not in _ARGSPECS:
            _ARGSPECS[code] = accepts_kwargs(code)
        return _ARGSPECS[code]

    shared_accepts_kwargs.shared = True  # type: ignore[attr-defined]
    hooks.accepts_kwargs = shared_accepts_kwargs  # type: ignore[attr-defined]  # hooks calls it
    alias = hooks.EventAliaser._alias_event_name
    table = hooks.EVENT_ALIASES

    def shared_alias(self: Any, event_name: str) -> str:
        if self._event_aliases is not table:
            return alias(self, event_name)  # type: ignore[no-any-return]
        if event_name not in _ALIASES:
            _ALIASES[event_name] = alias(self, event_name)
        return _ALIASES[event_name]

    hooks.EventAliaser._alias_event_name = shared_alias


#: botocore Loader listings by (search paths, method, arguments), shared by every fork
_BOTOCORE_LISTINGS: dict[tuple[Any, ...], Any] = {}


def _shared_listing(name: str, method: Any) -> Any:
    def listing(self: Any, *args: Any) -> Any:
        key = (tuple(self.search_paths), name, *args)
        if key not in _BOTOCORE_LISTINGS:
            _BOTOCORE_LISTINGS[key] = method(self, *args)
        return _BOTOCORE_LISTINGS[key]

    return listing


def _warm_botocore() -> None:
    """List and read once what creating any boto3 client lists and reads (~60 ms CPU, once).

    The services a function calls are learned from its first invocation; until a report
    arrives (a burst forks dozens of environments at once), every child would otherwise scan
    botocore's data tree itself for the service list.
    """
    try:
        session_module = importlib.import_module("boto3.session")
        session = session_module.Session(region_name="us-east-1")
        for type_name in ("service-2", "endpoint-rule-set-1"):
            session._loader.list_available_services(type_name)
        session._session.get_component("endpoint_resolver")  # endpoints and partitions files
    except Exception:  # noqa: BLE001 - no boto3 here, or another version: children do it
        pass


def _preload_listings(documents: list[str]) -> None:
    """List what a child listed (same search paths, same method), so later forks find it."""
    loaders = sys.modules.get("botocore.loaders")
    for document in documents:
        try:
            paths, name, *args = json.loads(document)
            loader = loaders.Loader(  # type: ignore[union-attr]
                extra_search_paths=paths, include_default_search_paths=False
            )
            getattr(loader, name)(*args)
        except Exception:  # noqa: BLE001 - the child lists it itself
            pass


def _preload_files(paths: list[str]) -> None:
    loaders = sys.modules.get("botocore.loaders")
    for path in paths:
        if loaders is not None and path not in _BOTOCORE_FILES:
            try:
                loaders.JSONFileLoader().load_file(path)
            except Exception:  # noqa: BLE001 - the child parses it itself
                pass


def _become_environment(
    modules: tuple[ModuleType, ModuleType, ModuleType],
    request: dict[str, Any],
    fds: list[int],
    report: tuple[int, Any],
    close: list[int],
) -> None:
    """In a forked child: take the function's pipes, cwd and environment, then serve.

    ``report``: the report pipe and the server's ``forkserver_child.Inherited`` answer."""
    code = 1
    worker, warm, child = modules
    report_fd, inherited = report
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
        for name in inherited.shadowed:  # the function's own code provides these
            sys.modules.pop(name, None)
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:0] = [p for p in extra if p not in sys.path]
        warm.forget_shared_plugins(request["env"], [request["cwd"], *extra])
        code = int(worker.main(child.ImportReport(report_fd, inherited)))
    except SystemExit as exc:  # the function called sys.exit(): exit as its interpreter would
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the runtime sees the exit; the trace goes to stderr
        traceback.print_exc()
    finally:
        os._exit(code)


def _sharing(warm: Any) -> Callable[[], None]:
    """What the server shares with its children, as one call made again after every import it
    does (each share is done once, when what it shares has been imported; later calls return)."""

    def share() -> None:
        _share_botocore_data()
        _share_botocore_code()
        warm.share_pydantic_plugins()
        warm.share_compiled_code()
        warm.share_ssl_contexts()
        warm.share_endpoint_rulesets()

    return share


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
    # the sibling worker.py, forkserver_warm.py and forkserver_child.py: this directory is on
    # the path; a function's own modules of those names must not find ours
    worker, warm, child = (importlib.import_module(n) for n in _SIBLINGS)
    for name in _SIBLINGS:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in ("", script_dir)]
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    tried: set[str] = set()
    _preload(PRELOAD, tried)
    share = _sharing(warm)
    share()
    clients: set[str] = set()  # services whose first client the server built
    calls: set[tuple[str, str]] = set()  # (service, operation) the server made once
    warmed = False  # _warm_botocore() runs once the server is first idle: never delays a fork
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    reports: dict[int, bytearray] = {}  # a child's report pipe -> what it wrote so far
    while True:
        readable = select.select([sock, wake_r, *reports], [], [], None if warmed else 0.05)[0]
        if not readable:
            _warm_botocore()
            warmed = True
            continue
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
            prefixes = (child.FILE_PREFIX, child.LISTING_PREFIX)
            _preload([n for n in lines if not n.startswith(prefixes)], tried)
            share()
            _preload_files([n[len(prefixes[0]) :] for n in lines if n.startswith(prefixes[0])])
            _preload_listings([n[len(prefixes[1]) :] for n in lines if n.startswith(prefixes[1])])
        if sock not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, MESSAGE_LIMIT, 2)
        except OSError:
            data, fds = b"", []
        if not data:
            break
        request = json.loads(data)
        if "learn" in request:  # a function was registered: read its code (see forkserver_warm)
            for fd in fds:
                os.close(fd)
            modules, services, methods = warm.scan(
                request["learn"], child.own_names(request["learn"])
            )
            _preload(modules, tried)
            share()
            warm.warm_clients(services, clients)
            warm.warm_calls(services, methods, calls)
            continue
        try:
            inherited = child.Inherited.of(request["cwd"], _BOTOCORE_FILES, _BOTOCORE_LISTINGS)
            report_r, report_w = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            # the child's collections never visit (nor write to, nor so copy) our objects; what
            # we allocate between forks is mostly freed by reference counting, not collected
            gc.freeze()
            forked_at = time.time()
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _send(sock, {"id": request["id"], "error": str(exc)})
            continue
        if pid == 0:
            close = [sock.fileno(), wake_r, wake_w, report_r, *reports]
            siblings = (worker, warm, child)
            _become_environment(siblings, request, fds, (report_w, inherited), close)
        for fd in (*fds, report_w):
            os.close(fd)
        reports[report_r] = bytearray()
        children.add(pid)
        _send(sock, {"id": request["id"], "pid": pid, "at": forked_at})
    _stop_children(children)
    return 0


if __name__ == "__main__":
    sys.exit(main())
