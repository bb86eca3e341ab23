"""The V2 failure paths are gone at the gateway (403, as API Gateway answers) and at each replica (404)."""

from __future__ import annotations

import httpx
import pytest

OLD_PATHS = ["/query/failure", "/failed"]


@pytest.mark.parametrize("path", OLD_PATHS)
def test_old_failure_path_at_gateway_is_403_missing_authentication_token(
    api: httpx.Client, path: str
) -> None:
    answer = api.post(path, json={"transaction_id": "tx_002"})
    assert answer.status_code == 403
    assert answer.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize("path", OLD_PATHS)
def test_old_failure_path_at_each_replica_is_404(stack, path: str) -> None:
    if stack.stack is None:
        pytest.skip("replicas are only reachable on a stack this session started")
    for replica in stack.stack.replicas.replicas:
        answer = httpx.post(f"{replica.url}{path}", json={"transaction_id": "tx_002"})
        assert answer.status_code == 404, (replica.url, answer.text)


def test_old_failure_query_type_is_rejected_by_the_lambda(aws) -> None:
    import json

    answer = aws("lambda").invoke(
        FunctionName="query-lambda", Payload=json.dumps({"query_type": "failure", "id": "tx_002"})
    )
    result = json.loads(answer["Payload"].read())
    assert result["ok"] is False and result["error"]["code"] == "InvalidRequest"
