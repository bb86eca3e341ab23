"""The pytest plugin, run with pytester in a separate pytest process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def fake_gateway() -> Iterator[str]:
    """A stand-in gateway answering /v1/health and echoing POST bodies."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._send(200 if self.path == "/v1/health" else 403, {"path": self.path})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            self._send(
                200, {"path": self.path, "body": json.loads(self.rfile.read(length) or b"{}")}
            )

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    thread.join()
    server.server_close()


def test_plugin_registers_its_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--harness-backend*", "*--harness-gateway-url*"])


def test_plugin_api_fixture_uses_given_gateway_url(
    pytester: pytest.Pytester, fake_gateway: str
) -> None:
    pytester.makepyfile(
        """
        def test_health(api, stack):
            assert stack.backend == "external"
            assert api.get("/health").status_code == 200
            assert api.post("/query/user", json={"user_id": "u"}).json() == {
                "path": "/v1/query/user", "body": {"user_id": "u"}}
        """
    )
    result = pytester.runpytest_subprocess(
        f"--harness-gateway-url={fake_gateway}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_plugin_aws_fixture_without_endpoint_skips_with_reason(
    pytester: pytest.Pytester, fake_gateway: str
) -> None:
    pytester.makepyfile(
        """
        def test_needs_aws(aws):
            aws.dynamodb
        """
    )
    result = pytester.runpytest_subprocess(f"--harness-gateway-url={fake_gateway}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*AWS endpoint is not reachable*"])


def test_plugin_localstack_without_docker_skips_with_reason(pytester: pytest.Pytester) -> None:
    from harness.stack.backends import docker_available

    if docker_available():
        pytest.skip("a Docker engine is reachable here: the LocalStack backend would really start")
    pytester.makepyfile(
        """
        def test_stack(stack):
            raise AssertionError("must not run without Docker")
        """
    )
    result = pytester.runpytest_subprocess("--harness-backend=localstack", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*localstack backend unavailable*no Docker engine*"])


def test_plugin_isolated_aws_resets_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def _table(client):
            client.create_table(
                TableName="t",
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            )

        def test_first(isolated_aws):
            _table(isolated_aws.dynamodb)
            isolated_aws.sqs.create_queue(QueueName="q")

        @pytest.mark.aws_isolated
        def test_second_sees_nothing_of_the_first(isolated_endpoint):
            from harness.pytest_plugin import AwsClients, StackHandle
            aws = AwsClients(StackHandle("", isolated_endpoint.url))
            assert aws.dynamodb.list_tables()["TableNames"] == []
            assert "QueueUrls" not in aws.sqs.list_queues()
            _table(aws.dynamodb)

        def test_third_sees_nothing_either(isolated_aws):
            assert isolated_aws.dynamodb.list_tables()["TableNames"] == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "ignore")
    result.assert_outcomes(passed=3)


def test_plugin_wait_for_sync_refuses_an_invalid_record_at_once(
    pytester: pytest.Pytester, fake_gateway: str
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from harness.stack.commands import InvalidCommandRecord

        def test_invalid(command_record_factory, wait_for_sync):
            record = command_record_factory(status="WAT")
            with pytest.raises(InvalidCommandRecord, match="status: 'WAT' is not one of"):
                wait_for_sync(record)
        """
    )
    result = pytester.runpytest_subprocess(f"--harness-gateway-url={fake_gateway}")
    result.assert_outcomes(passed=1)
