"""The report: index.html (Jinja2, self-contained), acceptance.json and junit.xml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from harness.verify.checklist import BY_ID
from harness.verify.model import LANGUAGES, ItemResult, Status

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Query Service V3 — acceptance report",
        "target": "Target",
        "generated": "Generated",
        "duration": "Duration",
        "item": "Item",
        "status": "Status",
        "summary": "Summary",
        "criterion": "Acceptance criterion",
        "evidence": "Evidence",
        "failures": "What failed",
        "excerpts": "Log excerpts",
        "verdict_pass": "All checked items passed",
        "verdict_fail": "Some items failed",
        "not_checked": "not checked",
        "signature": "QA sign-off",
        "name": "Name",
        "date": "Date",
        "PASS": "PASS",
        "FAIL": "FAIL",
        "NOT CHECKED": "NOT CHECKED",
        "none": "none",
    },
    "zh-TW": {
        "title": "Query Service V3 — 驗收報告",
        "target": "受測環境",
        "generated": "產生時間",
        "duration": "耗時",
        "item": "項目",
        "status": "結果",
        "summary": "摘要",
        "criterion": "驗收標準",
        "evidence": "證據",
        "failures": "失敗項目",
        "excerpts": "日誌摘錄",
        "verdict_pass": "所有已檢查項目皆通過",
        "verdict_fail": "部分項目未通過",
        "not_checked": "未檢查",
        "signature": "QA 簽核",
        "name": "姓名",
        "date": "日期",
        "PASS": "通過",
        "FAIL": "未通過",
        "NOT CHECKED": "未檢查",
        "none": "無",
    },
}

#: the evidence tables' column names and the status words in their cells, in Traditional Chinese
#: (the checks name columns in English; a name missing here is shown as it is)
WORDS_ZH: dict[str, str] = {
    "time": "時間", "status": "狀態", "cause": "原因", "check": "檢查", "resource": "資源",
    "name": "名稱", "method": "方法", "path": "路徑", "verdict": "判定", "operation": "操作",
    "result": "結果", "change": "變更", "ap_id expected": "預期 ap_id", "sync latency": "同步延遲",
    "task": "任務", "state": "狀態", "load balancer": "負載平衡器", "part": "子項",
    "policy": "政策", "actions": "動作", "resources": "資源", "log": "日誌", "found": "找到",
    "coverage": "涵蓋率", "route": "路由", "requests": "請求數", "max": "最大值",
    "finding": "發現", "expected": "預期", "answered": "回應", "pages": "頁數",
    "ok": "通過", "PASS": "通過", "FAIL": "未通過", "NOT CHECKED": "未檢查",
    "PASSED": "通過", "FAILED": "未通過", "waived": "已豁免",
}


def word(text: object, lang: str) -> str:
    """A column name or a status word in ``lang``."""
    return WORDS_ZH.get(str(text), str(text)) if lang == "zh-TW" else str(text)


@dataclass
class Run:
    """One verify run: where, when, how long, and the results."""

    target: str
    started: datetime
    duration_s: float
    results: Sequence[ItemResult]

    @property
    def passed(self) -> bool:
        checked = [r for r in self.results if r.checked]
        return bool(checked) and all(r.status is Status.PASS for r in checked)


def write(run: Run, out_dir: Path, lang: str) -> dict[str, Path]:
    """Write the three files into ``out_dir``; returns them by kind."""
    if lang not in LANGUAGES:
        raise ValueError(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out_dir / "index.html",
        "json": out_dir / "acceptance.json",
        "junit": out_dir / "junit.xml",
    }
    paths["html"].write_text(render_html(run, lang), encoding="utf-8")
    paths["json"].write_text(json.dumps(to_json(run), indent=2, ensure_ascii=False), encoding="utf-8")
    ET.ElementTree(to_junit(run)).write(paths["junit"], encoding="utf-8", xml_declaration=True)
    return paths


def to_json(run: Run) -> dict[str, Any]:
    """acceptance.json: the run and one object per item with its evidence."""
    return {
        "target": run.target,
        "started": run.started.isoformat(),
        "duration_s": run.duration_s,
        "passed": run.passed,
        "items": [
            {
                **result.to_json(),
                "title": BY_ID[result.id].title,
                "criterion": BY_ID[result.id].criterion,
            }
            for result in run.results
        ],
    }


def to_junit(run: Run) -> ET.Element:
    """junit.xml: one test case per item; FAIL is a failure, NOT CHECKED a skip."""
    suite = ET.Element(
        "testsuite",
        name="acceptance",
        tests=str(len(run.results)),
        failures=str(sum(r.status is Status.FAIL for r in run.results)),
        skipped=str(sum(r.status is Status.NOT_CHECKED for r in run.results)),
        time=f"{run.duration_s:.2f}",
        timestamp=run.started.isoformat(),
    )
    for result in run.results:
        item = BY_ID[result.id]
        case = ET.SubElement(
            suite,
            "testcase",
            classname="acceptance",
            name=f"{item.id}. {item.title['zh-TW']} — {item.title['en']}",
            time=f"{result.duration_s:.2f}",
        )
        if result.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", message=result.summary["en"])
            failure.text = "\n".join(result.evidence.failures[:50])
        elif result.status is Status.NOT_CHECKED:
            ET.SubElement(case, "skipped", message=result.summary["en"])
        facts = "\n".join(f"{label['en']}: {value}" for label, value in result.evidence.facts)
        ET.SubElement(case, "system-out").text = facts
    return suite


def render_html(run: Run, lang: str) -> str:
    """index.html in ``lang`` (zh-TW or en): the checklist, then each item's evidence."""
    env = Environment(
        loader=PackageLoader("harness.verify", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["word"] = lambda text: word(text, lang)
    template = env.get_template("index.html.j2")
    return template.render(
        run=run,
        lang=lang,
        other=next(other for other in LANGUAGES if other != lang),
        t=LABELS[lang],
        items=BY_ID,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        counts={s.value: sum(r.status is s for r in run.results) for s in Status},
    )


def load(out_dir: Path) -> Run:
    """A run read back from its ``acceptance.json`` (to render the report in the other language)."""
    from harness.verify.model import Evidence, Picture, Table

    data = json.loads((out_dir / "acceptance.json").read_text(encoding="utf-8"))
    results = []
    for item in data["items"]:
        raw = item["evidence"]
        evidence = Evidence(
            facts=[(fact["label"], fact["value"]) for fact in raw["facts"]],
            tables=[Table(**table) for table in raw["tables"]],
            pictures=[Picture(**picture) for picture in raw["pictures"]],
            failures=list(raw["failures"]),
            excerpts=list(raw["excerpts"]),
        )
        results.append(ItemResult(item["id"], Status(item["status"]), item["summary"], evidence,
                                  float(item["duration_s"])))
    return Run(data["target"], datetime.fromisoformat(data["started"]), float(data["duration_s"]),
               results)


def _main() -> None:  # pragma: no cover - a command-line entry
    import argparse

    parser = argparse.ArgumentParser(description="Render a verify run's index.html again, from its "
                                     "acceptance.json, e.g. in the other language.")
    parser.add_argument("report_dir", type=Path)
    parser.add_argument("--lang", choices=LANGUAGES, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    args = parser.parse_args()
    args.out.write_text(render_html(load(args.report_dir), args.lang), encoding="utf-8")


if __name__ == "__main__":
    _main()
