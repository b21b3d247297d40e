"""What the matching model learns from people: the reviewers' answers, as plain data for a fit."""

from __future__ import annotations

from matching.core import CREATE, LINK
from matching.selectors import FIT_HISTORY_LIMIT, ReviewerAnswer
from review.models import Decision, DecisionKind
from well.models import Workspace

# Decisions that say what a record is (a rejection only says what it is not; an edit, nothing).
LABEL_KINDS = (
    DecisionKind.APPROVE,
    DecisionKind.PIN,
    DecisionKind.OVERRIDE,
    DecisionKind.UPLOAD_AS_NEW,
)


def reviewer_answers(*, workspace: Workspace | int) -> list[ReviewerAnswer]:
    """The workspace's answers, newest first, at most what a fit reads (one query)."""
    rows = (
        Decision.objects.for_workspace(workspace)
        .filter(kind__in=LABEL_KINDS, right_action__in=(LINK, CREATE))
        .order_by("-created_at", "-pk")
        .values_list("record_id", "right_action", "right_target__kind", "right_target__qonto_id")[
            :FIT_HISTORY_LIMIT
        ]
    )
    return [ReviewerAnswer(*row) for row in rows]
