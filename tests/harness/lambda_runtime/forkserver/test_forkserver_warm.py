"""What the fork server reads and keeps for the next environment (forkserver_warm.py): libraries a
function imported, botocore data, listings and handler checks, compiled modules, SSL contexts,
endpoint rules; each shared only where it cannot differ, never stale."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.lambda_runtime.runtime import LambdaRuntime
from tests.harness.lambda_runtime.forkserver.forkserver_helpers import (
    assert_learned_by_a_later_environment,
    invoke,
    register,
)


def test_libraries_a_function_imported_are_preloaded_for_the_next_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(  # a name no reading of the code finds: learnt from a child
        "import importlib, sys\nPRELOADED = 'xml.dom.minidom' in sys.modules\n"
        "importlib.import_module('xml.dom.' + 'minidom')\n"
        "def handler(event, context):\n    return PRELOADED\n"
    )
    assert_learned_by_a_later_environment(runtime, tmp_path, "xml.dom.minidom preloaded")


def test_code_is_read_for_libraries_and_clients_before_the_first_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    """The first environment finds what its code imports and its first client already done."""
    (tmp_path / "helper.py").write_text("LOADED = True\n")
    (tmp_path / "app.py").write_text(
        "import sys\nimport boto3\n"
        "PRELOADED = 'xml.dom.minidom' in sys.modules\nHELPER = 'helper' in sys.modules\n"
        "import xml.dom.minidom\nimport helper\n"
        "def handler(event, context):\n"
        "    shared = sys.modules['__main__']._BOTOCORE_FILES  # white-box: the server's cache\n"
        "    had = any('/sqs/' in path for path in shared)\n"
        "    boto3.client('sqs')\n"
        "    return [PRELOADED, HELPER, had]\n"
    )
    register(runtime, tmp_path)
    # the function's own helper is never imported by the server
    assert invoke(runtime) == [True, False, True]


def test_botocore_data_a_function_parsed_is_shared_with_the_next_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(
        "import sys\nimport boto3\n"
        "def handler(event, context):\n"
        "    shared = sys.modules['__main__']._BOTOCORE_FILES  # white-box: the server's cache\n"
        "    had = any('dynamodb' in path for path in shared)\n"
        "    boto3.session.Session().client('dynamo' + 'db')  # no literal for the server\n"
        "    return had\n"
    )
    assert_learned_by_a_later_environment(runtime, tmp_path, "DynamoDB's model parsed")


def test_botocore_listings_are_shared_per_search_path_and_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A data-tree listing made once (in the server) is found by later loaders (its forks)."""
    from botocore import loaders

    from harness.lambda_runtime import forkserver_child as child
    from harness.lambda_runtime import forkserver_process as server

    for name in ("list_available_services", "list_api_versions", "determine_latest_version"):
        monkeypatch.setattr(loaders.Loader, name, getattr(loaders.Loader, name))
    monkeypatch.setattr(loaders.JSONFileLoader, "load_file", loaders.JSONFileLoader.load_file)
    monkeypatch.setattr(server, "_BOTOCORE_LISTINGS", {})
    server._share_botocore_data()
    fd, task_root = _report_pipe(tmp_path)
    inherited = child.Inherited(task_root, server._BOTOCORE_FILES, server._BOTOCORE_LISTINGS)
    report = child.ImportReport(fd, inherited)

    first = loaders.Loader().list_available_services("service-2")
    assert "dynamodb" in first
    assert loaders.Loader().list_available_services("service-2") is first  # no second scan
    other = loaders.Loader(extra_search_paths=[str(tmp_path)])  # another tree: its own listing
    assert other.list_available_services("service-2") is not first

    report(True)
    lines = (tmp_path / "report").read_text().splitlines()
    listed = [json.loads(line.partition(":")[2]) for line in lines if line.startswith("listing:")]
    assert [loaders.Loader().search_paths, "list_available_services", "service-2"] in listed
    server._BOTOCORE_LISTINGS.clear()  # the server learns it again from the report
    server._preload_listings([json.dumps(document) for document in listed])
    assert loaders.Loader().list_available_services("service-2") == first
    assert len(server._BOTOCORE_LISTINGS) >= 1


def _report_pipe(tmp_path: Path) -> tuple[int, str]:
    import os

    fd = os.open(tmp_path / "report", os.O_WRONLY | os.O_CREAT)
    return fd, str(tmp_path / "task")


def test_botocore_handler_checks_are_answered_once_for_every_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second session (a fork's) asks neither inspect nor the alias table again."""
    import botocore.session
    from botocore import hooks

    from harness.lambda_runtime import forkserver_process as server

    monkeypatch.setattr(hooks, "accepts_kwargs", hooks.accepts_kwargs)
    monkeypatch.setattr(
        hooks.EventAliaser, "_alias_event_name", hooks.EventAliaser._alias_event_name
    )
    monkeypatch.setattr(server, "_ARGSPECS", {})
    monkeypatch.setattr(server, "_ALIASES", {})
    asked: list[object] = []
    inspect_argspec = hooks.accepts_kwargs

    def accepts_kwargs(func: object) -> object:
        asked.append(func)
        return inspect_argspec(func)

    monkeypatch.setattr(hooks, "accepts_kwargs", accepts_kwargs)
    server._share_botocore_code()
    botocore.session.get_session()
    assert asked and server._ALIASES
    first = len(asked)
    second = botocore.session.get_session()
    # the same handlers: none asked again (another library's handler made anew per session,
    # or one without a function of its own, a partial say, is asked as before)
    known = {server._plain_function(f) for f in asked[:first]} - {None}
    again = [f for f in asked[first:] if server._plain_function(f) in known]
    assert again == []
    first = len(asked)

    class Handler:
        def __call__(self, **kwargs: Any) -> None:
            pass

    class Signed:
        def __init__(self) -> None:
            self.__signature__ = None

        def __call__(self, **kwargs: Any) -> None:
            pass

    second.register("before-call.dynamodb", Handler().__call__)  # its function's answer
    second.register("before-call.dynamodb", Handler())
    assert len(asked) == first + 1
    second.register("before-call.dynamodb", Signed())  # may differ from its __call__: asked
    assert len(asked) == first + 2


def test_pydantic_plugins_are_discovered_again_where_the_function_could_differ(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pydantic.plugin import _loader

    from harness.lambda_runtime import forkserver_warm as server

    monkeypatch.setattr(_loader, "_plugins", None)
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    server.share_pydantic_plugins()
    assert _loader._plugins is not None
    server.forget_shared_plugins({}, [str(tmp_path)])
    assert _loader._plugins is not None  # same environment, no distribution shipped: kept
    server.forget_shared_plugins({"PYDANTIC_DISABLE_PLUGINS": "x"}, [str(tmp_path)])
    assert _loader._plugins is None
    server.share_pydantic_plugins()
    (tmp_path / "vendored-1.0.dist-info").mkdir()
    server.forget_shared_plugins({}, [str(tmp_path / "missing"), str(tmp_path)])
    assert _loader._plugins is None


def test_code_scan_finds_outside_imports_and_literal_services(tmp_path: Path) -> None:
    from harness.lambda_runtime import forkserver_warm

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(
        "import json, pkg.inner\nfrom jsonschema import validators\nfrom . import sibling\n"
        "import boto3\nc = boto3.client('dynamodb')\nr = boto3.resource(service_name='s3')\n"
        "x = boto3.client(name)\ny = thing.client(3)\n"
    )
    (tmp_path / "broken.py").write_text("def (:\n")
    modules, services, _ = forkserver_warm.scan(str(tmp_path), {"pkg", "broken"})
    assert modules == ["json", "jsonschema", "boto3"]
    assert services == ["dynamodb", "s3"]


def test_code_scan_reads_a_changed_file_again(tmp_path: Path) -> None:
    from harness.lambda_runtime import forkserver_warm

    app = tmp_path / "app.py"
    app.write_text("import json\n")
    assert forkserver_warm.scan(str(tmp_path), {"app"}) == (["json"], [], set())
    app.write_text("import csv, boto3\nboto3.client('sqs')\n")  # a code update in place
    scanned = forkserver_warm.scan(str(tmp_path), {"app"})
    assert scanned == (["csv", "boto3"], ["sqs"], {"client"})


def test_operations_the_code_calls_are_made_once_against_a_loopback_responder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's warm-up request: only operations the code names, answered in-process."""
    import threading

    from harness.lambda_runtime import forkserver_warm

    (tmp_path / "app.py").write_text(
        "import boto3\nc = boto3.client('dynamodb')\n"
        "def handler(event, context):\n    return c.query(TableName='t'), c.not_an_operation()\n"
    )
    modules, services, methods = forkserver_warm.scan(str(tmp_path), {"app"})
    assert {"query", "not_an_operation", "client"} <= methods
    threads = threading.active_count()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the server's: not for the loopback
    warmed: set[tuple[str, str]] = set()
    assert forkserver_warm.warm_calls(services, methods, warmed) == 1  # Query, answered
    assert ("dynamodb", "query") in warmed
    assert threading.active_count() == threads  # the responder is gone before the next fork
    assert forkserver_warm.warm_calls(services, methods, warmed) == 0  # made once
    assert os.environ["HTTP_PROXY"] == "http://127.0.0.1:9"  # given back


def test_a_child_takes_the_servers_spare_ssl_contexts_the_server_never_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Default contexts only, unused, in a child only, and not where SSLKEYLOGFILE is set."""
    import botocore.httpsession as httpsession

    from harness.lambda_runtime import forkserver_warm

    monkeypatch.setattr(httpsession, "create_urllib3_context", httpsession.create_urllib3_context)
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    forkserver_warm.share_ssl_contexts()
    create = httpsession.create_urllib3_context
    spares = [id(c) for c in forkserver_warm._SPARE_SSL]
    assert len(spares) == forkserver_warm.SPARE_SSL_CONTEXTS
    assert id(create()) not in spares  # in the server: built anew every time
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child: its copies of the spares, each handed out once, then built anew
        custom = create(ciphers="ECDHE+AESGCM")  # not the defaults: built
        seen = [create() for _ in range(forkserver_warm.SPARE_SSL_CONTEXTS + 1)]
        ok = [id(c) for c in seen[:-1]] == spares[::-1] and id(seen[-1]) not in spares
        os.environ["SSLKEYLOGFILE"] = os.devnull
        forkserver_warm._SPARE_SSL.append(seen[-1])  # one left: still not handed out now
        ok = ok and id(custom) not in spares and create() is not seen[-1]
        os.write(write, b"ok" if ok else b"bad")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"ok"


def test_the_server_keeps_what_it_read_of_the_last_code_directories_only(tmp_path: Path) -> None:
    from harness.lambda_runtime import forkserver_warm

    versions = [tmp_path / f"v{n}" for n in range(forkserver_warm.KEPT_CODE_DIRS + 1)]
    for version in versions:
        version.mkdir()
        (version / "app.py").write_text("import json\n")
        forkserver_warm.scan(str(version), {"app"})
    assert str(versions[0] / "app.py") not in forkserver_warm._COMPILED  # a code update's past
    assert str(versions[0] / "app.py") not in forkserver_warm._READ
    assert str(versions[1] / "app.py") in forkserver_warm._COMPILED
    assert str(versions[-1] / "app.py") in forkserver_warm._READ


def test_a_services_endpoint_rules_are_parsed_once_for_the_same_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same rule-set data object: one parsed RuleSet (botocore's class); other data: its own."""
    import botocore.endpoint_provider as provider

    from harness.lambda_runtime import forkserver_warm

    botocores = provider.RuleSet
    monkeypatch.setattr(provider, "RuleSet", botocores)
    forkserver_warm.share_endpoint_rulesets()
    data = {
        "version": "1.0",
        "parameters": {"Region": {"type": "String", "builtIn": "AWS::Region"}},
        "rules": [
            {
                "type": "endpoint",
                "conditions": [],
                "endpoint": {"url": "https://x.{Region}.example", "properties": {}, "headers": {}},
            }
        ],
    }
    partitions: dict[str, Any] = {"partitions": []}
    first = provider.EndpointProvider(data, partitions)
    second = provider.EndpointProvider(data, partitions)
    assert first.ruleset is second.ruleset
    assert isinstance(first.ruleset, botocores)
    other = provider.EndpointProvider(json.loads(json.dumps(data)), partitions)
    assert other.ruleset is not first.ruleset
    assert second.resolve_endpoint(Region="eu-west-1").url == "https://x.eu-west-1.example"
    assert first.resolve_endpoint(Region="us-east-2").url == "https://x.us-east-2.example"
