"""moto's and Flask's bookkeeping, cut to what the endpoint uses (items 5, 8 and 9 of
harness.aws.patches, which applies them).

- moto's BaseModel keeps every object ever made in a class-level list for its dashboard: not for
  DynamoDB, DynamoDB Streams, CloudWatch and CloudWatch Logs (``UNTRACKED_SERVICES``).
- Flask, in the debug mode moto runs it in, made a class per request (its enctype helper), which
  fragmented the heap; the helper is left out.
- moto listed its package directories from disk and inspected the response class's members on
  every request; both are looked up once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from harness.aws.patches import MotoPatchError, wrap_method

__all__ = [
    "UNTRACKED_SERVICES",
    "look_up_constants_once",
    "no_class_per_request",
    "untrack_instances",
]

UNTRACKED_SERVICES = frozenset({"dynamodb", "dynamodbstreams", "cloudwatch", "logs"})


def untrack_instances() -> None:
    """moto's BaseModel keeps every instance in a class-level list for its dashboard: not for
    the services in UNTRACKED_SERVICES, whose objects (iterators, Item copies, data points) come
    and go by the thousand."""
    from moto.core.common_models import BaseModel  # noqa: PLC0415
    from moto.core.model_instances import model_data  # noqa: PLC0415

    def make_new(original: Callable[..., Any]) -> Callable[..., Any]:
        untracked: dict[type, bool] = {}  # per class: its module's service, looked up once

        def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
            skip = untracked.get(cls)
            if skip is None:
                skip = untracked[cls] = cls.__module__.split(".")[1] in UNTRACKED_SERVICES
            if skip:
                return object.__new__(cls)
            return original(cls, *args, **kwargs)

        return __new__

    wrap_method(BaseModel, "__new__", make_new)
    for service in UNTRACKED_SERVICES:
        for model in model_data.get(service, {}).values():
            model.instances_tracked = []  # type: ignore[attr-defined]


# ---- 8: no class made per request ----------------------------------------------------------


def no_class_per_request() -> None:
    """Flask (in the debug mode moto runs it in) made a class per request: not here."""
    import flask.debughelpers  # noqa: PLC0415
    import flask.wrappers  # noqa: PLC0415

    # Flask's Request._load_form_data imports the helper from flask.debughelpers when it runs.
    if "from .debughelpers import attach_enctype_error_multidict" not in inspect.getsource(
        flask.wrappers.Request._load_form_data
    ):
        raise MotoPatchError("Flask no longer looks its enctype helper up as the patch expects")

    def make_attach(original: Callable[[Any], None]) -> Callable[[Any], None]:
        def attach_enctype_error_multidict(request: Any) -> None:
            """Leave request.files a plain MultiDict (a missing file is still a KeyError)."""

        return attach_enctype_error_multidict

    wrap_method(flask.debughelpers, "attach_enctype_error_multidict", make_attach)


# ---- 9: per-request lookups of things that never change, made once --------------------------


def look_up_constants_once() -> None:
    """moto's package directories and a response class's method names, looked up once."""
    import moto.backends  # noqa: PLC0415
    import moto.core.responses  # noqa: PLC0415

    def make_modules(original: Callable[[], Any]) -> Callable[[], Any]:
        modules = tuple(original())  # moto's package directories: listed from disk per request

        def list_of_moto_modules() -> Any:
            return modules

        return list_of_moto_modules

    def make_method_names(original: Callable[[object], list[str]]) -> Callable[[object], Any]:
        known: dict[object, list[str]] = {}  # inspect.getmembers of the class, per request

        def method_names_from_class(clazz: object) -> list[str]:
            names = known.get(clazz)
            if names is None:
                names = known[clazz] = original(clazz)
            return names

        return method_names_from_class

    wrap_method(moto.backends, "list_of_moto_modules", make_modules)
    wrap_method(moto.core.responses, "method_names_from_class", make_method_names)
