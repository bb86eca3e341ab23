"""moto's start-up costs paid once: region lists kept per botocore version, IAM partitions built on use."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import botocore
import pytest

from harness.aws.warmup import RegionListing, default_cache_dir


class CountingOriginal:
    """Stands in for botocore's ``get_available_regions``; counts how often it is asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def __call__(self, session: Any, service: str, partition: str, non_regional: bool) -> list[str]:
        self.calls.append((service, partition, non_regional))
        return [f"{partition}-{service}-1", f"{partition}-{service}-2"]


def test_region_lists_are_computed_once_and_read_back_by_the_next_process(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "regions.json"
    original = CountingOriginal()
    first = RegionListing(original, cache)
    assert first.get("ec2", "aws", False) == ["aws-ec2-1", "aws-ec2-2"]
    assert first.get("ec2", "aws", False) == ["aws-ec2-1", "aws-ec2-2"]
    assert first.get("ec2", "aws-cn", True) == ["aws-cn-ec2-1", "aws-cn-ec2-2"]
    assert original.calls == [("ec2", "aws", False), ("ec2", "aws-cn", True)]
    assert json.loads(cache.read_text())["ec2|aws|0"] == ["aws-ec2-1", "aws-ec2-2"]

    again = CountingOriginal()
    second = RegionListing(again, cache)  # a new process: the file answers
    assert second.get("ec2", "aws-cn", True) == ["aws-cn-ec2-1", "aws-cn-ec2-2"]
    assert again.calls == []
    assert list(tmp_path.rglob(".regions.json.*")) == []  # no partial file left behind


def test_a_damaged_region_cache_is_recomputed_and_rewritten(tmp_path: Path) -> None:
    cache = tmp_path / "regions.json"
    cache.write_text("{not json")
    original = CountingOriginal()
    assert RegionListing(original, cache).get("sqs", "aws", False) == ["aws-sqs-1", "aws-sqs-2"]
    assert original.calls == [("sqs", "aws", False)]
    assert json.loads(cache.read_text()) == {"sqs|aws|0": ["aws-sqs-1", "aws-sqs-2"]}


def test_an_unwritable_region_cache_costs_speed_not_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    listing = RegionListing(CountingOriginal(), blocker / "sub" / "regions.json")
    assert listing.get("sqs", "aws", False) == ["aws-sqs-1", "aws-sqs-2"]
    assert "cannot write the region cache" in caplog.text


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "h"))
    assert default_cache_dir() == tmp_path / "h"
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "query-harness"


def test_the_endpoint_lists_regions_as_botocore_does(endpoint: Any) -> None:
    import boto3.session

    listing = boto3.session.Session.get_available_regions
    original = listing.__wrapped_by_harness__  # type: ignore[attr-defined]
    fresh = boto3.session.Session()
    assert boto3.session.Session().get_available_regions("dynamodb") == original(fresh, "dynamodb")
    assert listing.listing.cache_file.name == f"regions-botocore-{botocore.__version__}.json"  # type: ignore[attr-defined]


def test_signed_requests_build_only_the_iam_partitions_in_use(
    endpoint: Any, aws_client_factory: Any
) -> None:
    from moto.iam.models import iam_backends

    aws_client_factory("sts").get_caller_identity()
    aws_client_factory("iam").list_roles()
    # moto's own lookup built all six partitions' backends (each parsing ~1,500 managed policies)
    assert set(dict.keys(iam_backends["123456789012"])) <= {"aws"}


def test_access_keys_still_map_requests_to_their_account(aws_client_factory: Any) -> None:
    account = "111122223333"
    iam = aws_client_factory("iam")

    def in_other_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account  # moto's way to act in another account

    iam.meta.events.register("before-sign.iam.*", in_other_account)
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = aws_client_factory(
        "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    assert sts.get_caller_identity()["Account"] == account
    plain = aws_client_factory("sts")
    assert plain.get_caller_identity()["Account"] == "123456789012"


def test_partition_list_is_cached_beside_the_regions(tmp_path: Path) -> None:
    cache = tmp_path / "regions.json"
    asked: list[Any] = []

    def partitions(session: Any) -> list[str]:
        asked.append(session)
        return ["aws", "aws-cn"]

    assert RegionListing(CountingOriginal(), cache).partitions(partitions) == ["aws", "aws-cn"]
    assert RegionListing(CountingOriginal(), cache).partitions(partitions) == ["aws", "aws-cn"]
    assert len(asked) == 1


ECS_WITHOUT_EC2 = """
import sys, boto3
from harness.aws.endpoint import Endpoint

endpoint = Endpoint(port=0).start()
def client(service):
    return boto3.client(service, endpoint_url=endpoint.url, region_name="ap-southeast-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
ecs = client("ecs")
ecs.create_cluster(clusterName="c")
ecs.register_task_definition(family="f", containerDefinitions=[{"name": "app", "image": "i"}],
                             requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                             cpu="256", memory="512")
ecs.create_service(cluster="c", serviceName="plain", taskDefinition="f", desiredCount=2,
                   launchType="FARGATE")
print("ec2 imported by ECS:", "moto.ec2.models" in sys.modules)
ec2 = client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
group = ec2.create_security_group(GroupName="g", Description="d", VpcId=vpc)["GroupId"]
network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
ecs.create_service(cluster="c", serviceName="in-vpc", taskDefinition="f", desiredCount=1,
                   launchType="FARGATE", networkConfiguration=network)
try:
    ecs.create_service(cluster="c", serviceName="bad", taskDefinition="f", desiredCount=1,
                       launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-nope"],
                                                                     "securityGroups": [group]}})
except Exception as exc:
    print("unknown subnet:", type(exc).__name__, exc)
print("services:", sorted(s["serviceName"] for s in ecs.describe_services(
    cluster="c", services=["plain", "in-vpc", "bad"])["services"]))
endpoint.stop()
"""


def test_ecs_works_without_importing_ec2_until_ec2_is_needed() -> None:
    """ECS alone never imports EC2; a subnet lookup imports the real EC2 and finds the subnet."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", ECS_WITHOUT_EC2], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "ec2 imported by ECS: False" in lines
    assert any(line.startswith("unknown subnet: ") and "subnet" in line for line in lines), lines
    assert "services: ['in-vpc', 'plain']" in lines


APIGATEWAY_WITHOUT_VALIDATOR = """
import json, sys, boto3
from harness.aws.endpoint import Endpoint

endpoint = Endpoint(port=0).start()
apigw = boto3.client("apigateway", endpoint_url=endpoint.url, region_name="ap-southeast-1",
                     aws_access_key_id="test", aws_secret_access_key="test")
doc = {"openapi": "3.0.1", "info": {"title": "t", "description": "d", "version": "1"},
       "paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}
api = apigw.import_rest_api(body=json.dumps(doc).encode())["id"]
print("validator imported:", "openapi_spec_validator" in sys.modules)
print("resources:", sorted(r["path"] for r in apigw.get_resources(restApiId=api)["items"]))
bad = {"openapi": "3.0.1", "info": {"title": "b", "description": "d"}, "paths": {}}
try:
    apigw.import_rest_api(body=json.dumps(bad).encode(), failOnWarnings=True)
except Exception as exc:
    print("invalid:", type(exc).__name__)
apigw.import_rest_api(body=json.dumps(doc).encode(), failOnWarnings=True)
print("validated: ok")
endpoint.stop()
"""


def test_api_gateway_imports_the_openapi_validator_only_to_fail_on_warnings() -> None:
    """An import without failOnWarnings needs no validator; with it, a bad document is still
    AWS's BadRequestException and a good one passes."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", APIGATEWAY_WITHOUT_VALIDATOR], capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[:2] == ["validator imported: False", "resources: ['/', '/x']"], lines
    assert lines[2:] == ["invalid: BadRequestException", "validated: ok"], lines


def test_url_builders_compile_on_first_use_and_still_build(
    endpoint: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from werkzeug.routing import Map, Rule

    from harness.aws.warmup import defer_url_builders

    original = Rule._compile_builder.__wrapped_by_harness__  # type: ignore[attr-defined]
    compiled: list[str] = []

    def counting(self: Any, append_unknown: bool = True) -> Any:
        compiled.append(self.rule)
        return original(self, append_unknown)

    monkeypatch.setattr(Rule, "_compile_builder", counting)
    defer_url_builders()  # wraps the counting builder as it wrapped werkzeug's
    urls = Map([Rule("/tables/<name>", endpoint="table"), Rule("/", endpoint="root")])
    adapter = urls.bind("localhost")
    assert adapter.match("/tables/t1") == ("table", {"name": "t1"})
    assert compiled == []  # adding and matching routes compiled no builder
    assert adapter.build("table", {"name": "t 1", "extra": "x"}) == "/tables/t%201?extra=x"
    assert adapter.build("root", {}) == "/"
    assert adapter.build("table", {"name": "t2"}) == "/tables/t2"
    assert compiled == ["/tables/<name>", "/"]  # once each, on first use


def test_moto_reads_every_model_through_one_loader_with_the_same_answers(endpoint: Any) -> None:
    """The endpoint shares one botocore loader with moto; a model read through it is the model a
    fresh loader reads (botocore's data plus moto's extras)."""
    from moto.core import utils

    create_loader: Any = getattr(utils, "create_loader")  # noqa: B009 - not in moto's __all__
    assert hasattr(create_loader, "__wrapped_by_harness__")  # the endpoint installed it
    assert create_loader() is create_loader()
    fresh = create_loader.__wrapped_by_harness__()
    load: Any = getattr(utils, "_load_service_model")  # noqa: B009
    for service, kind in (("dynamodb", "service-2"), ("logs", "paginators-1")):
        assert load(service, kind) == fresh.load_service_model(service, kind)
