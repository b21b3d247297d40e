"""The accountant pages: every page for every role, actions through the services, messages,
input kept on validation errors, exports, the what-if replay, and flat query counts."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connectors.qonto.models import Posting
from connectors.quickbooks.models import RecordState, SourceFile, SourceRecord
from matching.models import Band, Proposal
from matching.services import record_propose
from review.models import Decision, DecisionKind
from review.selectors.whatif import DecidedCase, decided_history, whatif_replay
from tests.factories import SourceRecordFactory
from tests.review.pages import messages_html, queued, texts, url
from well.audit import Actor
from well.models import AuditEvent, Role, Workspace

pytestmark = pytest.mark.django_db


# --- helpers -------------------------------------------------------------------------------


def in_review(books, **kwargs):
    """A bill sent to review: upload as new (a vendor never seen), the invoice second."""
    books.invoice()
    bill = books.bill(
        amount="121.00", day="2025-01-17", vendor_id="999", vendor_name="Zeta", **kwargs
    )
    assert record_propose(record=bill).band == Band.REVIEW
    return bill


def refused(books):
    # The vendor's only invoice is a month later and a sixth smaller: not this bill, maybe.
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    bill = books.bill()
    assert record_propose(record=bill).band == Band.REFUSED
    return bill, entry


# --- every page, every role ----------------------------------------------------------------


PAGES = ["dashboard", "queue", "refused", "audit", "audit_csv", "settings"]


@pytest.mark.parametrize("role", ["owner", "accountant", "viewer"])
def test_every_page_answers_for_every_role(books, people, role):
    bill = in_review(books)
    client = people[role]
    for name in PAGES:
        assert client.get(url(books, name)).status_code == 200, name
    for name in ("record", "audit_pack"):
        assert client.get(url(books, name, record_id=bill.pk)).status_code == 200, name


def test_the_dashboard_counts_records_by_state_and_draws_its_charts(books, people):
    refused(books)
    page = people["owner"].get(url(books, "dashboard")).content.decode()
    assert "In review" in page and "Refused" in page and "Posted" in page
    assert page.count("<svg") == 3
    assert "QuickBooks Online" in page and "Qonto" in page


def test_the_queue_lists_records_in_review_with_actions_for_accountants_only(books, people):
    bill = in_review(books)
    for role, sees in (("accountant", True), ("viewer", False)):
        page = people[role].get(url(books, "queue")).content.decode()
        assert f'data-record="{bill.pk}"' in page
        assert ('data-action="approve"' in page) is sees
        assert "<kbd>j</kbd>" in page


def test_the_queue_filters_and_searches(books, people):
    in_review(books, doc="INV-77")
    client = people["owner"]
    assert "INV-77" in client.get(url(books, "queue") + "?q=INV-77").content.decode()
    assert "INV-77" not in client.get(url(books, "queue") + "?q=nothing").content.decode()
    page = client.get(url(books, "queue") + "?kind=Purchase&sort=amount").content.decode()
    assert "INV-77" not in page
    # A bad filter is ignored and said so, not a crash.
    page = client.get(url(books, "queue") + "?amount_min=abc").content.decode()
    assert "Some filters were ignored" in page and "INV-77" in page


def test_the_record_page_shows_fields_side_by_side_candidates_signals_and_timeline(books, people):
    bill = in_review(books, doc="INV-9")
    page = people["owner"].get(url(books, "record", record_id=bill.pk)).content.decode()
    assert "QuickBooks and Qonto, side by side" in page
    assert 'class="candidate proposed"' in page and "Pin this instead" in page
    assert 'class="sbar"' in page and "amount within 0.5%" in page
    assert "proposed:" in page and "auto-post from 85%" in page


def test_a_record_of_another_kind_or_workspace_is_not_found(books, other_books, people):
    account = SourceRecord.objects.get(workspace=books.workspace, entity_type="Account", qbo_id="7")
    theirs = other_books.bill()
    client = people["owner"]
    assert client.get(url(books, "record", record_id=account.pk)).status_code == 404
    assert client.get(url(books, "record", record_id=theirs.pk)).status_code == 404


# --- viewers cannot act --------------------------------------------------------------------


def _action_posts(books, bill, entry):
    return {
        "approve": (url(books, "approve", record_id=bill.pk), {}),
        "reject": (url(books, "reject", record_id=bill.pk), {}),
        "pin": (url(books, "pin", record_id=bill.pk), {"entry": str(entry.pk)}),
        "upload_as_new": (url(books, "upload_as_new", record_id=bill.pk), {}),
        "override": (url(books, "override", record_id=bill.pk), {"outcome": "reject", "note": "x"}),
        "bulk_approve": (url(books, "bulk_approve"), {"records": [bill.pk], "confirm": "on"}),
        "thresholds": (url(books, "thresholds"), {"review_threshold": 0.1, "auto_threshold": 0.2}),
        "member_role": (url(books, "member_role"), {"member": 1, "role": "owner"}),
    }


@pytest.mark.parametrize(
    "action",
    [
        "approve",
        "reject",
        "pin",
        "upload_as_new",
        "override",
        "bulk_approve",
        "thresholds",
        "member_role",
    ],
)
def test_a_viewer_cannot_act(books, people, action):
    bill = in_review(books)
    entry = books.invoice(amount_text="121.00", day="2025-02-20")
    target, data = _action_posts(books, bill, entry)[action]
    events = AuditEvent.objects.count()

    response = people["viewer"].post(target, data)

    assert response.status_code == 403
    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.IN_REVIEW
    assert not Decision.objects.exists() and not Posting.objects.exists()
    assert AuditEvent.objects.count() == events
    assert Workspace.objects.get(pk=books.workspace.pk).auto_threshold == 0.85


def test_the_record_page_hides_the_actions_from_a_viewer(books, people):
    bill = in_review(books)
    page = people["viewer"].get(url(books, "record", record_id=bill.pk)).content.decode()
    assert "deciding needs the accountant or owner role" in page
    assert url(books, "approve", record_id=bill.pk) not in page


# --- actions -------------------------------------------------------------------------------


def test_approving_posts_redirects_and_says_so(books, people):
    bill = in_review(books)
    response = people["accountant"].post(url(books, "approve", record_id=bill.pk), {"note": "ok"})
    assert response.status_code == 302
    assert response["Location"] == url(books, "record", record_id=bill.pk)
    assert "approved; it is being posted to Qonto" in texts(response)[0]
    decision = Decision.objects.get(record=bill)
    assert decision.kind == DecisionKind.APPROVE and decision.note == "ok"
    assert Posting.objects.filter(record=bill).count() == 1


def test_approving_with_edits_records_them(books, people):
    bill = in_review(books)
    response = people["owner"].post(
        url(books, "approve", record_id=bill.pk),
        {"invoice_number": "F-2025-1", "due_date": "2025-02-28", "ledger_account": "6251"},
    )
    assert response.status_code == 302
    decision = Decision.objects.get(record=bill)
    assert decision.edits["invoice_number"][1] == "F-2025-1"
    assert "ledger_account" in decision.edits


def test_a_validation_error_keeps_everything_typed(books, people):
    bill = in_review(books)
    response = people["owner"].post(
        url(books, "approve", record_id=bill.pk),
        {"invoice_number": "F-KEEP-ME", "due_date": "31/02/2025", "note": "my careful note"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="F-KEEP-ME"' in page and 'value="31/02/2025"' in page
    # A real date box: the form refuses an impossible date before any service runs.
    assert "my careful note" in page and "Enter a valid date." in page
    assert 'type="date"' in page
    assert "Nothing was decided" in page
    assert not Decision.objects.exists()


def test_an_override_needs_a_note_and_keeps_the_choice(books, people):
    bill = in_review(books)
    response = people["owner"].post(
        url(books, "override", record_id=bill.pk), {"outcome": "create", "note": ""}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Say why you override this decision." in page
    assert '<option value="create" selected>' in page
    assert not Decision.objects.exists()

    response = people["owner"].post(
        url(books, "override", record_id=bill.pk), {"outcome": "reject", "note": "wrong vendor"}
    )
    assert response.status_code == 302 and "override is recorded" in texts(response)[0]
    assert Decision.objects.get(record=bill).kind == DecisionKind.OVERRIDE


def test_rejecting_says_nothing_is_posted(books, people):
    bill = in_review(books)
    response = people["owner"].post(url(books, "reject", record_id=bill.pk))
    assert "rejected; nothing is posted" in texts(response)[0]
    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.REJECTED


def test_a_decision_the_state_forbids_is_an_error_message(books, people):
    bill = in_review(books)
    people["owner"].post(url(books, "reject", record_id=bill.pk))
    response = people["owner"].post(url(books, "reject", record_id=bill.pk))
    assert response.status_code == 302 and "cannot be" in texts(response)[-1]


def test_pinning_another_candidate_posts_it(books, people):
    bill = in_review(books)
    entry = Proposal.objects.get(record=bill, is_current=True).candidates.get(rank=2).target
    response = people["owner"].post(url(books, "pin", record_id=bill.pk), {"entry": str(entry.pk)})
    assert "pinned to the Qonto" in texts(response)[0]
    decision = Decision.objects.get(record=bill)
    assert decision.kind == DecisionKind.PIN and decision.right_target == entry


def test_a_refused_record_is_pinned_by_hand_from_the_refused_list(books, people):
    bill, entry = refused(books)
    page = people["owner"].get(url(books, "refused")).content.decode()
    assert f'data-record="{bill.pk}"' in page and "Choose the Qonto entry" in page
    response = people["owner"].post(
        url(books, "pin", record_id=bill.pk),
        {"entry": entry.qonto_id, "next": url(books, "refused")},
    )
    assert response["Location"] == url(books, "refused")
    assert Decision.objects.get(record=bill).right_target == entry
    assert Posting.objects.filter(record=bill).exists()


def test_another_workspaces_entry_cannot_be_pinned(books, other_books, people):
    bill = in_review(books)
    theirs = other_books.invoice()
    response = people["owner"].post(url(books, "pin", record_id=bill.pk), {"entry": str(theirs.pk)})
    assert "This Qonto entry is not one of this workspace's" in texts(response)[0]
    assert not Decision.objects.exists()


def test_upload_as_new(books, people):
    bill = in_review(books)
    response = people["owner"].post(url(books, "upload_as_new", record_id=bill.pk))
    assert "uploaded to Qonto as a new supplier invoice" in texts(response)[0]
    assert Decision.objects.get(record=bill).kind == DecisionKind.UPLOAD_AS_NEW


def test_htmx_from_the_queue_swaps_the_row(books, people):
    bill = in_review(books)
    response = people["owner"].post(
        url(books, "approve", record_id=bill.pk), {"from": "queue"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="row-{bill.pk}"' in page and "approved" in page


def test_bulk_approve_asks_for_confirmation_first(books, people):
    queued(books, 3)
    pks = list(
        SourceRecord.objects.filter(state=RecordState.IN_REVIEW).values_list("pk", flat=True)
    )
    client = people["owner"]

    response = client.post(url(books, "bulk_approve"), {"records": pks})
    assert response.status_code == 200 and "Approve 3 records?" in response.content.decode()
    assert not Decision.objects.exists()

    response = client.post(url(books, "bulk_approve"), {"records": pks, "confirm": "on"})
    assert response.status_code == 302
    assert "3 records approved" in texts(response)[0]
    assert Decision.objects.filter(kind=DecisionKind.APPROVE).count() == 3


def test_bulk_approve_without_selection_says_so(books, people):
    response = people["owner"].post(url(books, "bulk_approve"), {})
    assert "Select the records to approve first." in texts(response)[0]


# --- the PDF -------------------------------------------------------------------------------


def test_the_attachment_is_served_inline_under_a_strict_policy(books, people, settings, tmp_path):
    from django.core.files.base import ContentFile

    from tests.connectors.test_pdf import simple_pdf

    settings.MEDIA_ROOT = tmp_path
    bill = in_review(books)
    attachable = books.reference("Attachable", "900", {})
    stored = SourceFile(
        workspace=books.workspace, record=bill, attachable=attachable, file_name="inv.pdf"
    )
    stored.content_type = "application/pdf"
    stored.sha256 = "0" * 64
    content = simple_pdf()
    stored.file.save("inv.pdf", ContentFile(content), save=True)

    response = people["viewer"].get(url(books, "file", record_id=bill.pk, file_id=stored.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("inline")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response.content == content
    page = people["viewer"].get(url(books, "record", record_id=bill.pk)).content.decode()
    assert 'iframe class="pdf"' in page


# --- audit ---------------------------------------------------------------------------------


def test_the_timeline_tells_the_story_of_a_record(books, people):
    bill = in_review(books)
    people["owner"].post(url(books, "approve", record_id=bill.pk))
    page = people["viewer"].get(url(books, "record", record_id=bill.pk)).content.decode()
    timeline = page[page.index('id="timeline"') :]
    for words in ("proposed:", "approve", "posting"):
        assert words in timeline


def test_the_audit_log_filters(books, people):
    bill = in_review(books)
    people["owner"].post(url(books, "reject", record_id=bill.pk))
    page = people["owner"].get(url(books, "audit") + "?verb=record.reject").content.decode()
    assert "record.reject" in page and "record.proposed</code>" not in page


def test_the_csv_export_has_every_event(books, people):
    bill = in_review(books)
    people["owner"].post(url(books, "reject", record_id=bill.pk))
    response = people["viewer"].get(url(books, "audit_csv"))
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["Date", "Record", "Vendor", "Amount"]
    verbs = {row[6] for row in rows[1:]}
    assert {"Match proposed", "Rejected"} <= verbs
    assert len(rows) - 1 == AuditEvent.objects.filter(workspace=books.workspace).count()


def test_the_json_audit_pack_has_the_payload_hash_and_every_step(books, people):
    bill = in_review(books)
    SourceRecord.objects.filter(pk=bill.pk).update(payload_hash="ab" * 32)
    people["owner"].post(url(books, "approve", record_id=bill.pk))
    response = people["viewer"].get(url(books, "audit_pack", record_id=bill.pk))
    assert response["Content-Disposition"].startswith("attachment")
    pack = json.loads(response.content)
    assert pack["record"]["payload_hash"] == "ab" * 32
    assert pack["proposals"][0]["candidates"] and pack["decisions"][0]["kind"] == "approve"
    assert pack["postings"][0]["idempotency_key"]
    assert {"record.proposed", "record.approve"} <= {e["verb"] for e in pack["events"]}


# --- settings and what-if ------------------------------------------------------------------


def test_changing_the_thresholds(books, people):
    response = people["owner"].post(
        url(books, "thresholds"), {"review_threshold": "0.5", "auto_threshold": "0.9"}
    )
    assert response.status_code == 302 and "Thresholds saved" in texts(response)[0]
    workspace = Workspace.objects.get(pk=books.workspace.pk)
    assert (workspace.review_threshold, workspace.auto_threshold) == (0.5, 0.9)
    assert AuditEvent.objects.filter(verb="workspace.thresholds_changed").exists()


def test_wrong_thresholds_are_refused_and_kept(books, people):
    response = people["owner"].post(
        url(books, "thresholds"), {"review_threshold": "0.93", "auto_threshold": "0.61"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="0.93"' in page and 'value="0.61"' in page
    assert "cannot be above the auto-post threshold" in page
    assert Workspace.objects.get(pk=books.workspace.pk).auto_threshold == 0.85


def test_an_accountant_cannot_change_the_thresholds(books, people):
    response = people["accountant"].post(
        url(books, "thresholds"), {"review_threshold": "0.5", "auto_threshold": "0.9"}
    )
    assert response.status_code == 403


def _vendor(books, qbo_id: str = "41", name: str = "Algolia SAS") -> SourceRecord:
    return SourceRecordFactory(
        workspace=books.workspace,
        connection=books.qbo,
        entity_type="Vendor",
        qbo_id=qbo_id,
        payload={"Id": qbo_id, "DisplayName": name},
    )


def test_a_typed_name_in_a_message_is_isolated_and_escaped(books, people):
    """A right-to-left vendor name does not reorder the sentence around it (<bdi>), and a name
    that looks like markup stays text."""
    _vendor(books, name="شركة <b>نور</b>")
    response = people["owner"].post(
        url(books, "vendor_rule"), {"vendor": "41", "auto_threshold": "0.75", "note": "x"}
    )

    [message] = messages_html(response)
    assert message == "Rule saved for <bdi>شركة &lt;b&gt;نور&lt;/b&gt;</bdi>."


def test_an_owner_sets_a_vendor_rule_and_it_is_audited(books, people):
    from matching.models import VendorRule

    _vendor(books)
    response = people["owner"].post(
        url(books, "vendor_rule"),
        {"vendor": "41", "auto_threshold": "0.75", "note": "fixed monthly plan"},
    )

    assert response.status_code == 302 and "Rule saved for Algolia SAS" in texts(response)[0]
    rule = VendorRule.objects.get(workspace=books.workspace, vendor_qbo_id="41")
    assert (rule.auto_threshold, rule.never_auto, rule.note) == (0.75, False, "fixed monthly plan")
    assert AuditEvent.objects.filter(verb="vendor_rule.set").exists()
    assert "Algolia SAS" in people["owner"].get(url(books, "settings")).content.decode()


def test_a_wrong_vendor_rule_is_refused_and_the_input_kept(books, people):
    _vendor(books)
    response = people["owner"].post(
        url(books, "vendor_rule"), {"vendor": "41", "auto_threshold": "170", "note": "kept"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="170"' in page and 'value="kept"' in page


def test_an_accountant_cannot_set_a_vendor_rule(books, people):
    _vendor(books)
    response = people["accountant"].post(url(books, "vendor_rule"), {"vendor": "41"})

    assert response.status_code == 403


def test_an_owner_changes_a_members_role(books, people):
    from well.models import Membership

    member = Membership.objects.get(user__email="view@atelier.example")
    response = people["owner"].post(
        url(books, "member_role"), {"member": member.pk, "role": "accountant"}
    )
    assert "is now Accountant" in texts(response)[0]
    assert Membership.objects.get(pk=member.pk).role == Role.ACCOUNTANT


def test_whatif_replay_counts_auto_posted_and_later_changed():
    cases = [
        DecidedCase(0.95, False),
        DecidedCase(0.9, True),
        DecidedCase(0.8, False),
        DecidedCase(0.7, True),
        DecidedCase(0.5, False),
    ]
    points = whatif_replay(cases=cases, thresholds=[0.6, 0.85, 0.99])
    assert [(p.threshold, p.auto_posted, p.changed) for p in points] == [
        (0.6, 4, 2),
        (0.85, 2, 1),
        (0.99, 0, 0),
    ]


def test_whatif_replay_of_nothing_is_zero():
    assert whatif_replay(cases=[], thresholds=[0.5])[0].auto_posted == 0


def test_decided_history_marks_what_reviewers_changed(books, people):
    queued(books, 3)
    approved, rejected, pinned = SourceRecord.objects.filter(state=RecordState.IN_REVIEW)
    client = people["owner"]
    client.post(url(books, "approve", record_id=approved.pk))
    client.post(url(books, "reject", record_id=rejected.pk))
    client.post(url(books, "pin", record_id=pinned.pk), {"entry": str(books.invoice().pk)})
    assert Decision.objects.count() == 3

    cases = decided_history(workspace=books.workspace)
    assert sorted(c.changed for c in cases) == [False, True, True]


def test_the_settings_page_draws_the_whatif_chart_at_a_tried_threshold(books, people):
    bill = in_review(books)
    people["owner"].post(url(books, "reject", record_id=bill.pk))
    page = people["viewer"].get(url(books, "settings") + "?threshold=0.6").content.decode()
    assert "What-if: auto-posted and later changed" in page and "60% (tried)" in page


# --- query counts do not grow with rows ----------------------------------------------------


def _count(client, target) -> int:
    client.get(target)  # the first visit of a workspace saves it in the session: not a row cost
    with CaptureQueriesContext(connection) as captured:
        assert client.get(target).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "page,state,band",
    [
        ("queue", RecordState.IN_REVIEW, Band.REVIEW),
        ("refused", RecordState.REFUSED, Band.REFUSED),
    ],
)
def test_a_list_page_makes_as_many_queries_for_30_rows_as_for_3(
    books, people, django_assert_num_queries, page, state, band
):
    client = people["owner"]
    queued(books, 3, state=state, band=band)
    few = _count(client, url(books, page))
    queued(books, 27, state=state, band=band)
    with django_assert_num_queries(few):
        response = client.get(url(books, page))
    assert response.content.decode().count("data-record=") >= 25


def test_the_audit_log_makes_as_many_queries_for_30_rows_as_for_3(
    books, people, django_assert_num_queries
):
    client = people["owner"]
    queued(books, 3)
    few = _count(client, url(books, "audit"))
    queued(books, 27)
    with django_assert_num_queries(few):
        client.get(url(books, "audit"))


def test_the_dashboard_makes_as_many_queries_for_30_rows_as_for_3(
    books, people, django_assert_num_queries
):
    client = people["owner"]
    queued(books, 3)
    few = _count(client, url(books, "dashboard"))
    queued(books, 27)
    with django_assert_num_queries(few):
        client.get(url(books, "dashboard"))


def test_the_record_page_makes_a_bounded_number_of_queries(books, people):
    bill = in_review(books)
    few = _count(people["owner"], url(books, "record", record_id=bill.pk))
    for _ in range(10):
        SourceRecordFactory(
            workspace=books.workspace, connection=books.qbo, total_amount=Decimal(1)
        )
    assert _count(people["owner"], url(books, "record", record_id=bill.pk)) == few


def test_actions_are_audited_with_the_person(books, people):
    bill = in_review(books)
    people["accountant"].post(url(books, "reject", record_id=bill.pk))
    event = AuditEvent.objects.get(verb="record.reject")
    assert event.actor_label == "acc@atelier.example"
    assert Actor.user  # the pages pass Actor.user(request.user) to the services
