"""The record page: everything it shows, read in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.pdf import PDF
from connectors.quickbooks.models import SourceRecord
from matching.models import Proposal
from review.selectors.audit import TimelineEntry, record_timeline
from review.selectors.records import (
    record_current_proposal,
    record_decisions,
    record_detail_get,
    record_files,
    record_ledger_accounts,
    record_postings,
    record_proposals,
)
from well.models import Workspace


@dataclass
class RecordPage:
    """Everything the record page shows, read in a fixed number of queries."""

    record: SourceRecord
    proposal: Proposal | None
    candidates: list
    history: list
    decisions: list
    postings: list
    files: list
    timeline: list[TimelineEntry]
    accounts: list[tuple[str, str]]
    posted: object  # the posting that reached Qonto, if any

    @property
    def failed_postings(self) -> int:
        return sum(1 for p in self.postings if p.state == "failed")

    @property
    def pdf(self):
        """The attachment the preview frames: a stored file validated as a PDF."""
        return next(
            (f for f in self.files if f.sha256 and not f.error and f.content_type == PDF), None
        )

    @property
    def downloads(self):
        """Stored attachments that are not PDFs (images): offered as downloads, never framed."""
        return [f for f in self.files if f.sha256 and not f.error and f.content_type != PDF]


def record_page(*, workspace: Workspace | int, pk: int) -> RecordPage | None:
    """The record page's data, or None when the record is not this workspace's."""
    record = record_detail_get(workspace=workspace, pk=pk)
    if record is None:
        return None
    proposal = record_current_proposal(record=record)
    postings = list(record_postings(record=record))
    return RecordPage(
        record=record,
        proposal=proposal,
        candidates=list(proposal.candidates.all()) if proposal else [],
        history=list(record_proposals(record=record)),
        decisions=list(record_decisions(record=record)),
        postings=postings,
        files=list(record_files(record=record)),
        timeline=record_timeline(record=record, postings=postings),
        accounts=record_ledger_accounts(workspace=workspace),
        posted=next((p for p in postings if p.state == "done"), None),
    )
