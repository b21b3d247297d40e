"""A stateful property test of the decision path: random sequences of decisions through every
path (the pages with the Django test client, the partner API with a key, bulk approve, the
automatic approval of a new version's proposal, Qonto answering the outbox), and after each step
the promises of docs/review.md:

- no Qonto entry is the target of two records' live links;
- every move of a record is a legal transition of the lifecycle;
- every state change has its audit event (the record's state is its last event's);
- nothing is decided on a stale proposal (one replaced since the page or the API read it, or one
  made for an older QuickBooks version).

On the code before the decision service, it finds the issue's bug (a refused bill approved and
linked to the invoice another bill holds) within its examples.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from connectors.lifecycle import transition_is_legal
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.qonto.posting_states import posting_claim, posting_finish
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.models import Band, Candidate, Proposal
from matching.services import records_propose
from review.models import Decision
from review.services import workspace_model_refit
from tests.factories import ProposalFactory
from well.api_auth import api_key_create
from well.audit import Actor
from well.models import AuditEvent, Role

pytestmark = pytest.mark.django_db

ENTRIES = 3
BILLS = 4
START = date(2025, 1, 10)


class DecisionPaths(RuleBasedStateMachine):
    """One workspace's books: a few Qonto invoices and bills proposed to them, decided at random."""

    def __init__(self, books, accountant, api_secret):
        super().__init__()
        self.books = books
        self.page = accountant
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_secret}")
        cache.clear()  # the API's throttle counters
        # Each example is a savepoint of the test's transaction, rolled back at teardown.
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.expected: dict[int, int | None] = {}  # record pk -> proposal id a step decided on
        self.versions: dict[int, str] = {}  # record pk -> its SyncToken when a step decided
        self.seen: set[int] = set()  # decisions already checked

    def teardown(self):
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    # --- the world ------------------------------------------------------------------------

    @initialize(
        days=st.lists(st.integers(0, 3), min_size=ENTRIES, max_size=ENTRIES),
        plan=st.lists(
            st.tuples(
                st.sampled_from([RecordState.IN_REVIEW, RecordState.REFUSED]),
                st.integers(-1, ENTRIES - 1),  # the proposed entry's index, -1: upload as new
            ),
            min_size=BILLS,
            max_size=BILLS,
        ),
    )
    def books_to_decide(self, days, plan):
        """Qonto invoices, and bills in review or refused, each proposed an entry (several may
        share one)."""
        self.entry_rows = [
            self.books.invoice(
                amount_text=f"{100 + 10 * i}.00", day=(START + timedelta(days=day)).isoformat()
            )
            for i, day in enumerate(days)
        ]
        made = []
        for i, (state, target) in enumerate(plan):
            amount = f"{100 + 10 * max(target, 0)}.00"
            bill = self.books.bill(
                qbo_id=str(600 + i), amount=amount, day=START.isoformat(), state=state
            )
            entry = self.entry_rows[target] if target >= 0 else None
            band = Band.REVIEW if state == RecordState.IN_REVIEW else Band.REFUSED
            proposal = ProposalFactory(
                record=bill,
                action="link" if entry else "create",
                target=entry,
                confidence=0.7 if band == Band.REVIEW else 0.4,
                band=band,
            )
            Candidate.objects.create(
                workspace=self.books.workspace,
                proposal=proposal,
                rank=1,
                action=proposal.action,
                target=entry,
                confidence=proposal.confidence,
            )
            AuditEvent.objects.create(
                workspace=self.books.workspace,
                actor_type="system",
                actor_label="tests",
                verb="record.proposed",
                object_type="quickbooks.bill",
                object_id=str(bill.pk),
                before={"state": "pulled"},
                after={"state": state, "proposal": proposal.pk},
            )
            made.append(bill)
        self.bill_rows = made

    # --- helpers --------------------------------------------------------------------------

    def bill(self, index: int) -> SourceRecord:
        return SourceRecord.objects.get(pk=self.bill_rows[index].pk)

    def current(self, record) -> Proposal | None:
        return Proposal.objects.filter(record=record, is_current=True).first()

    def proposal_to_post(self, record, stale: bool) -> int | None:
        """The proposal a page or a client shows: the current one, or an older one when stale."""
        older = (
            Proposal.objects.filter(record=record, is_current=False).order_by("-pk").first()
            if stale
            else None
        )
        shown = older or self.current(record)
        return shown.pk if shown else None

    def url(self, name: str, record) -> str:
        return reverse(
            f"review:{name}",
            kwargs={"workspace_slug": self.books.workspace.slug, "record_id": record.pk},
        )

    def asked(self, record, proposal_id):
        self.expected[record.pk] = proposal_id
        self.versions[record.pk] = record.sync_token

    # --- the paths ------------------------------------------------------------------------

    @rule(i=st.integers(0, BILLS - 1), stale=st.booleans())
    def page_approve(self, i, stale):
        record = self.bill(i)
        proposal_id = self.proposal_to_post(record, stale)
        self.asked(record, proposal_id)
        self.page.post(self.url("approve", record), {"proposal": proposal_id or ""})

    @rule(i=st.integers(0, BILLS - 1), stale=st.booleans())
    def page_reject(self, i, stale):
        record = self.bill(i)
        proposal_id = self.proposal_to_post(record, stale)
        self.asked(record, proposal_id)
        self.page.post(self.url("reject", record), {"proposal": proposal_id or "", "note": "no"})

    @rule(i=st.integers(0, BILLS - 1), j=st.integers(0, ENTRIES - 1), stale=st.booleans())
    def page_pin(self, i, j, stale):
        record = self.bill(i)
        proposal_id = self.proposal_to_post(record, stale)
        self.asked(record, proposal_id)
        entry = self.entry_rows[j]
        self.page.post(
            self.url("pin", record), {"entry": str(entry.pk), "proposal": proposal_id or ""}
        )

    @rule(i=st.integers(0, BILLS - 1))
    def page_upload_as_new(self, i):
        record = self.bill(i)
        self.asked(record, self.proposal_to_post(record, False))
        self.page.post(
            self.url("upload_as_new", record), {"proposal": self.expected[record.pk] or ""}
        )

    @rule(
        i=st.integers(0, BILLS - 1),
        outcome=st.sampled_from(["reject", "link", "create"]),
        j=st.integers(0, ENTRIES - 1),
    )
    def page_override(self, i, outcome, j):
        record = self.bill(i)
        self.asked(record, self.proposal_to_post(record, False))
        self.page.post(
            self.url("override", record),
            {
                "outcome": outcome,
                "entry": str(self.entry_rows[j].pk),
                "note": "the accountant knows better",
                "proposal": self.expected[record.pk] or "",
            },
        )

    @rule(i=st.integers(0, BILLS - 1), stale=st.booleans())
    def api_approve(self, i, stale):
        record = self.bill(i)
        proposal_id = self.proposal_to_post(record, stale)
        self.asked(record, proposal_id)
        self.api.post(
            f"/api/v1/records/{record.pk}/approve/", {"proposal": proposal_id}, format="json"
        )

    @rule(i=st.integers(0, BILLS - 1), j=st.integers(0, ENTRIES - 1))
    def api_pin(self, i, j):
        record = self.bill(i)
        self.asked(record, self.proposal_to_post(record, False))
        self.api.post(
            f"/api/v1/records/{record.pk}/pin/",
            {"entry": str(self.entry_rows[j].pk), "proposal": self.expected[record.pk]},
            format="json",
        )

    @rule(chosen=st.sets(st.integers(0, BILLS - 1), min_size=2))
    def bulk_approve(self, chosen):
        records = [self.bill(i) for i in sorted(chosen)]
        for record in records:
            self.asked(record, None)
        self.page.post(
            reverse("review:bulk_approve", kwargs={"workspace_slug": self.books.workspace.slug}),
            {"records": [r.pk for r in records], "confirm": "on"},
        )

    @rule(i=st.integers(0, BILLS - 1), day=st.integers(-6, 0))
    def quickbooks_sends_a_new_version(self, i, day):
        """A sync brings a new version of a bill: it is proposed again (and perhaps approved
        automatically, when its invoice is certain)."""
        record = self.bill(i)
        version = str(int(record.sync_token or "0") + 1)
        issue = START + timedelta(days=day)
        payload = {**record.payload, "SyncToken": version, "TxnDate": issue.isoformat()}
        SourceRecord.objects.filter(pk=record.pk).update(
            sync_token=version, issue_date=issue, payload=payload
        )
        self.expected.pop(record.pk, None)
        records_propose(records=[SourceRecord.objects.get(pk=record.pk)])

    @rule(ok=st.booleans())
    def qonto_answers(self, ok):
        """The outbox worker: Qonto accepts (or refuses) what was queued."""
        for posting in posting_claim(limit=3, workspace_ids=[self.books.workspace.pk]):
            if ok:
                qonto_id = posting.qonto_id or f"created-{posting.pk}"
                posting_finish(
                    posting=posting,
                    state=PostingState.DONE,
                    outcome="linked" if posting.action == PostingAction.LINK else "created",
                    qonto_id=qonto_id,
                    target_kind=posting.target_kind or "invoice",
                )
            else:
                posting_finish(posting=posting, state=PostingState.FAILED, message="Qonto said no")

    # --- the promises ---------------------------------------------------------------------

    @invariant()
    def a_qonto_entry_has_at_most_one_live_link(self):
        holders = defaultdict(set)
        links = (
            Posting.objects.filter(workspace=self.books.workspace, action=PostingAction.LINK)
            .exclude(state=PostingState.FAILED)
            .values_list("qonto_id", "record_id")
        )
        for qonto_id, record_id in links:
            holders[qonto_id].add(record_id)
        labels = {
            pk: f"Bill {qbo}"
            for pk, qbo in SourceRecord.objects.filter(workspace=self.books.workspace).values_list(
                "pk", "qbo_id"
            )
        }
        twice = {q: sorted(labels[r] for r in rs) for q, rs in holders.items() if len(rs) > 1}
        assert not twice, f"Qonto entries linked to two records: {twice}"

    @invariant()
    def every_move_is_legal_and_audited(self):
        last: dict[str, str] = {}
        events = AuditEvent.objects.filter(
            workspace=self.books.workspace, verb__startswith="record."
        ).order_by("created_at", "id")
        for event in events:
            before = (event.before or {}).get("state")
            after = (event.after or {}).get("state")
            if before is None or after is None:
                continue
            assert transition_is_legal(before, after), f"{event.verb}: {before} -> {after}"
            last[event.object_id] = after
        for record in SourceRecord.objects.filter(workspace=self.books.workspace):
            if record.entity_type != "Bill":
                continue
            assert last.get(str(record.pk)) == record.state, (
                f"Bill {record.qbo_id} is {record.state} but its last event says "
                f"{last.get(str(record.pk))}"
            )

    @invariant()
    def nothing_is_decided_on_a_stale_proposal(self):
        for decision in Decision.objects.filter(workspace=self.books.workspace).select_related(
            "proposal"
        ):
            if decision.pk in self.seen:
                continue
            self.seen.add(decision.pk)
            wanted = self.expected.get(decision.record_id)
            if wanted is not None:
                assert decision.proposal_id == wanted, (
                    f"{decision.kind} on proposal {decision.proposal_id}, the page showed {wanted}"
                )
            if decision.kind == "approve" and decision.proposal is not None:
                version = self.versions.get(decision.record_id)
                assert decision.proposal.record_version == version, (
                    f"approved proposal of version {decision.proposal.record_version}, "
                    f"the record was at {version}"
                )


@pytest.fixture
def accountant_page(books, make_user):
    user, _ = books.member(make_user, "acc@atelier.example", Role.ACCOUNTANT)
    client = Client()
    client.force_login(user)
    return client


def test_every_decision_path_keeps_the_same_promises(books, accountant_page):
    _, secret = api_key_create(
        workspace=books.workspace,
        name="partner",
        scopes=["read", "decide"],
        actor=Actor.system("tests"),
    )
    # The workspace's model, fitted once: each example's proposals use it.
    workspace_model_refit(workspace=books.workspace)
    run_state_machine_as_test(
        lambda: DecisionPaths(books, accountant_page, secret),
        settings=settings(
            max_examples=60,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
