"""Review background tasks (django-q2). Dotted paths are a public API; tasks take IDs."""

from __future__ import annotations

from connectors.quickbooks.models import RecordState, SourceRecord
from review.decisions import proposal_route


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
