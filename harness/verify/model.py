"""An acceptance item's result: its status and the evidence a QA engineer reads."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

#: A text in both report languages: ``{"en": ..., "zh-TW": ...}``.
Text = dict[str, str]
LANGUAGES = ("zh-TW", "en")


def bi(en: str, zh: str | None = None) -> Text:
    """A text in English and Traditional Chinese (English again where no translation is given)."""
    return {"en": en, "zh-TW": zh if zh is not None else en}


class Status(enum.StrEnum):
    """PASS and FAIL are verdicts; NOT CHECKED says the item could not be checked, and why."""

    PASS = "PASS"
    FAIL = "FAIL"
    NOT_CHECKED = "NOT CHECKED"


@dataclass
class Table:
    """A table of figures or findings in the evidence."""

    caption: Text
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Picture:
    """A picture in the evidence, as inline SVG."""

    caption: Text
    svg: str


@dataclass
class Evidence:
    """What was measured: facts (label, value), tables, pictures, failures, log excerpts."""

    facts: list[tuple[Text, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    excerpts: list[str] = field(default_factory=list)

    def fact(self, en: str, zh: str, value: object) -> None:
        """Add one labelled figure."""
        self.facts.append((bi(en, zh), str(value)))


@dataclass
class ItemResult:
    """The outcome of one acceptance item."""

    id: str
    status: Status
    summary: Text
    evidence: Evidence = field(default_factory=Evidence)
    duration_s: float = 0.0

    @property
    def checked(self) -> bool:
        return self.status is not Status.NOT_CHECKED

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (pictures included, as SVG text)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["evidence"]["facts"] = [
            {"label": label, "value": value} for label, value in self.evidence.facts
        ]
        return data


def verdict(passed: bool, summary_pass: Text, summary_fail: Text, evidence: Evidence, item: str) -> ItemResult:
    """PASS or FAIL with the matching summary."""
    return ItemResult(
        item,
        Status.PASS if passed else Status.FAIL,
        summary_pass if passed else summary_fail,
        evidence,
    )


def not_checked(item: str, reason: Text, evidence: Evidence | None = None) -> ItemResult:
    """An item that could not be checked here, with the reason."""
    return ItemResult(item, Status.NOT_CHECKED, reason, evidence or Evidence())
