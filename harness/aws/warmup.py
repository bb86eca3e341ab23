"""Start-up cost of moto, paid once and early instead of on the first requests.

moto loads its backends lazily. Four first uses dominate the time to a provisioned stack:
- every backend lists its regions through a fresh boto3 session, which loads botocore's endpoint
  data and the service's whole model (EC2's alone is ~0.3 s) just to read its endpoint prefix.
  :func:`memoize_region_listing` answers from one session per process and from a small file
  cache per botocore version (the lists are botocore data, fixed for a given version);
- every signed request looks its access key up in the IAM backend of *each* of the six
  partitions, building each one (and parsing ~1,500 managed policies six times, ~0.5 s):
  :func:`look_up_keys_in_built_partitions` looks only in the partitions built so far, which are
  the only ones that can hold a key;
- ECS imports all of EC2 (~100 modules and a 4 MB instance-type table, ~0.4 CPU-s) for the
  few calls that look up subnets, security groups or instances. :func:`defer_ec2_for_ecs`
  imports ECS with a stand-in that imports EC2 on its first use instead;
- werkzeug compiles two URL *builder* functions (for ``url_for``) per route as a route is added;
  moto's apps and routers add ~200 routes for API Gateway alone and never build a URL.
  :func:`defer_url_builders` compiles a builder on its first use instead (~40 % of a first
  API Gateway request);
- moto reads a service's model (each request parser, each paginator) through a *new* botocore
  loader per model, which scans botocore's ~450 data directories again and re-reads the JSON
  (~0.7 CPU-s for the ten services the stack uses, ~0.15 s with one loader).
  :func:`share_moto_loader` gives moto one loader per process, as one boto3 session has;
- moto's API Gateway module imports openapi_spec_validator (and pydantic, ~0.3 CPU-s) for
  ``failOnWarnings`` imports only: :func:`defer_openapi_validator` imports it on first use;
- the IAM backend is built (its managed policies load on first use, harness.aws.iam_policies);
  the API Gateway and ECS modules import.
  :func:`prewarm` does these in a background thread while the caller does other work.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import os
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3.session
import botocore

logger = logging.getLogger("harness.aws.warmup")

#: Backends the stack provisions, in the order provisioning first needs them.
#: ECS and API Gateway are left to their first request: the stack makes those while the seed
#: travels the stream, and warming them earlier would slow the data plane the seed waits for.
BACKENDS = ("logs", "sqs", "iam", "dynamodb", "dynamodbstreams", "awslambda", "sts")

_lock = threading.Lock()
_memoized = False


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/query-harness`` (``~/.cache/...``)."""
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "query-harness"


class RegionListing:
    """botocore's region lists, computed once per botocore version and kept in a JSON file."""

    def __init__(self, original: Any, cache_file: Path | None) -> None:
        self._original = original
        self._session: boto3.session.Session | None = None
        self._lock = threading.Lock()
        self.cache_file = cache_file
        self.regions: dict[str, list[str]] = self._read()

    def _read(self) -> dict[str, list[str]]:
        if self.cache_file is None:
            return {}
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # absent or damaged: recomputed and rewritten
        return data if isinstance(data, dict) else {}

    def _write(self) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}")
            partial.write_text(json.dumps(self.regions, sort_keys=True), encoding="utf-8")
            partial.replace(self.cache_file)  # atomic: readers see the old or the new file
        except OSError as exc:  # a read-only home costs speed, never correctness
            logger.warning("cannot write the region cache %s: %s", self.cache_file, exc)

    def get(self, service_name: str, partition_name: str, allow_non_regional: bool) -> list[str]:
        key = f"{service_name}|{partition_name}|{int(allow_non_regional)}"
        return self._lookup(
            key,
            lambda session: self._original(
                session, service_name, partition_name, allow_non_regional
            ),
        )

    def partitions(self, original: Any) -> list[str]:
        """``get_available_partitions``, from the same cache (key ``"partitions"``)."""
        return self._lookup("partitions", original)

    def _lookup(self, key: str, compute: Any) -> list[str]:
        regions = self.regions.get(key)
        if regions is None:
            with self._lock:
                if self._session is None:  # one botocore loader: its data is read once
                    self._session = boto3.session.Session()
                regions = list(compute(self._session))
                self.regions[key] = regions
                self._write()
        return list(regions)


def memoize_region_listing(cache_dir: Path | None = None, persist: bool = True) -> None:
    """Make boto3's ``get_available_regions`` / ``get_available_partitions`` cached lookups.

    With ``persist``, the lists are also kept in ``cache_dir`` (default: :func:`default_cache_dir`)
    in a file named after the botocore version, so the next process reads them from there.
    """
    global _memoized
    with _lock:
        if _memoized:
            return
        original = boto3.session.Session.get_available_regions
        cache_file = (
            (cache_dir or default_cache_dir()) / f"regions-botocore-{botocore.__version__}.json"
            if persist
            else None
        )
        listing = RegionListing(original, cache_file)

        def get_available_regions(
            self: Any,
            service_name: str,
            partition_name: str = "aws",
            allow_non_regional: bool = False,
        ) -> list[str]:
            return listing.get(service_name, partition_name, allow_non_regional)

        original_partitions = boto3.session.Session.get_available_partitions

        def get_available_partitions(self: Any) -> list[str]:
            return listing.partitions(original_partitions)

        get_available_regions.__wrapped_by_harness__ = original  # type: ignore[attr-defined, unused-ignore]
        get_available_regions.listing = listing  # type: ignore[attr-defined, unused-ignore]
        get_available_partitions.__wrapped_by_harness__ = original_partitions  # type: ignore[attr-defined, unused-ignore]
        boto3.session.Session.get_available_regions = get_available_regions
        boto3.session.Session.get_available_partitions = get_available_partitions
        _memoized = True


def share_moto_loader() -> None:
    """Make ``moto.core.utils`` load every service and paginator model through one loader.

    botocore's ``Loader`` caches the directory listing and each model it loaded (``instance_cache``),
    and a boto3 session keeps one for all its clients; moto's ``create_loader()`` makes a new one
    per model. The models are botocore's data files plus moto's extras, fixed for the process, so
    one loader answers the same.
    """
    from moto.core import utils  # noqa: PLC0415

    original: Any = getattr(utils, "create_loader")  # noqa: B009 - not in moto's __all__
    if hasattr(original, "__wrapped_by_harness__"):
        return
    shared = original()

    def create_loader() -> Any:
        return shared

    create_loader.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    setattr(utils, "create_loader", create_loader)  # noqa: B010 - not in moto's __all__


def look_up_keys_in_built_partitions() -> None:
    """Find a request's account among the IAM backends built so far, without building the rest.

    moto's ``get_account_id_from`` indexes every partition of every account, and indexing builds
    the backend. A backend not built yet has no access keys, so skipping it changes no answer.
    """
    from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
    from moto.iam import models  # noqa: PLC0415

    original = models.get_account_id_from
    if hasattr(original, "__wrapped_by_harness__"):
        return

    def get_account_id_from(access_key: str) -> str:
        # list() as moto does: other threads may add accounts or partitions meanwhile
        for account_id, account in list(models.iam_backends.items()):
            for backend in list(account.values()):
                if access_key in backend.access_keys:
                    return str(account_id)
        return str(DEFAULT_ACCOUNT_ID)

    get_account_id_from.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    models.get_account_id_from = get_account_id_from


def defer_url_builders() -> None:
    """Make werkzeug compile a route's URL builder when it first builds a URL, not at add time."""
    from werkzeug.routing.rules import Rule  # noqa: PLC0415

    original = Rule._compile_builder
    if hasattr(original, "__wrapped_by_harness__"):
        return
    if "self._compile_builder(False).__get__(self, None)" not in inspect.getsource(Rule.compile):
        raise RuntimeError("werkzeug's Rule.compile changed: re-check defer_url_builders")

    def _compile_builder(self: Any, append_unknown: bool = True) -> Callable[..., Any]:
        compiled: Callable[..., Any] | None = None

        def build(rule: Any, **values: Any) -> Any:
            nonlocal compiled
            if compiled is None:
                compiled = original(rule, append_unknown)
            return compiled(rule, **values)

        return build

    _compile_builder.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    Rule._compile_builder = _compile_builder  # type: ignore[method-assign]


class DeferredEc2Backends:
    """moto.ecs's ``ec2_backends``: the real one, imported on first use."""

    @staticmethod
    def backends() -> Any:
        from moto.ec2.models import ec2_backends  # noqa: PLC0415

        return ec2_backends

    def __getitem__(self, account_id: str) -> Any:
        return self.backends()[account_id]

    def __contains__(self, account_id: object) -> bool:
        return account_id in self.backends()

    def __iter__(self) -> Any:
        return iter(self.backends())

    def __len__(self) -> int:
        return len(self.backends())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backends(), name)


def defer_ec2_for_ecs() -> bool:
    """Import moto's ECS models without EC2; True if done (False: ECS or EC2 was imported)."""
    if "moto.ecs.models" in sys.modules or "moto.ec2" in sys.modules:
        return False
    import moto  # noqa: PLC0415

    spec = importlib.util.find_spec("moto.ec2")
    assert spec is not None and spec.submodule_search_locations is not None
    stand_in = types.ModuleType("moto.ec2", "imports EC2 on first use (harness.aws.warmup)")
    stand_in.__path__ = list(spec.submodule_search_locations)  # its submodules import as usual
    stand_in.ec2_backends = DeferredEc2Backends()  # type: ignore[attr-defined]
    sys.modules["moto.ec2"] = stand_in
    try:
        importlib.import_module("moto.ecs.models")
    finally:
        if sys.modules.get("moto.ec2") is stand_in:
            del sys.modules["moto.ec2"]  # the next `import moto.ec2` runs the real package
        if getattr(moto, "ec2", None) is stand_in:
            delattr(moto, "ec2")
    return True


def defer_openapi_validator() -> bool:
    """Import moto's API Gateway models without openapi_spec_validator; True if done.

    moto validates an imported OpenAPI document only with ``failOnWarnings=true``, yet its
    module imports the validator (and with it pydantic and pydantic-settings, ~0.3 CPU-s) at
    once. Here ``validate`` imports it on its first call, and ``OpenAPIValidationError`` is
    made the real class before that call runs (the ``except`` clause reads it then).
    """
    names = ("openapi_spec_validator", "openapi_spec_validator.validation",
             "openapi_spec_validator.validation.exceptions")
    if "moto.apigateway.models" in sys.modules or any(n in sys.modules for n in names):
        return False

    class PendingValidationError(Exception):
        """Stands for openapi_spec_validator's error until the validator is imported."""

    stand_ins = {name: types.ModuleType(name, "imported on first use (harness.aws.warmup)")
                 for name in names}
    for module in stand_ins.values():
        module.validate = module.validate_spec = None  # type: ignore[attr-defined]
        module.OpenAPIValidationError = PendingValidationError  # type: ignore[attr-defined]
    sys.modules.update(stand_ins)
    try:
        models = importlib.import_module("moto.apigateway.models")
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]  # the next import runs the real package

    def validate(spec: Any, *args: Any, **kwargs: Any) -> Any:
        from openapi_spec_validator import validate as real  # noqa: PLC0415
        from openapi_spec_validator.validation.exceptions import (  # noqa: PLC0415
            OpenAPIValidationError,
        )

        setattr(models, "OpenAPIValidationError", OpenAPIValidationError)  # noqa: B010
        setattr(models, "validate", real)  # noqa: B010
        return real(spec, *args, **kwargs)

    setattr(models, "validate", validate)  # noqa: B010
    return True


def _warm(account_id: str, warm_app: Callable[[str], None] | None) -> None:
    from moto.backends import get_backend

    for name in BACKENDS:
        try:
            backends = get_backend(name)  # type: ignore[call-overload]
            if name == "iam":  # builds the backend (its managed policies load on first use:
                backends[account_id]["global"]  # harness.aws.iam_policies)
            if warm_app is not None:
                warm_app(name)
        except Exception:  # a warm-up failure must not stop the endpoint; the request will say
            logger.exception("warming moto's %s backend failed", name)
    logger.debug("moto backends warmed: %s", ", ".join(BACKENDS))


def prewarm(
    account_id: str = "123456789012", warm_app: Callable[[str], None] | None = None
) -> threading.Thread:
    """Import and build moto's backends in a daemon thread; returns the thread.

    ``warm_app(backend)`` is called after each, e.g. to build the server's app for it.
    """
    memoize_region_listing()
    thread = threading.Thread(
        target=_warm, args=(account_id, warm_app), name="moto-warmup", daemon=True
    )
    thread.start()
    return thread


__all__ = [
    "BACKENDS",
    "RegionListing",
    "default_cache_dir",
    "defer_ec2_for_ecs",
    "defer_openapi_validator",
    "defer_url_builders",
    "look_up_keys_in_built_partitions",
    "memoize_region_listing",
    "prewarm",
    "share_moto_loader",
]
