"""Every fix the harness applies to moto's internals, pinned to one moto version: the pin and
its check (``verify_internals``), the order the patches are applied in (``apply``), and items 2 + 3
(the lock and JSON errors). The other items live in sibling modules, named below.

Each patch answers a defect measured in ../shared/reference/moto.md:
  1. Query / GSI Query cost (query_patches): a per-table map from index hash-key values to
     items, so a Query looks at its own partition instead of sorting the whole table, and of it
     only the Limit + 1 items moto can reach when nothing skips items
     (partition_index.query_window); item-bearing answers (Query, Scan, GetItem, BatchGetItem)
     written with one JSON dump instead of moto's model-walking serializer (which costs ~1 ms
     per returned item), by the default encoder (answer_patches), and JSON answers are not
     scanned for an XML RequestId; an item's byte size (for the 1 MB page limit) computed
     directly, once per item until UpdateItem changes it, instead of twice per Query through
     DynamoType; the JSON text of a stored item answered by a Query kept on it the same way
     (item_json); two string (or binary) values compared as strings, without moto's cast_value
     (query_patches.compare_strings_directly: a GSI Query compares each item of its window), and
     an index projecting ALL hands items back without building its key list per item.
     Condition / filter expressions tokenized once per text, and parsed once per request
     (condition_patches).
  2. Lost concurrent updates: one lock around every DynamoDB and DynamoDB Streams action.
  3. HTML 500s: crashes in DynamoDB / Streams actions become AWS-shaped JSON errors
     (the generic fallback for every other service is in harness.aws.moto_app).
  4. Stream records (stream_patches): the table's region, an eventSourceARN, one INSERT for
     UpdateItem on a new key, and nothing for a write that changes nothing.
     GetRecords answers written with one JSON dump as well.
  5. GetRecords iterators (stream_patches): kept at most 15 minutes and at most 1,000 per
     backend; unknown iterators / shards answer ExpiredIteratorException / ValidationException /
     ResourceNotFoundException instead of crashing.
     moto's BaseModel also keeps every DynamoDB object ever made (each iterator, each Item copy
     a Query returns) in a class-level list for its dashboard: not for DynamoDB / Streams here
     (overhead_patches).
  6. MOTO_IAM_LOAD_MANAGED_POLICIES=true, so AWS managed policies exist.
  7. Start-up cost (in harness.aws.warmup): account lookups build no unused IAM partitions;
     ECS imports EC2 on first use only; werkzeug compiles URL builders on first use only.
  8. Memory (overhead_patches): Flask (in the debug mode moto runs it in) made a class per
     request, which fragmented the heap; its enctype helper is left out.
  9. Per-request work on constants (overhead_patches): moto listed its package directories from
     disk and inspected the response class's members on every request; both are looked up once.
  10. Reset cost (in harness.aws.reset): AWS managed policies parsed once and copied per IAM
     backend, on the backend's first use of them (harness.aws.iam_policies); backends dropped
     by a reset are not rebuilt first; a request's access key is looked up only in IAM
     backends already built (none after a reset), so nothing is built for it.
`verify_internals()` fails loudly when a moto upgrade changed what these patches rely on.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from harness.aws.responses import error_response, validation_message, with_event_source_arn

MOTO_VERSION = "5.2.5"
EXPRESSION_PARAMS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
)

# The moto internals the patches rely on: "module:qualname" -> its parameter names.
# fmt: off
INTERNALS: dict[str, str] = {
    "moto.dynamodb.models.table:Table.query":
        "self hash_key range_comparison range_objs limit exclusive_start_key "
        "scan_index_forward projection_expressions index_name consistent_read "
        "filter_expression hash_key_conditions range_key_conditions filter_kwargs",
    "moto.dynamodb.models.table:Table.all_items": "self",
    "moto.dynamodb.models.table:Table.sorted_items": "self hash_key_attrs range_key_attrs items",
    "moto.dynamodb.models.table:Table._generate_attr_to_sort_by":
        "self hash_key_attrs range_key_attrs",
    "moto.dynamodb.models.dynamo_type:Item.size": "self",
    "moto.dynamodb.models.dynamo_type:DynamoType.__eq__": "self other",
    "moto.dynamodb.models.dynamo_type:DynamoType.__ne__": "self other",
    "moto.dynamodb.models.table:SecondaryIndex.project": "self item",
    "moto.dynamodb.comparisons:ConditionExpressionParser._lex_condition_expression": "self",
    "moto.dynamodb.comparisons:ConditionExpressionParser.parse": "self",
    "moto.dynamodb.models.table:Table.put_item":
        "self item_attrs expected condition_expression expression_attribute_names "
        "expression_attribute_values overwrite return_values_on_condition_check_failure",
    "moto.dynamodb.models.table:Table.delete_item": "self hash_key range_key",
    "moto.dynamodb.models.table:StreamShard.add": "self old new",
    "moto.dynamodb.models.table:StreamRecord.__init__":
        "self table stream_type event_name old new seq",
    "moto.dynamodb.models:DynamoDBBackend.update_item":
        "self table_name key update_expression expression_attribute_names "
        "expression_attribute_values attribute_updates expected condition_expression "
        "return_values_on_condition_check_failure",
    "moto.dynamodb.responses:DynamoHandler.call_action": "self",
    "moto.dynamodb.responses:DynamoHandler.serialized": "self action_result",
    "moto.dynamodb.models.utilities:dynamo_json_dump": "dynamo_object",
    "moto.dynamodb.models.utilities:dynamo_to_dict": "obj",
    "moto.dynamodb.responses:DynamoResult.__init__": "self result",
    "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.call_action": "self",
    "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.serialized": "self action_result",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.__init__": "self region_name account_id",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.get_shard_iterator":
        "self arn shard_id shard_iterator_type sequence_number",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.get_records": "self iterator_arn limit",
    "moto.dynamodbstreams.models:ShardIterator.get": "self limit",
    # harness.aws.retention: CloudWatch's retention
    "moto.cloudwatch.models:CloudWatchBackend.put_metric_data": "self namespace metric_data",
    "moto.logs.models:LogGroup.put_log_events": "self log_stream_name log_events",
    "moto.core.common_models:BaseModel.__new__": "cls args kwargs",
    "moto.iam.models:get_account_id_from": "access_key",  # harness.aws.warmup
    "moto.core.utils:create_loader": "",  # harness.aws.warmup: one loader for moto's models
    "werkzeug.routing.rules:Rule._compile_builder": "self append_unknown",  # harness.aws.warmup
    "flask.debughelpers:attach_enctype_error_multidict": "request",  # Flask, as moto runs it
    "moto.backends:list_of_moto_modules": "",
    "moto.core.responses:method_names_from_class": "clazz",
    "moto.core.responses:BaseResponse._enrich_response": "headers body",  # answer_patches
    # condition_patches: the handler's parse, then the model's
    "moto.dynamodb.responses:create_condition_expression_parser": "expr names values",
    "moto.dynamodb.models:get_filter_expression": "expr names values",
    "moto.dynamodb.models.table:get_filter_expression": "expr names values",
    # harness.aws.reset: a cheap reset
    "moto.iam.models:IAMBackend._init_aws_policies": "self",
    "moto.iam.models:IAMBackend._init_managed_policies": "self",  # harness.aws.iam_policies
    "moto.iam.models:mark_account_as_visited": "account_id access_key service region",
    "moto.core.base_backend:BackendDict.reset": "",
    "moto.core.base_backend:BaseBackend.reset": "self",
}
# fmt: on

logger = logging.getLogger("harness.aws.patches")
DYNAMODB_LOCK = threading.RLock()
_applied = False
_apply_lock = threading.Lock()


class MotoPatchError(RuntimeError):
    """moto is not the version (or shape) these patches were written for."""


def _resolve(dotted: str) -> Any:
    import importlib  # noqa: PLC0415

    module_name, _, qualname = dotted.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def verify_internals() -> None:
    """Raise MotoPatchError unless moto is MOTO_VERSION with the internals listed in INTERNALS."""
    import moto  # noqa: PLC0415

    if moto.__version__ != MOTO_VERSION:
        raise MotoPatchError(
            f"harness.aws.patches is written for moto {MOTO_VERSION} but moto "
            f"{moto.__version__} is installed: pin moto=={MOTO_VERSION} or re-check every patch "
            "(tests/harness/aws/test_moto_*.py) before moving the pin"
        )
    problems = []
    for dotted, expected in INTERNALS.items():
        try:
            function = _resolve(dotted)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{dotted}: missing ({exc})")
            continue
        function = getattr(function, "__wrapped_by_harness__", function)
        names = " ".join(inspect.signature(function).parameters)
        if names != expected:
            problems.append(f"{dotted}: parameters {names}, expected {expected}")
    if problems:
        raise MotoPatchError("moto internals changed: " + "; ".join(problems))


def apply() -> str:
    """Apply every patch once (idempotent); return the moto version."""
    global _applied
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with _apply_lock:
        if not _applied:
            verify_internals()
            from harness.aws import (  # noqa: PLC0415
                condition_patches,
                overhead_patches,
                query_patches,
                retention,
                stream_patches,
            )
            from harness.aws.answer_patches import skip_request_id_scan_without_xml  # noqa: PLC0415

            _patch_locking_and_errors()
            query_patches.speed_up_query()
            query_patches.compare_strings_directly()
            query_patches.project_all_directly()
            condition_patches.tokenize_once()
            condition_patches.parse_shapes_once()
            stream_patches.write_records_as_aws()
            stream_patches.serialize_get_records_once()
            stream_patches.bound_shard_iterators()
            retention.apply()
            overhead_patches.untrack_instances()
            overhead_patches.no_class_per_request()
            overhead_patches.look_up_constants_once()
            skip_request_id_scan_without_xml()
            condition_patches.parse_conditions_once()
            from harness.aws import warmup as moto_warmup  # noqa: PLC0415

            moto_warmup.look_up_keys_in_built_partitions()
            moto_warmup.defer_ec2_for_ecs()
            moto_warmup.defer_openapi_validator()
            moto_warmup.defer_url_builders()
            moto_warmup.share_moto_loader()  # one botocore loader for moto's models (~0.5 CPU-s)
            from harness.aws import reset  # noqa: PLC0415

            reset.keep_managed_policies_across_resets()
            from harness.aws.iam_policies import (  # noqa: PLC0415
                load_managed_policies_on_first_use,
            )

            load_managed_policies_on_first_use()  # after the line above: it wraps that copy
            reset.drop_backends_without_rebuilding()
            reset.visit_only_built_iam_backends()
            _applied = True
    return MOTO_VERSION


def wrap_method(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)``, remembering the original."""
    original = getattr(owner, name)
    replacement = make(original)
    replacement.__wrapped_by_harness__ = original
    replacement.__name__ = getattr(original, "__name__", name)
    setattr(owner, name, replacement)


# ---- 2 + 3: one lock, and JSON errors instead of crashes ------------------------------------


def _locked_call_action(original: Callable[[Any], Any], streams: bool) -> Callable[[Any], Any]:
    from werkzeug.exceptions import HTTPException  # noqa: PLC0415

    def call_action(self: Any) -> Any:
        try:
            with DYNAMODB_LOCK:
                response = original(self)
            if streams and self.headers.get("X-Amz-Target", "").endswith(".GetRecords"):
                return with_event_source_arn(response)
            return response
        except HTTPException:
            raise
        except Exception as exc:
            target = self.headers.get("X-Amz-Target", "?")
            logger.warning("moto crashed on %s: %s: %s", target, type(exc).__name__, exc)
            params = getattr(self, "params", None) or {}
            if streams or any(name in params for name in EXPRESSION_PARAMS):
                return error_response(400, "ValidationException", validation_message(exc))
            return error_response(
                500,
                "InternalServerError",
                f"Internal error in the local endpoint: {type(exc).__name__}",
            )

    return call_action


def _patch_locking_and_errors() -> None:
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler  # noqa: PLC0415

    wrap_method(DynamoHandler, "call_action", lambda f: _locked_call_action(f, streams=False))
    wrap_method(DynamoDBStreamsHandler, "call_action", lambda f: _locked_call_action(f, streams=True))
