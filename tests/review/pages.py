"""Helpers of the review page tests: URLs, messages, and records waiting in the queue."""

from __future__ import annotations

from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils.html import strip_tags

from connectors.quickbooks.models import RecordState
from matching.models import Band, Candidate
from tests.factories import ProposalFactory
from well.models import AuditEvent


def queued(books, n: int, state: str = RecordState.IN_REVIEW, band: str = Band.REVIEW):
    """n records in a state with a current proposal, each with two candidates (fast rows)."""
    for i in range(n):
        entry = books.invoice(amount_text=f"{100 + i}.00")
        record = books.bill(amount=f"{100 + i}.00", state=state)
        proposal = ProposalFactory(
            record=record,
            action="link",
            target=entry,
            confidence=0.7,
            band=band,
            auto_threshold=0.85,
            review_threshold=0.55,
            reasons=[{"signal": "gate", "weight": 0, "detail": "not auto-posted: 0.70 < 0.85"}],
        )
        Candidate.objects.create(
            workspace=books.workspace,
            proposal=proposal,
            rank=1,
            action="link",
            target=entry,
            confidence=0.7,
        )
        Candidate.objects.create(
            workspace=books.workspace, proposal=proposal, rank=2, action="create", confidence=0.2
        )
        AuditEvent.objects.create(
            workspace=books.workspace,
            actor_type="system",
            actor_label="tests",
            verb="record.proposed",
            object_type="quickbooks.bill",
            object_id=str(record.pk),
        )


def url(books, name: str, **kwargs) -> str:
    return reverse(f"review:{name}", kwargs={"workspace_slug": books.workspace.slug, **kwargs})


def texts(response) -> list[str]:
    """The flash messages as a person reads them (names are wrapped in <bdi>)."""
    return [strip_tags(str(m)) for m in get_messages(response.wsgi_request)]


def messages_html(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]
