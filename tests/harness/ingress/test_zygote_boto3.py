from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types

import pytest

#: Run in a fresh interpreter: boto3's default session is process-wide.
CHILD = textwrap.dedent(
    """
    import json, os, sys
    import boto3
    from harness.ingress.zygote import _warm_boto3

    _warm_boto3(("lambda",))
    session = boto3._get_default_session()._session
    loader = session.get_component("data_loader")
    warmed = [key for key in loader._cache if "lambda" in str(key)]
    resolved_in_parent = session._credentials is not None
    # what a forked child does: its own environment, then boto3.client(...)
    os.environ.update(AWS_ACCESS_KEY_ID="child-key", AWS_SECRET_ACCESS_KEY="child-secret",
                      AWS_DEFAULT_REGION="eu-west-3")
    client = boto3.client("lambda")
    print(json.dumps({
        "warmed": len(warmed),
        "resolved_in_parent": resolved_in_parent,
        "region": client.meta.region_name,
        "key": client._request_signer._credentials.access_key,
    }))
    """
)


def test_zygote_boto3_warm_up_loads_models_but_leaves_credentials_and_region_to_the_child() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["warmed"] >= 2  # the service model and its endpoint rules
    assert answer["resolved_in_parent"] is False
    assert answer["region"] == "eu-west-3"
    assert answer["key"] == "child-key"


def test_zygote_boto3_warm_up_that_fails_is_said_and_not_fatal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The warm-up reads boto3's and botocore's internals; if a release moves them, the zygote
    still serves (each task reads the data itself) and its log says why."""
    from harness.ingress.zygote import _warm_boto3  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace())  # no default session
    _warm_boto3(("lambda",))
    err = capsys.readouterr().err
    assert "botocore's data not preloaded" in err and "AttributeError" in err
