"""Item 1: every route of the contract answers through the gateway; the old paths are 403 there."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.verify.model import Evidence, ItemResult, Table, bi, verdict
from harness.verify.target import Options, Target

#: API Gateway's answer to a path or method the API does not define (a REST API's
#: MISSING_AUTHENTICATION_TOKEN gateway response)
MISSING_TOKEN = {"message": "Missing Authentication Token"}
OLD_PATHS = ("/query/failure", "/failed")
#: a body per route that the contract accepts, to probe that the gateway forwards it
PROBE_BODIES = {
    "/query/user": {"user_id": "test_user_001"},
    "/query/marketing": {"marketing_id": "campaign_2024_new_year"},
    "/query/fail": {"transaction_id": "tx_002"},
}
MAX_EXAMPLES = 10


def operations(contract: Path) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the OpenAPI document."""
    document: dict[str, Any] = yaml.safe_load(contract.read_text(encoding="utf-8"))
    return [
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    ]


def check_endpoints(target: Target, options: Options) -> ItemResult:
    """Probe each route and the old paths, then schemathesis (positive and negative) through the gateway."""
    evidence = Evidence()
    contract = options.root / "contracts" / "openapi.yaml"
    rows: list[list[str]] = []
    with httpx.Client(base_url=target.gateway_url, timeout=30.0) as client:
        for method, path in operations(contract):
            response = client.request(method, path, json=PROBE_BODIES.get(path))
            ok = response.status_code == 200
            rows.append([method, path, str(response.status_code), "ok" if ok else "FAIL"])
            if not ok:
                cause = (
                    "the gateway does not define this route"
                    if _is_missing_token(response)
                    else "unexpected status"
                )
                evidence.failures.append(
                    f"{method} {path}: {response.status_code} {response.text[:200]} ({cause})"
                )
        for path in OLD_PATHS:
            for method in ("GET", "POST"):
                response = client.request(method, path, json={})
                gone = response.status_code == 403 and _is_missing_token(response)
                rows.append([method, path, str(response.status_code), "ok (403)" if gone else "FAIL"])
                if not gone:
                    evidence.failures.append(
                        f"{method} {path} (renamed in V3): {response.status_code} "
                        f"{response.text[:200]} — must be 403 Missing Authentication Token"
                    )
    evidence.tables.append(
        Table(bi("Direct probes through the gateway", "經由 Gateway 的直接探測"),
              ["method", "path", "status", "verdict"], rows)
    )
    fuzz = _schemathesis(target.gateway_url, contract, options)
    evidence.fact("schemathesis mode", "schemathesis 模式", "all (positive + negative)")
    evidence.fact("seed", "種子", f"{options.seed} (generation deterministic, schemathesis.toml)")
    evidence.fact("max examples per operation", "每個操作最多案例數", MAX_EXAMPLES)
    evidence.fact("test cases generated", "產生的測試案例", fuzz["generated"])
    evidence.fact("test cases passed", "通過的測試案例", fuzz["passed"])
    evidence.tables.append(
        Table(bi("schemathesis per operation", "schemathesis 各操作結果"),
              ["operation", "result"], fuzz["operations"])
    )
    evidence.failures.extend(fuzz["failures"])
    evidence.excerpts.extend(fuzz["excerpt"])
    passed = not evidence.failures and fuzz["returncode"] == 0
    first = evidence.failures[0] if evidence.failures else "schemathesis failed"
    return verdict(
        passed,
        bi(f"Every route answers as the contract says ({fuzz['generated']} schemathesis cases, "
           "positive and negative); old paths are 403.",
           f"所有路由皆依契約回應（schemathesis {fuzz['generated']} 個正向與負向案例）；舊路徑回 403。"),
        bi(f"{len(evidence.failures)} problem(s): {first}", f"發現 {len(evidence.failures)} 個問題：{first}"),
        evidence,
        "1",
    )


def _is_missing_token(response: httpx.Response) -> bool:
    try:
        return bool(response.json() == MISSING_TOKEN)
    except ValueError:
        return False


def _schemathesis(url: str, contract: Path, options: Options) -> dict[str, Any]:
    """Run schemathesis's CLI (its own process) and read its JUnit report and summary."""
    with tempfile.TemporaryDirectory(prefix="verify-schemathesis-") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", str(contract), "--url", url,
            "--mode", "all", "--seed", str(options.seed), "--max-examples", str(MAX_EXAMPLES),
            # API Gateway answers an undefined method with 403 Missing Authentication Token, not 405
            "--exclude-checks", "unsupported_method",
            "--report", "junit", "--report-junit-path", str(junit), "--no-color",
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=600, cwd=options.root
        )
        rows, failures = [], []
        if junit.is_file():
            for case in ET.parse(junit).getroot().iter("testcase"):
                failed = case.find("failure") is not None or case.find("error") is not None
                rows.append([case.get("name", "?"), "FAIL" if failed else "passed"])
                if failed:
                    node = case.find("failure") if case.find("failure") is not None else case.find("error")
                    message = (node.get("message") or node.text or "") if node is not None else ""
                    failures.append(f"schemathesis {case.get('name')}: {message[:600]}")
    counts = re.search(r"(\d+) generated(?:, (\d+) passed)?", done.stdout)
    if done.returncode != 0 and not failures:
        failures.append(f"schemathesis exited with {done.returncode}: {done.stdout[-800:]}{done.stderr[-400:]}")
    # the summary's last lines, without the CLI's status emoji (not every font has them)
    summary = [
        line.encode("ascii", "ignore").decode().rstrip()
        for line in done.stdout.splitlines()
        if line.strip()
    ][-14:]
    return {
        "returncode": done.returncode,
        "generated": counts.group(1) if counts else "?",
        "passed": (counts.group(2) or "0") if counts else "?",
        "operations": rows,
        "failures": failures,
        "excerpt": summary,
    }
