"""Review background tasks (django-q2). Dotted paths are a public API; tasks take IDs."""

from __future__ import annotations

from connectors.quickbooks.models import RecordState, SourceRecord
from review.decisions import proposal_route
from review.services import workspace_model_refit, workspace_models_refresh


def proposals_route_task(workspace_id: int, record_ids: list[int]) -> dict[str, int]:
    """Matching's new proposals handed to the decision service (matching.services.ROUTE_TASK).

    Automatic ones are approved through it (or sent to a person with the reason); purchases
    whose bank payment Qonto has not got yet wait for it. Harmless twice: a record already
    decided is left alone. Returns how many records ended in each state.
    """
    records = (
        SourceRecord.objects.for_workspace(workspace_id)
        .filter(
            pk__in=record_ids,
            state__in=[RecordState.PROPOSED, RecordState.IN_REVIEW, RecordState.REFUSED],
        )
        .order_by("pk")
    )
    counts: dict[str, int] = {}
    for record in records:
        state = proposal_route(record=record)
        counts[state] = counts.get(state, 0) + 1
    return counts


def workspace_model_fit_task(workspace_id: int) -> str:
    """Fit the workspace's model on its books and reviewers' answers again; harmless twice.

    Queued every 25 answers (review.decisions.REFIT_TASK), and run in line by matching for a
    workspace's first proposals (matching.services.FIT_TASK).
    """
    return workspace_model_refit(workspace=workspace_id).version


def workspace_models_refresh_task() -> int:
    """Fit again the models whose workspace's books grew or that are a week old; harmless twice."""
    return len(workspace_models_refresh())
