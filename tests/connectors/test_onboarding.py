"""The onboarding wizard: resumable at every step, the account mapping and its later use,
tenant isolation, and a mapping page whose query count does not grow with the accounts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from connectors import onboarding
from connectors.models import (
    BankAccountMapping,
    Connection,
    ConnectionStatus,
    Onboarding,
    Provider,
    SyncRun,
    SyncStatus,
)
from connectors.qonto.models import Posting, PostingState, QontoBankAccount, QontoEntry
from connectors.qonto.triggers import record_post
from connectors.quickbooks.models import RecordState, SourceRecord
from well.audit import Actor
from well.models import AuditEvent, Role, Workspace
from well.services import membership_add

pytestmark = pytest.mark.django_db

OWNER = "owner@onboarding.example"
MAIN_IBAN = "FR7616958000010000000000101"
RESERVE_IBAN = "FR7616958000010000000000202"


# --- builders ----------------------------------------------------------------------------------


def connect(workspace, provider: str) -> Connection:
    """A connected provider (the real OAuth flows are walked in tests/browser)."""
    connection, _ = Connection.objects.update_or_create(
        workspace=workspace,
        provider=provider,
        defaults={
            "status": ConnectionStatus.CONNECTED,
            "external_id": f"{provider}-{workspace.pk}",
            "refresh_token": "sealed",
            "connected_at": timezone.now(),
        },
    )
    return connection


def record(workspace, entity_type: str, qbo_id: str, payload: dict, **fields) -> SourceRecord:
    qbo = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    return SourceRecord.objects.create(
        workspace=workspace,
        connection=qbo,
        entity_type=entity_type,
        qbo_id=qbo_id,
        payload={"Id": qbo_id, **payload},
        **fields,
    )


def bank_account(workspace, qbo_id: str, number: str, name: str = "") -> SourceRecord:
    payload = {"Name": name or f"Bank {qbo_id}", "AccountType": "Bank", "AcctNum": number}
    return record(workspace, "Account", qbo_id, payload)


def qonto_account(workspace, qonto_id: str, iban: str, *, main: bool) -> QontoBankAccount:
    qonto = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    return QontoBankAccount.objects.create(
        workspace=workspace,
        connection=qonto,
        qonto_id=qonto_id,
        name=f"Qonto {qonto_id}",
        iban=iban,
        account_number=iban[-11:],
        main=main,
    )


def debit(workspace, qonto_id: str, bank: QontoBankAccount, amount: str, day: date) -> QontoEntry:
    qonto = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    return QontoEntry.objects.create(
        workspace=workspace,
        connection=qonto,
        kind="transaction",
        qonto_id=qonto_id,
        amount=-Decimal(amount),
        currency="EUR",
        date=day,
        side="debit",
        bank_account_id=bank.qonto_id,
    )


@pytest.fixture
def owner(make_user, client):
    user = make_user(OWNER)
    client.force_login(user)
    return user


def start(client, name: str = "Brasserie Lumière") -> Workspace:
    response = client.post(reverse("onboarding:new"), {"name": name})
    assert response.status_code == 302
    return Workspace.objects.get(name=name)


def wizard_lands_on(client, workspace) -> str:
    response = client.get(reverse("onboarding:wizard", args=[workspace.slug]))
    assert response.status_code == 302
    return response.url


def dashboard_lands_on(client, workspace) -> str:
    response = client.get(reverse("review:dashboard", args=[workspace.slug]), follow=True)
    return response.redirect_chain[-1][0] if response.redirect_chain else "dashboard"


def step_url(workspace, step: str) -> str:
    return reverse(f"onboarding:{step}", args=[workspace.slug])


def confirm_mapping(client, workspace, **fields):
    body = {"auto_threshold": "85", "default_expense_account": "", **fields}
    return client.post(step_url(workspace, "mapping"), body)


# --- the wizard, abandoned and resumed at each step ---------------------------------------------


def test_a_new_workspace_starts_the_wizard_at_connect_quickbooks(owner, client):
    workspace = start(client)

    assert workspace.memberships.get().user == owner
    assert Onboarding.objects.filter(workspace=workspace).exists()
    assert AuditEvent.objects.filter(workspace=workspace, verb="onboarding.started").exists()
    assert wizard_lands_on(client, workspace) == step_url(workspace, "quickbooks")
    page = client.get(step_url(workspace, "quickbooks")).content.decode()
    for said in ("never writes", "GET", "purchase orders", "tax codes", "attachments"):
        assert said in page, said
    assert 'name="next"' in page


def test_a_taken_name_gets_its_own_address_and_an_empty_name_is_refused(owner, client):
    first = start(client, "Atelier")
    second = client.post(reverse("onboarding:new"), {"name": "Atelier"})
    assert second.status_code == 302
    slugs = sorted(Workspace.objects.filter(name="Atelier").values_list("slug", flat=True))
    assert slugs == [first.slug, f"{first.slug}-2"]

    empty = client.post(reverse("onboarding:new"), {"name": "  "})
    assert empty.status_code == 400
    assert "Give your company" in empty.content.decode()
    assert Workspace.objects.filter(name="Atelier").count() == 2


def test_the_wizard_resumes_at_every_step_it_was_left(owner, client):
    workspace = start(client)
    # Left before step 1: the dashboard sends the owner back to the wizard.
    assert dashboard_lands_on(client, workspace) == step_url(workspace, "quickbooks")

    # Left after connecting QuickBooks, while Well was still reading the accounts.
    connect(workspace, Provider.QUICKBOOKS)
    assert wizard_lands_on(client, workspace) == step_url(workspace, "mapping")
    waiting = client.get(step_url(workspace, "mapping")).content.decode()
    assert "Well is reading your QuickBooks company" in waiting and "hx-trigger" in waiting
    bank_account(workspace, "35", MAIN_IBAN, "Compte principal")
    assert "Compte principal" in client.get(step_url(workspace, "mapping")).content.decode()
    assert dashboard_lands_on(client, workspace) == step_url(workspace, "mapping")

    # Left after confirming the mapping (Qonto not connected yet: pairing comes later).
    assert confirm_mapping(client, workspace).status_code == 302
    assert wizard_lands_on(client, workspace) == step_url(workspace, "qonto")
    assert dashboard_lands_on(client, workspace) == step_url(workspace, "qonto")
    qonto_page = client.get(step_url(workspace, "qonto")).content.decode()
    assert "supplier_invoice.write" in qonto_page and "supplier_invoice.read" in qonto_page
    assert "never posted twice" in qonto_page

    # Left after connecting Qonto, before the first sync: the dashboard no longer insists.
    qonto = connect(workspace, Provider.QONTO)
    assert wizard_lands_on(client, workspace) == step_url(workspace, "sync")
    assert dashboard_lands_on(client, workspace) == "dashboard"
    assert client.post(reverse("onboarding:sync_start", args=[workspace.slug])).status_code == 302
    queued = sorted(task.func() for task in OrmQ.objects.all())
    # The outbox too: postings made while the wizard ran waited for the start.
    assert queued == [
        "connectors.qonto.tasks.postings_send_task",
        "connectors.qonto.tasks.qonto_sync_task",
        "connectors.quickbooks.tasks.quickbooks_sync_task",
    ]
    # Starting twice queues nothing more.
    client.post(reverse("onboarding:sync_start", args=[workspace.slug]))
    assert OrmQ.objects.count() == 3

    # Left in the middle of the first sync: the page shows where it is.
    qbo = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    run = SyncRun.objects.create(
        workspace=workspace, connection=qbo, progress={"phase": "query", "entity": "Bill"}
    )
    bill = record(workspace, "Bill", "B1", {}, total_amount=Decimal("10"))
    progress = client.get(reverse("onboarding:sync_progress", args=[workspace.slug]))
    text = progress.content.decode()
    assert 'data-done="false"' in text and "hx-trigger" in text
    assert wizard_lands_on(client, workspace) == step_url(workspace, "sync")

    # The worker finishes: Qonto read, sync succeeded, every record proposed, postings sent.
    Connection.objects.filter(pk=qonto.pk).update(last_good_sync_at=timezone.now())
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncStatus.SUCCEEDED, finished_at=timezone.now()
    )
    SourceRecord.objects.filter(pk=bill.pk).update(state=RecordState.IN_REVIEW)
    done = client.get(reverse("onboarding:sync_progress", args=[workspace.slug])).content.decode()
    assert 'data-done="true"' in done and "The first sync is finished" in done
    assert wizard_lands_on(client, workspace) == step_url(workspace, "sync")
    assert onboarding.wizard_state_get(workspace=workspace).current_step == "done"


def test_progress_counts_records_per_kind_proposals_postings_and_estimates_time_left(owner, client):
    workspace = start(client)
    connect(workspace, Provider.QUICKBOOKS)
    connect(workspace, Provider.QONTO)
    Onboarding.objects.filter(workspace=workspace).update(
        mapping_confirmed_at=timezone.now(),
        first_sync_started_at=timezone.now() - timedelta(minutes=10),
    )
    qbo = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    SyncRun.objects.create(
        workspace=workspace,
        connection=qbo,
        status=SyncStatus.SUCCEEDED,
        started_at=timezone.now() - timedelta(minutes=9),
        finished_at=timezone.now(),
    )
    bills = [record(workspace, "Bill", f"B{i}", {}) for i in range(4)]
    record(workspace, "Vendor", "V1", {"DisplayName": "Orange"})
    SourceRecord.objects.filter(pk__in=[b.pk for b in bills[:2]]).update(state="posting")
    for i, bill in enumerate(bills[:2]):
        Posting.objects.create(
            workspace=workspace,
            record=bill,
            source_version="0",
            action="upload",
            idempotency_key=f"k{i}",
            state=PostingState.DONE if i == 0 else PostingState.READY,
            qonto_id="q" if i == 0 else "",
        )

    progress = onboarding.first_sync_progress_get(workspace=workspace)

    assert progress.pulled["Bill"] == 4 and progress.pulled["Vendor"] == 1
    assert (progress.proposed, progress.records) == (2, 4)
    assert (progress.postings_sent, progress.postings_total) == (1, 2)
    assert not progress.done and 0 < progress.fraction < 1
    assert progress.time_left is not None and progress.time_left > timedelta(0)
    page = client.get(step_url(workspace, "sync")).content.decode()
    assert "2 of 4" in page and "1 of 2" in page and "left" in page


# --- the account mapping ----------------------------------------------------------------------


@pytest.fixture
def mapped_workspace(owner, client):
    """QuickBooks and Qonto connected; QuickBooks's main bank account carries the main IBAN."""
    workspace = start(client)
    connect(workspace, Provider.QUICKBOOKS)
    connect(workspace, Provider.QONTO)
    main = qonto_account(workspace, "acc-main", MAIN_IBAN, main=True)
    reserve = qonto_account(workspace, "acc-reserve", RESERVE_IBAN, main=False)
    account = bank_account(workspace, "35", MAIN_IBAN[-11:], "Compte principal")
    return workspace, account, main, reserve


def purchase_paid_from(workspace, account, qbo_id: str, amount: str, day: date) -> SourceRecord:
    return record(
        workspace,
        "Purchase",
        qbo_id,
        {"AccountRef": {"value": account.qbo_id}, "PaymentType": "Cash"},
        total_amount=Decimal(amount),
        issue_date=day,
        currency="EUR",
        state=RecordState.APPROVED,
    )


def test_the_mapping_page_prefills_the_pairing_found_by_iban(mapped_workspace, client):
    workspace, _account, main, reserve = mapped_workspace
    page = client.get(step_url(workspace, "mapping")).content.decode()
    assert f'<option value="{main.pk}" selected>' in page
    assert f'<option value="{reserve.pk}" selected>' not in page
    assert "85% by default" in page and "refused list" in page and "Manual override" in page


def test_a_mapping_corrected_by_the_user_is_used_by_later_postings(mapped_workspace, client):
    workspace, account, main, reserve = mapped_workspace
    day = date(2026, 3, 14)
    # The same amount left both Qonto accounts that day: only the pairing tells them apart.
    debit(workspace, "tx-main", main, "42.50", day)
    debit(workspace, "tx-reserve", reserve, "42.50", day)
    before = purchase_paid_from(workspace, account, "P1", "42.50", day)
    assert record_post(record=before, actor=Actor.system("tests")).qonto_id == "tx-main"

    response = confirm_mapping(client, workspace, **{"bank_35": str(reserve.pk)})

    assert response.status_code == 302
    mapping = BankAccountMapping.objects.get(workspace=workspace, qbo_account_id="35")
    assert mapping.qonto_bank_account == reserve
    event = AuditEvent.objects.get(workspace=workspace, verb="onboarding.mapping_confirmed")
    assert event.after["pairings"] == {"35": "acc-reserve"} and event.before["pairings"] == {}
    later = purchase_paid_from(workspace, account, "P2", "42.50", day)
    assert record_post(record=later, actor=Actor.system("tests")).qonto_id == "tx-reserve"
    page = client.get(step_url(workspace, "mapping")).content.decode()
    assert f'<option value="{reserve.pk}" selected>' in page and "corrected by you" in page

    # Back to the automatic pairing: the IBAN decides again.
    reset = reverse("onboarding:bank_mapping_reset", args=[workspace.slug, account.pk])
    assert client.post(reset).status_code == 302
    assert not BankAccountMapping.objects.filter(workspace=workspace).exists()
    assert AuditEvent.objects.filter(verb="onboarding.bank_mapping_reset").count() == 1
    third = purchase_paid_from(workspace, account, "P3", "42.50", day)
    assert record_post(record=third, actor=Actor.system("tests")).qonto_id == "tx-main"


def test_the_threshold_and_default_ledger_account_are_saved_and_bad_values_change_nothing(
    mapped_workspace, client
):
    workspace, _account, _main, _reserve = mapped_workspace
    record(workspace, "Account", "60", {"Name": "Telecom", "AccountType": "Expense"})

    bad = confirm_mapping(client, workspace, auto_threshold="eighty")
    assert bad.status_code == 400 and "percentage" in bad.content.decode()
    too_low = confirm_mapping(client, workspace, auto_threshold="30")
    assert too_low.status_code == 400 and "below the review threshold" in too_low.content.decode()
    unknown = confirm_mapping(client, workspace, default_expense_account="999")
    assert unknown.status_code == 400
    assert not Onboarding.objects.get(workspace=workspace).mapping_confirmed_at

    ok = confirm_mapping(client, workspace, auto_threshold="90", default_expense_account="60")
    assert ok.status_code == 302
    workspace.refresh_from_db()
    assert workspace.auto_threshold == pytest.approx(0.90)
    assert AuditEvent.objects.filter(workspace=workspace, verb="workspace.thresholds_changed")
    assert Onboarding.objects.get(workspace=workspace).default_expense_account_qbo_id == "60"


# --- tenant isolation ----------------------------------------------------------------------------


def test_another_workspaces_ids_are_404_or_refused_and_change_nothing(
    mapped_workspace, client, make_user, make_workspace
):
    workspace, _account, _main, _reserve = mapped_workspace
    other = make_workspace("Other", owner=make_user("other@b.example"))
    connect(other, Provider.QUICKBOOKS)
    connect(other, Provider.QONTO)
    their_bank = qonto_account(other, "their-acc", RESERVE_IBAN, main=True)
    their_account = bank_account(other, "35", MAIN_IBAN[-11:])
    BankAccountMapping.objects.create(
        workspace=other, qbo_account_id="35", qonto_bank_account=their_bank
    )

    # Their slug: 404 on every wizard page; their account in our URL: 404.
    for step in ("wizard", "quickbooks", "mapping", "qonto", "sync", "sync_progress"):
        assert client.get(reverse(f"onboarding:{step}", args=[other.slug])).status_code == 404
    reset = reverse("onboarding:bank_mapping_reset", args=[workspace.slug, their_account.pk])
    assert client.post(reset).status_code == 404
    assert BankAccountMapping.objects.filter(workspace=other).count() == 1

    # Their Qonto account posted as our pairing: refused with a clear error, nothing stored.
    response = confirm_mapping(client, workspace, **{"bank_35": str(their_bank.pk)})
    assert response.status_code == 400
    assert "not one of this workspace" in response.content.decode()
    assert not BankAccountMapping.objects.filter(workspace=workspace).exists()
    assert not Onboarding.objects.get(workspace=workspace).mapping_confirmed_at


# --- query count ---------------------------------------------------------------------------------


def _grow(workspace, n: int, offset: int) -> None:
    for i in range(offset, offset + n):
        bank_account(workspace, f"9{i}", f"FR76000000000{i:05d}")
        qonto_account(workspace, f"acc-{i}", f"FR76000000000{i:05d}", main=False)
        record(workspace, "Account", f"6{i}", {"Name": f"Expense {i}", "AccountType": "Expense"})
        record(workspace, "TaxCode", f"T{i}", {"Name": f"TVA {i}"})
        record(workspace, "Vendor", f"V{i}", {"DisplayName": f"Vendor {i}"})
        record(
            workspace,
            "Bill",
            f"B{i}",
            {"Line": [{"AccountBasedExpenseLineDetail": {"AccountRef": {"value": f"6{i}"}}}]},
            vendor_qbo_id=f"V{i}",
            issue_date=date(2026, 1, 1),
        )


def test_the_mapping_page_query_count_does_not_grow_with_accounts(mapped_workspace, client):
    workspace, _account, main, reserve = mapped_workspace
    url = step_url(workspace, "mapping")
    _grow(workspace, 2, 0)
    BankAccountMapping.objects.create(
        workspace=workspace, qbo_account_id="90", qonto_bank_account=reserve
    )
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(db_connection) as few:
        assert client.get(url).status_code == 200
    _grow(workspace, 12, 2)
    BankAccountMapping.objects.create(
        workspace=workspace, qbo_account_id="95", qonto_bank_account=main
    )
    with CaptureQueriesContext(db_connection) as many:
        page = client.get(url)
    assert page.status_code == 200 and "Expense 13" in page.content.decode()
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


# --- when the first read or the first sync fails ------------------------------------------------


def test_a_failed_discovery_says_why_and_reads_again_on_request(owner, client):
    workspace = start(client)
    qbo = connect(workspace, Provider.QUICKBOOKS)
    now = timezone.now()
    SyncRun.objects.create(
        workspace=workspace,
        connection=qbo,
        status=SyncStatus.FAILED,
        started_at=now,
        finished_at=now,
        error="QuickBooks answered 503 three times",
    )
    page = client.get(step_url(workspace, "mapping")).content.decode()
    assert "QuickBooks answered 503 three times" in page and "Read QuickBooks now" in page

    response = client.post(reverse("onboarding:discover", args=[workspace.slug]))

    assert response.url == step_url(workspace, "mapping")
    assert [task.func() for task in OrmQ.objects.all()] == [
        "connectors.quickbooks.tasks.quickbooks_sync_task"
    ]
    assert AuditEvent.objects.filter(workspace=workspace, verb="connection.sync_requested")


def test_a_failed_first_sync_is_shown_and_a_later_revoked_grant_does_not_reopen_the_wizard(
    owner, client
):
    workspace = start(client)
    qbo = connect(workspace, Provider.QUICKBOOKS)
    connect(workspace, Provider.QONTO)
    Onboarding.objects.filter(workspace=workspace).update(
        mapping_confirmed_at=timezone.now(), first_sync_started_at=timezone.now()
    )
    SyncRun.objects.create(
        workspace=workspace,
        connection=qbo,
        status=SyncStatus.FAILED,
        finished_at=timezone.now() + timedelta(seconds=1),
        error="invalid_grant: reconnect QuickBooks",
    )
    progress = client.get(reverse("onboarding:sync_progress", args=[workspace.slug]))
    shown = progress.content.decode()
    assert "Reading QuickBooks failed:" in shown
    assert "invalid_grant: reconnect QuickBooks" in shown and 'id="retry-sync"' in shown
    assert " left" not in shown  # no estimate of the time left once a step has stopped

    Connection.objects.filter(pk=qbo.pk).update(status=ConnectionStatus.NEEDS_RECONNECT)
    assert onboarding.wizard_state_get(workspace=workspace).current_step == "quickbooks"
    assert dashboard_lands_on(client, workspace) == "dashboard"


def test_a_failed_qonto_read_shows_its_reason_and_retry_queues_only_what_did_not_finish(
    owner, client, make_user
):
    workspace = start(client)
    qbo = connect(workspace, Provider.QUICKBOOKS)
    qonto = connect(workspace, Provider.QONTO)
    started = timezone.now() - timedelta(minutes=1)
    Onboarding.objects.filter(workspace=workspace).update(
        mapping_confirmed_at=started, first_sync_started_at=started
    )
    for connection, status, error in (
        (qonto, SyncStatus.FAILED, "GET /v2/organization failed with HTTP 503"),
        (qbo, SyncStatus.SUCCEEDED, ""),
    ):
        SyncRun.objects.create(
            workspace=workspace,
            connection=connection,
            status=status,
            started_at=started + timedelta(seconds=1),
            finished_at=started + timedelta(seconds=2),
            error=error,
        )
    progress_url = reverse("onboarding:sync_progress", args=[workspace.slug])
    shown = client.get(progress_url).content.decode()
    assert "Stopped at: Reading Qonto." in shown and "HTTP 503" in shown
    assert 'id="retry-sync"' in shown and " left" not in shown

    accountant = make_user("acc@onboarding.example")
    membership_add(
        workspace=workspace, user=accountant, role=Role.ACCOUNTANT, actor=Actor.system("t")
    )
    other = client.__class__()
    other.force_login(accountant)
    assert "An owner of this workspace can retry it" in other.get(progress_url).content.decode()
    assert other.post(reverse("onboarding:sync_retry", args=[workspace.slug])).status_code == 403

    response = client.post(reverse("onboarding:sync_retry", args=[workspace.slug]))

    assert response.status_code == 302
    queued = sorted(task.func() for task in OrmQ.objects.all())
    assert queued == [
        "connectors.qonto.tasks.postings_send_task",
        "connectors.qonto.tasks.qonto_sync_task",
    ]  # QuickBooks succeeded since the start: not read again
    assert AuditEvent.objects.filter(verb="onboarding.first_sync_retried").count() == 1
    shown = client.get(progress_url).content.decode()
    assert 'id="sync-error"' not in shown  # the failure before the retry is history


def test_a_viewer_sees_the_mapping_but_cannot_confirm_it(mapped_workspace, client, make_user):
    workspace, _account, _main, reserve = mapped_workspace
    viewer = make_user("viewer@onboarding.example")
    membership_add(workspace=workspace, user=viewer, role=Role.VIEWER, actor=Actor.system("t"))
    client.force_login(viewer)

    page = client.get(step_url(workspace, "mapping")).content.decode()
    assert "Only an owner confirms the mapping" in page and "confirm-mapping" not in page
    assert confirm_mapping(client, workspace, bank_35=str(reserve.pk)).status_code == 403
    assert client.post(reverse("onboarding:sync_start", args=[workspace.slug])).status_code == 403
    assert not BankAccountMapping.objects.filter(workspace=workspace).exists()
    assert not Onboarding.objects.get(workspace=workspace).mapping_confirmed_at
