"""The soak's exact check on hand-made evidence: each fault of the pipeline is named."""

from __future__ import annotations

from typing import Any

from harness.faults.soak_check import Evidence, StreamEntry, check
from harness.faults.soak_workload import SoakConfig, Write, generate

SHARD = "shard-1"


def _image(tx: str, created_at: int, title: str, **extra: Any) -> dict[str, Any]:
    return {"transaction_id": tx, "created_at": created_at, "user_id": "r-u1", "status": "SENT",
            "platform": "IOS", "notification_title": title, **extra}  # fmt: skip


def _world() -> tuple[list[Write], list[StreamEntry], list[dict[str, Any]]]:
    """Three keys: one modified (live), one removed, one poison; all sent."""
    writes = [
        Write(0, ("r-a", 1), "r-u1", _image("r-a", 1, "w0")),
        Write(1, ("r-b", 2), "r-u1", _image("r-b", 2, "w1")),
        Write(2, ("r-a", 1), "r-u1", _image("r-a", 1, "w2", status="FAILED", error_msg="x")),
        Write(3, ("r-p", 3), "r-u1", _image("r-p", 3, "w3"), poison=True),
        Write(4, ("r-b", 2), "r-u1", None),
    ]
    for write in writes:
        write.sent_at = 1.0
    events = ["INSERT", "INSERT", "MODIFY", "INSERT", "REMOVE"]
    stream = [
        StreamEntry(100 + w.index, SHARD, e, w.key) for w, e in zip(writes, events, strict=True)
    ]
    image = writes[2].image
    assert image is not None
    read = [{**image, "source_sequence": str(102).zfill(40)}]
    return writes, stream, read


def test_check_exact_match_has_no_problem() -> None:
    writes, stream, read = _world()
    verdict = check(writes, Evidence(stream, read, [(SHARD, 103, 103)], 0))
    assert verdict.problems == []
    wanted = {"live": 1, "removed": 1, "poison": 1, "dlq_messages": 1, "lost": 0, "stale": 0}
    assert {k: verdict.counts[k] for k in wanted} == wanted


def test_check_names_good_records_discarded_with_a_poison_record() -> None:
    writes, stream, read = _world()
    verdict = check(writes, Evidence(stream, [], [(SHARD, 100, 104)], 0))
    text = "\n".join(verdict.problems)
    assert "discarded to the on-failure queue with a poison record" in text
    assert "blocked shard" in text
    assert "1 good records lost" in text


def test_check_names_a_poison_record_missing_from_the_queue() -> None:
    writes, stream, read = _world()
    (problem,) = check(writes, Evidence(stream, read, [], 0)).problems
    assert "poison records are not in the on-failure queue" in problem


def test_check_names_an_older_image_on_the_read_side() -> None:
    writes, stream, read = _world()
    stale = [{**read[0], "status": "SENT", "error_msg": None}]
    problems = check(writes, Evidence(stream, stale, [(SHARD, 103, 103)], 2)).problems
    assert any("differ from their latest command image" in p for p in problems)
    assert any("re-applied older image" in p for p in problems)


def test_check_names_removed_and_poison_records_on_the_read_side() -> None:
    writes, stream, read = _world()
    extra = [*read, {**_image("r-b", 2, "w1")}, {**_image("r-p", 3, "w3")}]
    problems = check(writes, Evidence(stream, extra, [(SHARD, 103, 103)], 0)).problems
    assert any("1 removed records are on the read side" in p for p in problems)
    assert any("1 poison records are on the read side" in p for p in problems)


def test_generate_keeps_created_at_distinct_and_poison_untouched() -> None:
    writes = generate(SoakConfig(records=2000, poison_fraction=0.02, seed=5), "g")
    inserted = [w for w in writes if w.image is not None and w.image["status"] == "SENT"]
    assert len({w.key[1] for w in inserted}) == len(inserted) == 2000
    poison = {w.key for w in writes if w.poison}
    assert poison and all(w.image is not None for w in writes if w.key in poison)
    assert sum(1 for w in writes if w.key in poison) == len(poison)  # inserted once, never again
    assert len(writes) > 2000 and any(w.image is None for w in writes)
