"""Matching background tasks (django-q2). Dotted paths are a public API; tasks take IDs."""

from __future__ import annotations

from datetime import datetime

from django.utils.module_loading import import_string

from connectors.qonto.models import QontoEntry
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.selectors import MATCHED_KINDS
from matching.services import FIT_TASK, proposals_refresh_for_entries, records_propose

BATCH = 500
# The model fits moved to review, which gives them the reviewers' answers. Their old paths stay
# (dotted paths are a public API): schedule rows and tasks queued before the move still name
# them until `setup_schedules` moves the rows. They run review's tasks by dotted path, as
# matching never imports review.
REFRESH_TASK = "review.tasks.workspace_models_refresh_task"


def records_propose_task(workspace_id: int, record_ids: list[int]) -> int:
    """Propose for these records; harmless twice (settled versions are left alone)."""
    records = list(
        SourceRecord.objects.for_workspace(workspace_id).filter(pk__in=record_ids).order_by("pk")
    )
    return len(records_propose(records=records))


def records_propose_pending_task(workspace_id: int | None = None) -> int:
    """Propose for matched records still `pulled` (a handoff that failed, a backfill)."""
    query = SourceRecord.objects.filter(
        state=RecordState.PULLED, entity_type__in=MATCHED_KINDS, deleted=False
    )
    if workspace_id is not None:
        query = query.filter(workspace_id=workspace_id)
    made = 0
    ids = list(query.order_by("workspace_id", "pk").values_list("pk", flat=True)[: BATCH * 20])
    for start in range(0, len(ids), BATCH):
        made += len(
            records_propose(
                records=list(SourceRecord.objects.filter(pk__in=ids[start : start + BATCH]))
            )
        )
    return made


def proposals_refresh_task(workspace_id: int, since: str) -> int:
    """Qonto entries pulled since `since` (ISO time): re-propose the open records they reach."""
    entries = list(
        QontoEntry.objects.for_workspace(workspace_id).filter(
            pulled_at__gte=datetime.fromisoformat(since)
        )
    )
    return len(proposals_refresh_for_entries(workspace=workspace_id, entries=entries))


def workspace_models_refresh_task() -> int:
    """Old path of review.tasks.workspace_models_refresh_task."""
    return import_string(REFRESH_TASK)()


def workspace_model_fit_task(workspace_id: int) -> str:
    """Old path of review.tasks.workspace_model_fit_task."""
    return import_string(FIT_TASK)(workspace_id)
