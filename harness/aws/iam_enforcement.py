"""IAM access control on the embedded endpoint, switchable, with a record of every decision.

With enforcement on, every signed AWS request (moto's services and the harness's own Lambda
Invoke) is decided before it is served, as IAM decides an identity-based request:

- the caller is the access key of the SigV4 ``Authorization`` header, looked up in moto's IAM and
  STS (moto's own ``create_access_key``: an IAM user's key, or an STS session whose
  ``X-Amz-Security-Token`` must match); its policies are moto's (inline, attached, groups');
- the action and resource ARN come from the request (``harness.aws.iam_requests``), so a
  statement scoped to one table, index, stream, queue, log group or function is enforced;
- the decision is ``harness.doctor.policy.evaluate``: an explicit Deny wins, then an Allow, else
  the implicit deny; every resource of a batch must be allowed.

The harness's own control traffic (provisioning, pollers, verify, the CLI) signs with the
administrator keys (``HARNESS_ADMIN_ACCESS_KEYS``, default ``test``, plus the endpoint's own
``AWS_ACCESS_KEY_ID``) and unsigned requests are not decided: both are counted, not recorded per
call. Any other key that the endpoint's IAM did not issue is refused (``UnrecognizedClientException``
/ ``InvalidClientTokenId``).

``/_harness/iam`` (GET: state; PUT ``{"enforce": bool}``: switch, answers the previous state)
and ``/_harness/iam/decisions`` (GET: the record; DELETE: clear it) are its control routes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from harness.aws.iam_requests import IamRequest, describe
from harness.aws.moto_app import HttpRequest, HttpResponse, error_for, json_error
from harness.doctor.policy import PolicyDocument, evaluate, parse_document

__all__ = ["CONTROL_PATH", "ENFORCE_IAM_VARIABLE", "IamEnforcer", "Identity"]

CONTROL_PATH = "/_harness/iam"
#: "1": the endpoint starts enforcing (``query-harness up --enforce-iam`` sets it for its child)
ENFORCE_IAM_VARIABLE = "HARNESS_ENFORCE_IAM"
DECISIONS_PATH = CONTROL_PATH + "/decisions"
MAX_KEYS = 5000  # distinct (principal, action, resource, decision) kept with their counts
MAX_RECENT_DENIALS = 200
MAX_IDENTITIES = 1000  # cached access keys (sessions, users, refused keys)
CACHE_TTL_S = 30.0  # policies are also dropped on every IAM request and every reset


@dataclass(frozen=True)
class Identity:
    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session> or arn:aws:iam::...:user/<name>
    role: str  # the role's name (assumed role) or "user/<name>"
    policies: tuple[PolicyDocument, ...]


class IamEnforcer:
    """Decides requests while ``enforce`` is on; records each decision."""

    def __init__(self, *, enforce: bool = False) -> None:
        self.enforce = enforce
        keys = os.environ.get("HARNESS_ADMIN_ACCESS_KEYS", "test").split(",")
        keys.append(os.environ.get("AWS_ACCESS_KEY_ID", "test"))
        self.admin_keys = frozenset(k.strip() for k in keys if k.strip())
        self._lock = threading.Lock()
        self._identities: dict[tuple[str, str, str], tuple[float, Identity | None]] = {}
        self._counts: dict[tuple[str, str, str, str, bool], list[Any]] = {}
        self._denials: deque[dict[str, Any]] = deque(maxlen=MAX_RECENT_DENIALS)
        self.admin_requests = 0
        self.unsigned_requests = 0
        self.dropped = 0  # decisions not kept once MAX_KEYS distinct ones are held
        self.decide_seconds = 0.0
        self.decided = 0

    # ------------------------------------------------------------------ deciding

    def check(
        self,
        request: HttpRequest,
        scope: tuple[str, str, str] | None,
        region: str,
        account: str,
    ) -> HttpResponse | None:
        """None when ``request`` may be served, else AWS's refusal."""
        if not self.enforce:
            return None
        if scope is None:
            self.unsigned_requests += 1
            return None
        key, _, service = scope
        if service == "iam":
            self.forget()  # a policy may change: decide the next requests afresh
        if key in self.admin_keys:
            self.admin_requests += 1
            return None
        started = time.perf_counter()
        described = describe(request, service, region, account)
        identity = self._identity(key, account, region, request)
        if identity is None:
            return _unrecognized(request, described)
        refused: HttpResponse | None = None
        action = described.action or f"{service}:<unknown {request.method} {request.path}>"
        # sts:GetCallerIdentity: AWS allows it whatever the policies say
        resources = () if action == "sts:GetCallerIdentity" else described.resources
        for resource in resources:
            decision = evaluate(list(identity.policies), action, resource)
            self._record(identity, action, resource, decision.allowed, decision.statement)
            if not decision.allowed and refused is None:
                refused = _denied(request, described, identity, action, resource,
                                  explicit=decision.statement is not None)
        with self._lock:
            self.decided += 1
            self.decide_seconds += time.perf_counter() - started
        return refused

    def forget(self) -> None:
        """Drop the cached identities and their policies (after an IAM change or a reset)."""
        with self._lock:
            self._identities.clear()

    def _identity(
        self, key: str, account: str, region: str, request: HttpRequest
    ) -> Identity | None:
        token = request.header("x-amz-security-token") or ""
        cache_key = (key, token, account)
        now = time.monotonic()
        with self._lock:
            cached = self._identities.get(cache_key)
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            return cached[1]
        identity = _lookup(key, token, account, region)
        with self._lock:
            if len(self._identities) >= MAX_IDENTITIES:  # e.g. a flood of made-up keys
                self._identities.clear()
            self._identities[cache_key] = (now, identity)
        return identity

    def _record(
        self, identity: Identity, action: str, resource: str, allowed: bool, sid: str | None
    ) -> None:
        entry = (identity.role, identity.arn, action, resource, allowed)
        now = time.time()
        with self._lock:
            held = self._counts.get(entry)
            if held is not None:
                held[0] += 1
                held[2] = now
            elif len(self._counts) < MAX_KEYS:
                self._counts[entry] = [1, now, now, sid]
            else:
                self.dropped += 1
            if not allowed:
                self._denials.append({"time": now, "role": identity.role, "principal": identity.arn,
                                      "action": action, "resource": resource})

    # ------------------------------------------------------------------ reading

    def decisions(self) -> dict[str, Any]:
        """The record: one row per (role, principal, action, resource, decision) with counts."""
        with self._lock:
            rows = [
                {"role": role, "principal": arn, "action": action, "resource": resource,
                 "allowed": allowed, "count": held[0], "first": held[1], "last": held[2],
                 "statement": held[3]}
                for (role, arn, action, resource, allowed), held in self._counts.items()
            ]
            denials = list(self._denials)
        return {
            "enforce": self.enforce,
            "decisions": rows,
            "recent_denials": denials,
            "dropped": self.dropped,
            "admin_requests": self.admin_requests,
            "unsigned_requests": self.unsigned_requests,
            "decided_requests": self.decided,
            "mean_decision_ms": round(1000 * self.decide_seconds / self.decided, 4)
            if self.decided else None,
        }

    def clear(self) -> None:
        """Forget the record (not the switch)."""
        with self._lock:
            self._counts.clear()
            self._denials.clear()
            self.dropped = self.admin_requests = self.unsigned_requests = self.decided = 0
            self.decide_seconds = 0.0

    def control(self, method: str, path: str, body: bytes) -> HttpResponse:
        """The ``/_harness/iam`` routes."""
        path = path.rstrip("/")
        if path == DECISIONS_PATH and method == "GET":
            return _json(200, self.decisions())
        if path == DECISIONS_PATH and method == "DELETE":
            self.clear()
            return HttpResponse(204, [], b"")
        if path == CONTROL_PATH and method == "GET":
            return _json(200, {"enforce": self.enforce, "admin_keys": len(self.admin_keys)})
        if path == CONTROL_PATH and method in ("PUT", "POST"):
            try:
                wanted = json.loads(body or b"{}")["enforce"]
            except (ValueError, KeyError, TypeError):
                wanted = None
            if not isinstance(wanted, bool):
                return json_error(400, "ValidationException", 'expected {"enforce": true|false}')
            previous, self.enforce = self.enforce, wanted
            self.forget()
            return _json(200, {"enforce": wanted, "previous": previous})
        return json_error(404, "ResourceNotFoundException", f"no IAM control route {method} {path}")


def _lookup(key: str, token: str, account: str, region: str) -> Identity | None:
    """The IAM user or assumed role of an access key, with its policies; None if unknown."""
    from moto.iam.access_control import (  # noqa: PLC0415 - moto loads lazily
        AssumedRoleAccessKey,
        CreateAccessKeyFailure,
        IAMUserAccessKey,
    )
    from moto.iam.models import Policy  # noqa: PLC0415
    from moto.utilities.utils import get_partition  # noqa: PLC0415

    headers = {"X-Amz-Security-Token": token} if token else {}
    partition = get_partition(region)
    holder: AssumedRoleAccessKey | IAMUserAccessKey
    try:
        if token:
            holder = AssumedRoleAccessKey(account, partition, key, headers)
        else:
            holder = IAMUserAccessKey(account, partition, key, headers)
        raw = holder.collect_policies()
    except CreateAccessKeyFailure:
        return None
    documents: list[PolicyDocument] = []
    for policy in raw:
        if isinstance(policy, Policy):
            version = next(v for v in policy.versions if v.is_default)
            documents.append(parse_document(version.document))
        elif isinstance(policy, str):
            documents.append(parse_document(policy))
        else:
            documents.append(parse_document(policy["policy_document"]))
    arn = holder.arn
    role = arn.split(":assumed-role/", 1)[1].split("/", 1)[0] if ":assumed-role/" in arn else (
        "user/" + arn.rsplit("/", 1)[-1]
    )
    return Identity(arn, role, tuple(documents))


def _denied(
    request: HttpRequest,
    described: IamRequest,
    identity: Identity,
    action: str,
    resource: str,
    *,
    explicit: bool,
) -> HttpResponse:
    """AWS's AccessDenied, in the service's protocol and words."""
    reason = (
        "with an explicit deny in an identity-based policy" if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    message = (
        f"User: {identity.arn} is not authorized to perform: {action} on resource: {resource} "
        f"{reason}"
    )
    service = action.split(":", 1)[0]
    if service == "lambda":
        return json_error(403, "AccessDeniedException", message)
    if described.json_protocol:
        status = 400 if service in ("dynamodb", "logs") else 403
        code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
        response = json_error(status, code, message, json_protocol=True)
        response.body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        return response
    return error_for(request, 403, "AccessDenied", message)


def _unrecognized(request: HttpRequest, described: IamRequest) -> HttpResponse:
    if described.json_protocol:
        return json_error(400, "UnrecognizedClientException",
                          "The security token included in the request is invalid.",
                          json_protocol=True)
    return error_for(request, 403, "InvalidClientTokenId",
                     "The security token included in the request is invalid.")


def _json(status: int, document: dict[str, Any]) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(document).encode())
