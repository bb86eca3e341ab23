"""STS ``AssumeRole`` from inside the endpoint, served by the same handler as an HTTP request.

The endpoint assumes each function's execution role for its environments (``harness.iam``).
A boto3 STS client for that made a boto3 session in the endpoint process and read botocore's
endpoint data (``endpoints.json``, 1.2 MB) and STS's model: ~0.1 CPU-s, on the way from
CreateEventSourceMapping to the mapping's first environment. This client sends the request
botocore would send (the Query protocol: ``Action=AssumeRole&Version=2011-06-15&...``, signed
with the harness's key) to the endpoint's handler directly, and reads the XML answer; IAM
enforcement decides it as it decides the HTTP request.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from harness.aws.moto_app import HttpRequest, HttpResponse

#: STS's API version, as botocore sends it
STS_VERSION = "2011-06-15"


class InProcessSts:
    """The ``assume_role`` of a boto3 STS client, answered by ``handle`` (the endpoint's app)."""

    def __init__(
        self,
        handle: Callable[[HttpRequest], HttpResponse],
        *,
        host: str,
        region: str,
        access_key: str = "test",
    ) -> None:
        self._handle = handle
        self.host = host
        self.region = region
        self.access_key = access_key

    def assume_role(
        self, *, RoleArn: str, RoleSessionName: str, DurationSeconds: int = 3600  # noqa: N803 - boto3's names
    ) -> dict[str, Any]:
        """``{"Credentials": {AccessKeyId, SecretAccessKey, SessionToken, Expiration}, ...}``;
        an error answer raises botocore's ``ClientError``, as the client does."""
        body = urlencode(
            {
                "Action": "AssumeRole",
                "Version": STS_VERSION,
                "RoleArn": RoleArn,
                "RoleSessionName": RoleSessionName,
                "DurationSeconds": str(DurationSeconds),
            }
        ).encode()
        headers = [
            ("host", self.host),
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            (
                "authorization",
                f"AWS4-HMAC-SHA256 Credential={self.access_key}/20000101/{self.region}/sts/"
                "aws4_request, SignedHeaders=content-type;host, Signature=0",
            ),
        ]
        response = self._handle(HttpRequest("POST", "/", b"/", b"", headers, body))
        try:
            root = ElementTree.fromstring(response.body)
        except ElementTree.ParseError:  # not STS's XML: say what came back
            raise ClientError(
                {"Error": {"Code": str(response.status), "Message": response.body[:500].decode(
                    "utf-8", "replace")}},
                "AssumeRole",
            ) from None
        if response.status != 200:
            # {*}: in STS's namespace or in none (ElementTree's wildcard)
            code = root.findtext(".//{*}Code") or str(response.status)
            message = root.findtext(".//{*}Message") or ""
            error = {"Code": code, "Message": message}
            raise ClientError({"Error": error, "ResponseMetadata": {}}, "AssumeRole")
        credentials = root.find(".//{*}Credentials")
        if credentials is None:
            raise ClientError(
                {"Error": {"Code": "InvalidResponse", "Message": "no Credentials in the answer"}},
                "AssumeRole",
            )

        def text(name: str) -> str:
            return credentials.findtext(f"{{*}}{name}") or ""

        user = root.find(".//{*}AssumedRoleUser")
        return {
            "Credentials": {
                "AccessKeyId": text("AccessKeyId"),
                "SecretAccessKey": text("SecretAccessKey"),
                "SessionToken": text("SessionToken"),
                "Expiration": datetime.fromisoformat(text("Expiration").replace("Z", "+00:00")),
            },
            "AssumedRoleUser": {
                "AssumedRoleId": user.findtext("{*}AssumedRoleId") if user is not None else "",
                "Arn": user.findtext("{*}Arn") if user is not None else "",
            },
        }
