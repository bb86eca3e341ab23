"""What the Lambda fork server prepares before any environment reports: read from the code.

A burst right after ``up`` forks dozens of environments before the first one has finished its
first invocation (and so before any has told the server what it imported), so each of them
would import the function's libraries and build its first botocore client from scratch. When a
function is registered, the server reads its code instead (``ast``; nothing of it runs) and

- imports the modules it imports that live outside its code (site-packages, the standard
  library), as it does for those the children report;
- builds, once and with placeholder credentials, a client of each AWS service the code names
  in a ``client("...")`` / ``resource("...")`` call, then drops it; what stays is botocore's and
  the standard library's module-level state a first client fills (parsed models and rules,
  compiled patterns, memoised answers), which every fork then finds filled;
- with that client, makes each operation the code calls by name (``x.query(...)``: a method
  named as the operation's snake_case name), without parameters, once, against a responder
  in this process on a loopback port that answers ``200 {}`` (:func:`warm_calls`): nothing
  reaches AWS or the harness's endpoint. A first request fills more module-level state
  (``abc`` subclass caches of botocore's and urllib3's types, compiled URL and header patterns,
  signing's lazily imported hashing, the parsers' shape caches), ~5 ms CPU of every new
  environment's first call (``bench/bench_cold_start.py --event query``).

It also discovers pydantic's plugins once (see :func:`share_pydantic_plugins`).
Standard library only, like ``forkserver_process.py``, which loads it beside itself.
"""

from __future__ import annotations

import ast
import gc
import importlib
import os
import socket
import sys
import threading
from typing import Any

__all__ = [
    "forget_shared_plugins",
    "scan",
    "share_compiled_code",
    "share_endpoint_rulesets",
    "share_pydantic_plugins",
    "share_ssl_contexts",
    "warm_calls",
    "warm_clients",
]

#: a code directory with more Python files than this is only partly read
MAX_FILES = 500
MAX_FILE_BYTES = 1 << 20
_FACTORIES = ("client", "resource")


def scan(code_dir: str, own: set[str]) -> tuple[list[str], list[str], set[str]]:
    """Modules the code imports from outside itself, the AWS services it makes clients of, and
    the method names it calls (``x.name(...)``: which operations :func:`warm_calls` makes).

    ``own``: the top-level names the function's code provides (never imported by the server).
    """
    _forget_old_code(code_dir)
    modules: dict[str, None] = {}
    services: dict[str, None] = {}
    methods: set[str] = set()
    for path in _python_files(code_dir):
        imported, named, called = _read(path)
        modules.update((n, None) for n in imported if n.partition(".")[0] not in own)
        services.update((n, None) for n in named)
        methods.update(called)
    return list(modules), list(services), methods


#: the code directories read last (each version of a function has its own): what the server
#: keeps of older ones is dropped, so code updates do not grow it
KEPT_CODE_DIRS = 16
_CODE_DIRS: list[str] = []


def _forget_old_code(code_dir: str) -> None:
    root = os.path.join(code_dir, "")
    if root in _CODE_DIRS:
        _CODE_DIRS.remove(root)
    _CODE_DIRS.append(root)
    del _CODE_DIRS[:-KEPT_CODE_DIRS]
    kept = tuple(_CODE_DIRS)
    for table in (_READ, _COMPILED):
        for path in [p for p in table if not p.startswith(kept)]:
            del table[path]


#: what a file imports, the services it names and the methods it calls, by path, while its
#: stat stays the same
_READ: dict[str, tuple[tuple[int, int], list[str], list[str], list[str]]] = {}


def _read(path: str) -> tuple[list[str], list[str], list[str]]:
    try:
        with open(path, "rb") as source:
            stat = os.fstat(source.fileno())
            key = (stat.st_mtime_ns, stat.st_size)
            if path in _READ and _READ[path][0] == key:  # registered again, unchanged
                return _READ[path][1:]
            data = source.read(MAX_FILE_BYTES + 1)
            tree = ast.parse(data[:MAX_FILE_BYTES], path)
            _COMPILED.pop(path, None)
            if len(data) <= MAX_FILE_BYTES:  # what SourceLoader.source_to_code would make
                _COMPILED[path] = (data, compile(data, path, "exec", dont_inherit=True))
    except (OSError, SyntaxError, ValueError):
        return [], [], []  # the child's own import reports it
    modules: list[str] = []
    services: list[str] = []
    methods: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Call):
            if (service := _service_name(node)) is not None:
                services.append(service)
            if isinstance(node.func, ast.Attribute):
                methods.append(node.func.attr)
    _READ[path] = (key, modules, services, methods)
    return modules, services, methods


#: the function's source files compiled by the server, by path: (their bytes, the code object)
_COMPILED: dict[str, tuple[bytes, Any]] = {}


def share_compiled_code() -> None:
    """Let a child's import of the function's modules use the server's compiled code.

    The function's zip has no ``__pycache__`` (and the runtime runs ``python -B``), so each new
    environment compiled every module of its code from source (~2-3 ms CPU for query-lambda).
    The server compiles each file it reads (:func:`scan`); ``SourceLoader.source_to_code`` then
    answers with that code object only when the bytes being imported are exactly the bytes the
    server compiled, from the same path, at the default optimisation level -- what a
    ``__pycache__`` entry would give. Changed code is compiled in the child as before.
    """
    loader = importlib.import_module("importlib._bootstrap_external").SourceLoader
    if getattr(loader.source_to_code, "shared", False):
        return
    original = loader.source_to_code

    def source_to_code(self: Any, data: Any, path: Any, *, _optimize: int = -1) -> Any:
        known = _COMPILED.get(path) if _optimize == -1 else None
        if known is not None and type(data) is bytes and known[0] == data:
            return known[1]
        return original(self, data, path, _optimize=_optimize)

    source_to_code.shared = True  # type: ignore[attr-defined]
    loader.source_to_code = source_to_code


#: SSL contexts a new environment's first client and credential chain make (the client's
#: endpoint, the container and instance metadata fetchers), plus one
SPARE_SSL_CONTEXTS = 4
_SPARE_SSL: list[Any] = []


def share_ssl_contexts() -> None:
    """Build botocore's default SSL contexts in the server; each child takes its own copies.

    Every ``URLLib3Session`` makes a new ``SSLContext`` even for ``http://`` endpoints; a new
    environment makes three (~0.7 ms CPU each after a fork). The server builds a few with
    botocore's own ``create_urllib3_context()`` and its defaults; after the fork each child has
    private copies of them, never used by the server or by any other child, and its first calls
    with those defaults take one each instead of building one. A context is only handed out
    unused, and never where ``SSLKEYLOGFILE`` is set (the function's environment decides that
    context's key log, so the child builds it).
    """
    httpsession: Any = sys.modules.get("botocore.httpsession")
    if (
        httpsession is None
        or getattr(httpsession.create_urllib3_context, "shared", False)
        or os.environ.get("SSLKEYLOGFILE")
    ):
        return
    original = httpsession.create_urllib3_context
    server = os.getpid()
    spare = _SPARE_SSL
    try:
        spare[:] = [original() for _ in range(SPARE_SSL_CONTEXTS)]
    except Exception:  # noqa: BLE001 - no SSL here: the children do without
        spare.clear()
        return

    def create_urllib3_context(
        ssl_version: Any = None, cert_reqs: Any = None, options: Any = None, ciphers: Any = None
    ) -> Any:
        defaults = ssl_version is None and cert_reqs is None and options is None and not ciphers
        if defaults and spare and os.getpid() != server and not os.environ.get("SSLKEYLOGFILE"):
            return spare.pop()
        return original(ssl_version, cert_reqs, options, ciphers)

    create_urllib3_context.shared = True  # type: ignore[attr-defined]
    httpsession.create_urllib3_context = create_urllib3_context


def _python_files(code_dir: str) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".py"))
        if len(found) >= MAX_FILES:
            return found[:MAX_FILES]
    return found


def _service_name(call: ast.Call) -> str | None:
    """``x.client("dynamodb")``, ``client(service_name="s3")``: the literal service name."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in _FACTORIES:
        return None
    arguments = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "service_name")]
    for argument in arguments:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
    return None


def warm_clients(services: list[str], warmed: set[str]) -> None:
    """Build (and drop) one client per service not yet built; nothing is sent anywhere."""
    todo = [s for s in services if s not in warmed]
    if not todo or "boto3.session" not in sys.modules:
        return
    warmed.update(todo)
    session_module = sys.modules["boto3.session"]
    for service in todo:
        try:
            session = session_module.Session(
                aws_access_key_id="fork-server",
                aws_secret_access_key="fork-server",  # noqa: S106 - a placeholder, never sent
                region_name="us-east-1",
            )
            session.client(service)
        except Exception:  # noqa: BLE001 - not a service here: the child finds out itself
            pass
    gc.collect()  # botocore's clients hold cycles: collected before the next fork freezes them


#: operations made per service at most (the first ones the code calls, in the model's order)
MAX_CALLS = 4
_WARM_TIMEOUT_S = 2.0
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"x-amzn-RequestId: fork-server-warm-up\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
)


def warm_calls(services: list[str], methods: set[str], warmed: set[tuple[str, str]]) -> int:
    """Make each operation of ``services`` the code calls by name once, against a loopback
    responder of this process (placeholder credentials; one attempt; nothing else is sent).

    Any outcome is fine (an answer that does not parse as the operation's output raises): what
    counts is the module-level state a first request fills. The responder's thread ends before
    this returns, so the next fork copies no thread. Returns how many requests were answered.
    """
    if not services or "boto3.session" not in sys.modules or "botocore.config" not in sys.modules:
        return 0
    # a proxy of the server's environment would get the request: the loopback is direct
    proxies = {k: os.environ.pop(k) for k in list(os.environ) if k.lower() in _PROXY_VARIABLES}
    try:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(_WARM_TIMEOUT_S)
            answered = sum(_warm_service(listener, s, methods, warmed) for s in services)
    finally:
        os.environ.update(proxies)
    gc.collect()
    return answered


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def _warm_service(
    listener: socket.socket, service: str, methods: set[str], warmed: set[tuple[str, str]]
) -> int:
    done = (service, ",".join(sorted(methods)))
    if done in warmed:  # registered again with the same code: nothing new to make
        return 0
    warmed.add(done)
    config = sys.modules["botocore.config"].Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=False,  # the operation is made without its parameters
        connect_timeout=_WARM_TIMEOUT_S,
        read_timeout=_WARM_TIMEOUT_S,
    )
    try:
        client = (
            sys.modules["boto3.session"]
            .Session(
                aws_access_key_id="fork-server",
                aws_secret_access_key="fork-server",  # noqa: S106 - a placeholder
                region_name="us-east-1",
            )
            .client(
                service, endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}", config=config
            )
        )
    except Exception:  # noqa: BLE001 - not a service here: the child finds out itself
        return 0
    xform_name = sys.modules["botocore"].xform_name
    names = [xform_name(op) for op in client.meta.service_model.operation_names]
    todo = [n for n in names if n in methods and (service, n) not in warmed][:MAX_CALLS]
    answered = 0
    for name in todo:
        warmed.add((service, name))
        answered += _call_once(listener, getattr(client, name))
    client.close()
    return answered


def _call_once(listener: socket.socket, operation: Any) -> bool:
    answered: list[bool] = []
    responder = threading.Thread(target=_answer_once, args=(listener, answered), daemon=True)
    responder.start()
    try:
        operation()
    except Exception:  # noqa: BLE001 - {} is not every operation's output: the call still ran
        pass
    responder.join(_WARM_TIMEOUT_S * 2)
    return bool(answered)


def _answer_once(listener: socket.socket, answered: list[bool]) -> None:
    """Accept one connection, read one request, answer ``200 {}``."""
    try:
        connection, _ = listener.accept()
    except OSError:
        return
    connection.settimeout(_WARM_TIMEOUT_S)
    with connection, connection.makefile("rb") as stream:
        try:
            length = 0  # the request line, then headers up to the blank line, then the body
            while (line := stream.readline(65537)) not in (b"\r\n", b"\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or b"0")
            stream.read(length)
            connection.sendall(_ANSWER)
            answered.append(True)
        except (OSError, ValueError):
            pass


#: botocore's parsed endpoint rule sets, by the identity of the data they were parsed from
_RULESETS: dict[tuple[tuple[str, int], ...], tuple[Any, list[Any]]] = {}


def share_endpoint_rulesets() -> None:
    """Parse each service's endpoint rule set once, in the server, for every fork.

    Each new client's ``EndpointProvider`` turns the service's ``endpoint-rule-set-1`` data into
    rule objects (~1.3 ms CPU of a new environment's DynamoDB client); botocore never changes
    them after (an evaluation copies its parameters). The data is the server's shared parse of
    the file (``_share_botocore_data``), so the same data object gives the same rule set; data
    parsed anew (another file, a function's own botocore data) gets its own.
    """
    provider: Any = sys.modules.get("botocore.endpoint_provider")
    if provider is None or getattr(provider.RuleSet, "shared", False):
        return

    def key_of(data: dict[str, Any]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((name, id(value)) for name, value in data.items()))

    class RuleSet(provider.RuleSet):  # type: ignore[misc]
        """botocore's RuleSet, one per rule-set data object (an instance of botocore's)."""

        shared = True

        def __new__(cls, **data: Any) -> Any:
            known = _RULESETS.get(key_of(data))
            return known[0] if known is not None else super().__new__(cls)

        def __init__(self, **data: Any) -> None:
            key = key_of(data)
            if key not in _RULESETS:  # the data is kept alive with it: its id is never reused
                super().__init__(**data)
                _RULESETS[key] = (self, list(data.values()))

    RuleSet.__module__ = provider.__name__
    provider.RuleSet = RuleSet


def share_pydantic_plugins() -> None:
    """Discover pydantic's plugins once for every fork.

    A process's first pydantic model scans every installed distribution's entry points for
    plugins (~15 ms CPU per environment); a child whose function could find others forgets the
    answer (:func:`forget_shared_plugins`).
    """
    plugins = sys.modules.get("pydantic.plugin._loader")
    if plugins is not None and "PYDANTIC_DISABLE_PLUGINS" not in os.environ:
        try:
            plugins.get_plugins()
        except Exception:  # noqa: BLE001 - the child discovers them itself
            plugins._plugins = None  # type: ignore[attr-defined]


def forget_shared_plugins(env: dict[str, Any], paths: list[str]) -> None:
    """In a child: rediscover pydantic's plugins if the function's environment or code differ.

    pydantic reads ``PYDANTIC_DISABLE_PLUGINS`` while discovering, and a distribution the
    function ships (``*.dist-info``, ``*.egg-info`` in its code or PYTHONPATH) may add some.
    """
    plugins = sys.modules.get("pydantic.plugin._loader")
    if plugins is None or plugins._plugins is None:
        return
    shipped = False
    for path in paths:
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        shipped = shipped or any(n.endswith((".dist-info", ".egg-info")) for n in entries)
    if shipped or "PYDANTIC_DISABLE_PLUGINS" in env:
        plugins._plugins = None  # type: ignore[attr-defined]
