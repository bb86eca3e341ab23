"""answer_patches: the same answer bytes as moto writes, with less per-answer work."""

from __future__ import annotations

import json
from datetime import datetime

import moto.core.responses as moto_responses
import pytest
from moto.core.responses import BaseResponse
from moto.dynamodb.models.utilities import dynamo_json_dump

from harness.aws import patches as moto_patches
from harness.aws.answer_patches import dump_answer


def _query_answer() -> dict[str, object]:
    items = [{"user_id": {"S": f"usér-{i}\n\"q\""}, "created_at": {"N": str(1_700_000_000_000 + i)},
              "tags": {"SS": ["a", "b"]}, "flag": {"BOOL": True}, "gone": {"NULL": True}}
             for i in range(3)]
    return {"Count": 3, "ScannedCount": 3, "Items": items, "LastEvaluatedKey": items[-1]}


def test_dump_answer_writes_what_moto_writes() -> None:
    answer = _query_answer()
    assert dump_answer(answer, dynamo_json_dump) == dynamo_json_dump(answer)


def test_dump_answer_hands_values_only_moto_knows_to_moto() -> None:
    answer = {"Items": [{"b": {"B": b"\x00\x01"}}],
              "When": datetime(2026, 1, 2)}  # noqa: DTZ001 - moto writes naive ones
    written = dump_answer(answer, dynamo_json_dump)
    assert written == dynamo_json_dump(answer)
    assert json.loads(written)["Items"][0]["b"]["B"] == "AAE="


def test_json_answers_keep_their_body_and_get_a_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moto_patches.apply()
    scanned: list[int] = []
    real_sub = moto_responses.re.sub

    def counting_sub(pattern: str, replacement: str, text: str) -> str:
        scanned.append(len(text))
        return real_sub(pattern, replacement, text)

    monkeypatch.setattr(moto_responses.re, "sub", counting_sub)
    body = json.dumps(_query_answer())
    headers, enriched = BaseResponse._enrich_response({"status": 200}, body)  # type: ignore[arg-type]
    assert enriched is body
    assert max(scanned, default=0) == 0  # the body was never scanned
    assert headers["status"] == "200"
    assert len(headers["x-amzn-requestid"]) >= 36


def test_xml_answers_still_get_the_request_id_in_their_body() -> None:
    moto_patches.apply()
    body = "<R><ResponseMetadata><RequestId>placeholder</RequestId></ResponseMetadata></R>"
    headers, enriched = BaseResponse._enrich_response({}, body)
    assert f"<RequestId>{headers['x-amzn-requestid']}</RequestId>" in enriched
    assert "placeholder" not in enriched
