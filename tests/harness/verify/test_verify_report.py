"""The runner's verdicts and the three report files, without a stack."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.verify import report, runner
from harness.verify.model import Evidence, ItemResult, Picture, Status, bi
from harness.verify.target import Options, Target


def _result(item: str, status: Status) -> ItemResult:
    evidence = Evidence(failures=["GET /x: 500"] if status is Status.FAIL else [])
    evidence.fact("requests", "請求數", 12)
    evidence.pictures.append(Picture(bi("a picture", "圖"), "<svg><circle r='1'/></svg>"))
    return ItemResult(item, status, bi(f"summary {item}", f"摘要 {item}"), evidence, 1.5)


def _run(*statuses: Status) -> report.Run:
    results = [_result(str(i + 1), s) for i, s in enumerate(statuses)]
    return report.Run("http://127.0.0.1:1/v1", datetime.now(UTC), 3.0, results)


def test_report_writes_html_json_junit_in_both_languages(tmp_path: Path) -> None:
    run = _run(Status.PASS, Status.FAIL, Status.NOT_CHECKED)
    for lang, word in (("zh-TW", "未通過"), ("en", "FAIL")):
        paths = report.write(run, tmp_path / lang, lang)
        html = paths["html"].read_text(encoding="utf-8")
        assert word in html and "<svg><circle" in html and "GET /x: 500" in html
        assert "所有 API 端點正常回應" in html  # the seed's words stay in both languages
    data = json.loads((tmp_path / "en" / "acceptance.json").read_text(encoding="utf-8"))
    assert [i["status"] for i in data["items"]] == ["PASS", "FAIL", "NOT CHECKED"]
    assert data["passed"] is False and data["items"][0]["evidence"]["facts"][0]["value"] == "12"
    suite = ET.parse(tmp_path / "en" / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")


def test_report_escapes_evidence_text(tmp_path: Path) -> None:
    run = _run(Status.FAIL)
    run.results[0].evidence.failures.append("<script>alert(1)</script>")
    html = report.render_html(run, "en")
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_runner_exit_code_needs_every_checked_item_passed() -> None:
    assert runner.exit_code([_result("1", Status.PASS), _result("6", Status.NOT_CHECKED)]) == 0
    assert runner.exit_code([_result("1", Status.PASS), _result("2", Status.FAIL)]) == 1
    assert runner.exit_code([_result("6", Status.NOT_CHECKED)]) == 1


def test_runner_item_that_raises_is_a_fail_naming_the_error() -> None:
    def broken(target: Target, options: Options) -> ItemResult:
        raise ConnectionError("gateway refused the connection")

    target = Target("http://127.0.0.1:1/v1", None)
    [result] = runner.run(target, Options(), ["1"], checks={"1": broken})
    assert result.status is Status.FAIL
    assert "gateway refused the connection" in result.summary["en"]


def test_runner_restores_the_iam_setting_when_the_run_is_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restored: list[bool] = []

    def enforcement(target: Target, ids: list[str]) -> ExitStack:
        stack = ExitStack()
        stack.callback(restored.append, True)
        return stack

    def interrupted(target: Target, options: Options) -> ItemResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.iam_live, "enforcement_for", enforcement)
    with pytest.raises(KeyboardInterrupt):
        runner.run(Target("http://127.0.0.1:1/v1", None), Options(), ["1", "9"],
                   checks={"1": interrupted})
    assert restored == [True]


def test_runner_on_a_deployed_stage_never_passes_what_it_cannot_run() -> None:
    stage = Target("https://example.invalid/v1", None, local=False)
    calls: list[str] = []

    def passing(item: str):
        def check(target: Target, options: Options) -> ItemResult:
            calls.append(item)
            return _result(item, Status.PASS)

        return check

    results = runner.run(stage, Options(), ["1", "2", "6"], checks={i: passing(i) for i in "126"})
    assert [r.status for r in results] == [Status.PASS, Status.NOT_CHECKED, Status.NOT_CHECKED]
    assert calls == ["1"]


def test_runner_only_rejects_unknown_items() -> None:
    assert runner.parse_only("8, 1") == ["1", "8"]
    with pytest.raises(ValueError, match="unknown item"):
        runner.parse_only("1,11")


def test_report_is_self_contained_and_its_tables_speak_the_report_language() -> None:
    """Nothing is fetched when the page opens (no script, stylesheet link, image, frame or
    external url): the pictures are inline SVG, the style is in the page."""
    from harness.verify import charts
    from harness.verify.model import Table

    run = _run(Status.PASS, Status.FAIL)
    evidence = run.results[0].evidence
    evidence.pictures.append(Picture(bi("timeline", "時間軸"), charts.timeline({"desired": [(0.0, 2.0)]}, "tasks")))
    evidence.tables.append(Table(bi("coverage", "涵蓋率"), ["log", "coverage", "verdict"],
                                 [["/ecs/query-service", "200/200", "ok"]]))
    for lang, header, cell in (("en", "<th>coverage</th>", "<td>ok</td>"),
                               ("zh-TW", "<th>涵蓋率</th>", "<td>通過</td>")):
        html = report.render_html(run, lang)
        assert header in html and cell in html
        lowered = html.lower()
        for fetch in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", " src="):
            assert fetch not in lowered, fetch
        refs = re.findall(r"""(?:href|xlink:href)\s*=\s*["']([^"']*)["']|url\(\s*['"]?([^)'"]*)""", html)
        assert refs and all(ref.startswith("#") for pair in refs for ref in pair if ref), refs


def test_report_renders_again_from_its_json_in_the_other_language(tmp_path: Path) -> None:
    run = _run(Status.PASS, Status.FAIL, Status.NOT_CHECKED)
    report.write(run, tmp_path, "en")
    again = report.load(tmp_path)
    assert report.to_json(again) == report.to_json(run)
    assert "未通過" in report.render_html(again, "zh-TW")
