"""The what-if replay of the settings page: past decisions under other thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from matching.models import Proposal
from review.models import Decision
from well.models import Workspace

# Decisions that say the proposal was wrong when they chose another action or target.
CHANGING_KINDS = ("reject", "pin", "upload_as_new", "override")


@dataclass(frozen=True)
class DecidedCase:
    """One decided record: the confidence proposed, and whether a person changed the outcome."""

    confidence: float
    changed: bool


@dataclass(frozen=True)
class WhatIfPoint:
    threshold: float
    auto_posted: int
    changed: int  # of those auto-posted, how many a reviewer later changed

    @property
    def error_rate(self) -> float:
        return self.changed / self.auto_posted if self.auto_posted else 0.0


def whatif_replay(*, cases: list[DecidedCase], thresholds: list[float]) -> list[WhatIfPoint]:
    """Replay decided history at each threshold: auto-posted count and later-changed count.

    Pure: no database; a case auto-posts at threshold t when its confidence is at least t.
    """
    points = []
    for threshold in thresholds:
        auto = [c for c in cases if c.confidence >= threshold]
        points.append(WhatIfPoint(threshold, len(auto), sum(1 for c in auto if c.changed)))
    return points


def decided_history(*, workspace: Workspace | int) -> list[DecidedCase]:
    """The workspace's decided records: each one's last person's (or the system's) judgement
    on the proposal it judged; changed when the right outcome was not the one proposed."""
    rows = (
        Decision.objects.for_workspace(workspace)
        .filter(proposal__isnull=False)
        .order_by("record_id", "-created_at", "-id")
        .values_list(
            "record_id",
            "kind",
            "right_action",
            "right_target_id",
            "proposal__action",
            "proposal__target_id",
            "proposal__confidence",
        )
    )
    cases: dict[int, DecidedCase] = {}
    for record_id, kind, action, target, p_action, p_target, confidence in rows:
        if record_id in cases:
            continue  # the newest decision of the record says what was right
        changed = kind in CHANGING_KINDS and (action, target) != (p_action, p_target)
        cases[record_id] = DecidedCase(float(confidence), changed or kind == "reject")
    auto = (
        Proposal.objects.for_workspace(workspace)
        .filter(is_current=True, band="auto")
        .exclude(record_id__in=list(cases))
        .values_list("record_id", "confidence")
    )
    for record_id, confidence in auto:
        cases[record_id] = DecidedCase(float(confidence), False)
    return list(cases.values())
