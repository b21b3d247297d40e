"""The onboarding wizard (issue 10): services and selectors for a new workspace's three steps.

1. connect QuickBooks, 2. map the accounts, 3. connect Qonto, then the first sync. The current
step is derived from the connections and the `Onboarding` row, so the wizard resumes anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django_q.models import Task

from connectors.dispatch import SYNC_TASKS, sync_enqueue
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
from connectors.qonto.outbox import postings_send_soon
from connectors.qonto.selectors import qonto_bank_account_for, qonto_bank_account_match
from connectors.quickbooks.models import DOCUMENT_KINDS, RecordState, SourceRecord
from connectors.quickbooks.sync import CDC_KINDS
from well import formats
from well.audit import Actor, audit_event_record
from well.models import Workspace
from well.services import workspace_create, workspace_thresholds_update

STEPS = ("quickbooks", "mapping", "qonto", "sync", "done")
# Wizard steps during which the dashboard sends the owner back to the wizard.
SETUP_STEPS = ("quickbooks", "mapping", "qonto")
# What the first sync reads, in the order the QuickBooks sync reads it.
FIRST_SYNC_KINDS = tuple(CDC_KINDS)
# Ledger accounts "in use" are read from this many of the newest bills and purchases.
LEDGER_SAMPLE = 2000
OPEN_POSTING_STATES = (PostingState.READY, PostingState.IN_FLIGHT, PostingState.UNKNOWN)


# --- Starting a workspace --------------------------------------------------------------------


def _free_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    taken = set(Workspace.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def workspace_onboarding_start(*, name: str, user, language: str = "") -> Workspace:
    """A new workspace owned by `user`, with its wizard started, in the creator's language."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [_("Give your company's name.")]})
    if len(name) > 200:
        raise ValidationError({"name": [_("Keep the name under 200 characters.")]})
    actor = Actor.user(user)
    workspace = workspace_create(
        name=name, slug=_free_slug(name), owner=user, actor=actor, language=language
    )
    onboarding = Onboarding.objects.create(workspace=workspace)
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="onboarding.started",
        obj=onboarding,
        after={"workspace": workspace.slug},
    )
    return workspace


def onboarding_get(*, workspace: Workspace) -> Onboarding | None:
    return Onboarding.objects.for_workspace(workspace).first()


def _onboarding_locked(workspace: Workspace) -> Onboarding:
    """The workspace's row, created for a workspace made before the wizard existed."""
    Onboarding.objects.get_or_create(workspace=workspace)
    return Onboarding.objects.select_for_update().get(workspace=workspace)


# --- Where the wizard is -----------------------------------------------------------------------


@dataclass
class WizardState:
    quickbooks: Connection | None
    qonto: Connection | None
    onboarding: Onboarding | None
    first_sync_done: bool

    @property
    def quickbooks_connected(self) -> bool:
        return self.quickbooks is not None and self.quickbooks.status == ConnectionStatus.CONNECTED

    @property
    def qonto_connected(self) -> bool:
        return self.qonto is not None and self.qonto.status == ConnectionStatus.CONNECTED

    @property
    def mapping_confirmed(self) -> bool:
        return self.onboarding is not None and self.onboarding.mapping_confirmed_at is not None

    @property
    def current_step(self) -> str:
        if not self.quickbooks_connected:
            return "quickbooks"
        if not self.mapping_confirmed:
            return "mapping"
        if not self.qonto_connected:
            return "qonto"
        if not self.first_sync_done:
            return "sync"
        return "done"


def wizard_state_get(*, workspace: Workspace) -> WizardState:
    connections = {c.provider: c for c in Connection.objects.for_workspace(workspace)}
    onboarding = onboarding_get(workspace=workspace)
    state = WizardState(
        quickbooks=connections.get(Provider.QUICKBOOKS),
        qonto=connections.get(Provider.QONTO),
        onboarding=onboarding,
        first_sync_done=False,
    )
    if state.current_step == "sync":
        state.first_sync_done = first_sync_progress_get(workspace=workspace, state=state).done
    return state


def onboarding_redirect_due(*, workspace: Workspace) -> bool:
    """Whether the dashboard should open the wizard: it was started and a step is left to do.

    Workspaces set up before the wizard existed (no Onboarding row) are never redirected, nor
    is one whose first sync has started: a grant revoked later is the connections page's
    business (needs reconnect), not the wizard's.
    """
    onboarding = onboarding_get(workspace=workspace)
    if onboarding is None or onboarding.first_sync_started_at is not None:
        return False
    return wizard_state_get(workspace=workspace).current_step in SETUP_STEPS


def discovery_run_get(*, workspace: Workspace) -> SyncRun | None:
    """The newest QuickBooks sync run, to say why the mapping step is still waiting."""
    return (
        SyncRun.objects.for_workspace(workspace)
        .filter(connection__provider=Provider.QUICKBOOKS)
        .order_by("-started_at")
        .first()
    )


# --- Step 2: what Well discovered ---------------------------------------------------------------


@dataclass(frozen=True)
class LedgerAccount:
    qbo_id: str
    name: str
    account_type: str
    uses: int


@dataclass(frozen=True)
class VendorHistory:
    qbo_id: str
    name: str
    bills: int
    last_bill: object


@dataclass(frozen=True)
class BankPairing:
    """One QuickBooks bank account, the automatic Qonto pairing and the user's choice."""

    account: SourceRecord
    automatic: QontoBankAccount | None
    chosen: BankAccountMapping | None

    @property
    def qbo_id(self) -> str:
        return self.account.qbo_id

    @property
    def name(self) -> str:
        return str(self.account.payload.get("Name") or f"Account {self.account.qbo_id}")

    @property
    def number(self) -> str:
        return str(self.account.payload.get("AcctNum") or "")

    @property
    def effective(self) -> QontoBankAccount | None:
        return self.chosen.qonto_bank_account if self.chosen else self.automatic

    @property
    def corrected(self) -> bool:
        return self.chosen is not None and self.chosen.qonto_bank_account_id != (
            self.automatic.pk if self.automatic else None
        )


@dataclass
class Discovery:
    bank_pairings: list[BankPairing] = field(default_factory=list)
    ledger_accounts: list[LedgerAccount] = field(default_factory=list)
    tax_codes: list[dict] = field(default_factory=list)
    vendors: list[VendorHistory] = field(default_factory=list)
    vendors_total: int = 0
    vendors_with_history: int = 0
    qonto_accounts: list[QontoBankAccount] = field(default_factory=list)
    qonto_invoices: dict[str, int] = field(default_factory=dict)

    @property
    def discovered(self) -> bool:
        """QuickBooks's accounts have been read (the first sync reads lists first)."""
        return bool(self.bank_pairings or self.ledger_accounts)


def _live(workspace: Workspace, entity_type: str):
    return SourceRecord.objects.for_workspace(workspace).filter(
        entity_type=entity_type, deleted=False
    )


def bank_pairings_get(
    *, workspace: Workspace, banks: list[QontoBankAccount] | None = None
) -> list[BankPairing]:
    """Every QuickBooks bank account with its pairing; three queries whatever the count."""
    if banks is None:
        banks = list(QontoBankAccount.objects.for_workspace(workspace).order_by("-main", "name"))
    chosen = {
        m.qbo_account_id: m
        for m in BankAccountMapping.objects.for_workspace(workspace).select_related(
            "qonto_bank_account"
        )
    }
    accounts = _live(workspace, "Account").filter(payload__AccountType="Bank").order_by("qbo_id")
    return [
        BankPairing(
            account=account,
            automatic=qonto_bank_account_match(account_payload=account.payload, banks=banks),
            chosen=chosen.get(account.qbo_id),
        )
        for account in accounts
    ]


def _account_refs(payload: dict) -> list[str]:
    """The ledger accounts a bill or purchase books its lines on."""
    refs = []
    for line in payload.get("Line") or []:
        detail = (line or {}).get("AccountBasedExpenseLineDetail") or {}
        ref = (detail.get("AccountRef") or {}).get("value")
        if ref:
            refs.append(str(ref))
    return refs


def discovery_get(*, workspace: Workspace) -> Discovery:
    """What Well found in QuickBooks and Qonto, for the mapping step (constant query count)."""
    banks = list(QontoBankAccount.objects.for_workspace(workspace).order_by("-main", "name"))
    found = Discovery(
        bank_pairings=bank_pairings_get(workspace=workspace, banks=banks), qonto_accounts=banks
    )
    uses: Counter[str] = Counter()
    sample = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type__in=("Bill", "Purchase"), deleted=False)
        .order_by("-last_updated_at")
        .values_list("payload", flat=True)
    )
    for payload in sample[:LEDGER_SAMPLE]:
        uses.update(_account_refs(payload or {}))
    accounts = _live(workspace, "Account").filter(qbo_id__in=list(uses))
    found.ledger_accounts = sorted(
        (
            LedgerAccount(
                qbo_id=a.qbo_id,
                name=str(a.payload.get("Name") or a.qbo_id),
                account_type=str(a.payload.get("AccountType") or ""),
                uses=uses[a.qbo_id],
            )
            for a in accounts
        ),
        key=lambda a: (-a.uses, a.name),
    )
    found.tax_codes = [
        {
            "qbo_id": tax.qbo_id,
            "name": tax.payload.get("Name", ""),
            "description": tax.payload.get("Description", ""),
            "active": tax.payload.get("Active", True),
        }
        for tax in _live(workspace, "TaxCode").order_by("qbo_id")
    ]
    vendor_bills = {
        row["vendor_qbo_id"]: row
        for row in _live(workspace, "Bill")
        .exclude(vendor_qbo_id="")
        .values("vendor_qbo_id")
        .annotate(n=Count("id"), last=Max("issue_date"))
    }
    vendors = (
        _live(workspace, "Vendor").filter(qbo_id__in=list(vendor_bills)).only("qbo_id", "payload")
    )
    found.vendors = sorted(
        (
            VendorHistory(
                qbo_id=v.qbo_id,
                name=str(v.payload.get("DisplayName") or v.qbo_id),
                bills=vendor_bills[v.qbo_id]["n"],
                last_bill=vendor_bills[v.qbo_id]["last"],
            )
            for v in vendors
        ),
        key=lambda v: (-v.bills, v.name),
    )
    found.vendors_with_history = len(found.vendors)
    found.vendors = found.vendors[:20]
    found.vendors_total = _live(workspace, "Vendor").count()
    found.qonto_invoices = dict(
        QontoEntry.objects.for_workspace(workspace)
        .filter(kind="supplier_invoice")
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return found


# --- Step 2: confirming the mapping ---------------------------------------------------------------


def _mapping_public(workspace: Workspace) -> dict:
    return {
        m.qbo_account_id: (m.qonto_bank_account.qonto_id if m.qonto_bank_account else None)
        for m in BankAccountMapping.objects.for_workspace(workspace).select_related(
            "qonto_bank_account"
        )
    }


@transaction.atomic
def mapping_confirm(
    *,
    workspace: Workspace,
    pairings: dict[str, str],
    default_expense_account_qbo_id: str,
    auto_threshold: float,
    actor: Actor,
) -> Onboarding:
    """Store the user's pairings, default ledger account and auto-post threshold.

    `pairings` maps a QuickBooks bank Account Id to this workspace's QontoBankAccount pk, or ""
    for "not a Qonto account"; accounts left out keep the automatic pairing. Nothing is stored
    unless every value checks out.
    """
    onboarding = _onboarding_locked(workspace)
    bank_ids = set(
        _live(workspace, "Account")
        .filter(payload__AccountType="Bank")
        .values_list("qbo_id", flat=True)
    )
    banks = {str(b.pk): b for b in QontoBankAccount.objects.for_workspace(workspace)}
    errors: dict[str, list[str]] = {}
    for qbo_id, bank_pk in pairings.items():
        if qbo_id not in bank_ids:
            errors.setdefault("pairings", []).append(
                _("QuickBooks account %(id)s is not a bank account of this workspace.")
                % {"id": qbo_id}
            )
        elif bank_pk and bank_pk not in banks:
            errors.setdefault("pairings", []).append(
                _(
                    "The Qonto account chosen for QuickBooks account %(id)s is not one of "
                    "this workspace's Qonto accounts."
                )
                % {"id": qbo_id}
            )
    if default_expense_account_qbo_id and not (
        _live(workspace, "Account").filter(qbo_id=default_expense_account_qbo_id).exists()
    ):
        errors["default_expense_account"] = [_("Choose one of your QuickBooks ledger accounts.")]
    if not 0 < auto_threshold <= 1:
        errors["auto_threshold"] = [_("Give an auto-post threshold between 1 % and 100 %.")]
    elif auto_threshold < workspace.review_threshold:
        errors["auto_threshold"] = [
            _("The auto-post threshold cannot be below the review threshold (%(review)s).")
            % {"review": formats.percent(workspace.review_threshold)}
        ]
    if errors:
        raise ValidationError(errors)

    before = {
        "pairings": _mapping_public(workspace),
        "default_expense_account": onboarding.default_expense_account_qbo_id,
        "auto_threshold": workspace.auto_threshold,
    }
    now = timezone.now()
    for qbo_id, bank_pk in pairings.items():
        BankAccountMapping.objects.update_or_create(
            workspace=workspace,
            qbo_account_id=qbo_id,
            defaults={"qonto_bank_account": banks.get(bank_pk), "confirmed_at": now},
        )
    if auto_threshold != workspace.auto_threshold:
        workspace_thresholds_update(
            workspace=workspace,
            auto_threshold=auto_threshold,
            review_threshold=workspace.review_threshold,
            actor=actor,
        )
    onboarding.default_expense_account_qbo_id = default_expense_account_qbo_id
    onboarding.mapping_confirmed_at = now
    onboarding.save(update_fields=["default_expense_account_qbo_id", "mapping_confirmed_at"])
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="onboarding.mapping_confirmed",
        obj=onboarding,
        before=before,
        after={
            "pairings": _mapping_public(workspace),
            "default_expense_account": default_expense_account_qbo_id,
            "auto_threshold": auto_threshold,
        },
    )
    return onboarding


@transaction.atomic
def bank_mapping_reset(*, workspace: Workspace, account: SourceRecord, actor: Actor) -> bool:
    """Forget the user's pairing of one QuickBooks bank account: the automatic one applies."""
    mapping = (
        BankAccountMapping.objects.for_workspace(workspace)
        .filter(qbo_account_id=account.qbo_id)
        .select_related("qonto_bank_account")
        .first()
    )
    if mapping is None:
        return False
    before = {
        account.qbo_id: mapping.qonto_bank_account.qonto_id if mapping.qonto_bank_account else None
    }
    mapping.delete()
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="onboarding.bank_mapping_reset",
        object_type="connectors.bankaccountmapping",
        object_id=account.qbo_id,
        before=before,
        after={account.qbo_id: "automatic"},
    )
    return True


def purchase_qonto_bank_account(*, record: SourceRecord) -> QontoBankAccount | None:
    """The Qonto account a QuickBooks purchase was paid from: its account's pairing."""
    ref = str((record.payload.get("AccountRef") or {}).get("value") or "")
    if not ref:
        return None
    account = _live(record.workspace_id, "Account").filter(qbo_id=ref).first()
    if account is None or account.payload.get("AccountType") != "Bank":
        return None
    return qonto_bank_account_for(account=account)


# --- The first sync -----------------------------------------------------------------------------


@transaction.atomic
def first_sync_start(*, workspace: Workspace, actor: Actor) -> bool:
    """Queue the first full round (read Qonto, sync QuickBooks); False if already started."""
    onboarding = _onboarding_locked(workspace)
    if onboarding.first_sync_started_at is not None:
        return False
    connections = {
        c.provider: c
        for c in Connection.objects.for_workspace(workspace).filter(
            status=ConnectionStatus.CONNECTED
        )
    }
    if set(connections) != {Provider.QUICKBOOKS, Provider.QONTO}:
        raise ValidationError(_("Connect QuickBooks and Qonto before the first sync."))
    onboarding.first_sync_started_at = timezone.now()
    onboarding.save(update_fields=["first_sync_started_at"])
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="onboarding.first_sync_started",
        obj=onboarding,
        after={"started_at": onboarding.first_sync_started_at},
    )
    # Qonto first, so the QuickBooks records are matched against what Qonto already holds.
    sync_enqueue(connection=connections[Provider.QONTO], trigger="onboarding")
    sync_enqueue(connection=connections[Provider.QUICKBOOKS], trigger="onboarding")
    # Postings made while the wizard ran waited for this moment (posting._connected_workspaces).
    postings_send_soon()
    return True


@dataclass(frozen=True)
class StepFailure:
    """A step of the first sync that stopped, and why (shown with a Retry button)."""

    step: str  # "qonto" or "quickbooks"
    title: str
    reason: str
    at: datetime | None
    # Retrying cannot help: the connection must be reconnected first.
    needs_reconnect: bool = False


def _task_failure(connection: Connection, since: datetime) -> Task | None:
    """The newest failed django-q2 task of this connection's sync since `since`, if any.

    A task that dies before its run is recorded (a crash, a worker timeout) leaves no failed
    run behind; django-q2 keeps the failure under the task name `sync_enqueue` gave it.
    """
    sync_task = SYNC_TASKS[connection.provider]
    return (
        Task.objects.filter(
            name=f"{sync_task.name_prefix} {connection.pk}"[:100],
            func=sync_task.func,
            success=False,
            started__gte=since,
        )
        .order_by("-started")
        .first()
    )


def _step_failure(
    *,
    step: str,
    title: str,
    connection: Connection | None,
    run: SyncRun | None,
    since: datetime,
) -> StepFailure | None:
    """Why this provider's part of the first sync stopped, or None if it did not."""
    if connection is None:
        return None
    if connection.status != ConnectionStatus.CONNECTED:
        return StepFailure(
            step=step,
            title=title,
            reason=connection.last_error or _("The connection must be reconnected."),
            at=connection.last_error_at,
            needs_reconnect=True,
        )
    if run is not None and run.started_at < since:
        run = None  # failed before the last retry: the retry queued this step again
    if run is not None and run.status == SyncStatus.FAILED:
        return StepFailure(
            step=step, title=title, reason=run.error or _("No reason was given."), at=run.started_at
        )
    if run is None or run.status != SyncStatus.RUNNING:
        task = _task_failure(connection, since)
        if task is not None and (run is None or task.started >= run.started_at):
            last_line = str(task.result or "").strip().splitlines()[-1:] or [""]
            return StepFailure(
                step=step,
                title=title,
                reason=last_line[0][:300] or _("The task failed without a message."),
                at=task.started,
            )
    return None


@transaction.atomic
def first_sync_retry(*, workspace: Workspace, actor: Actor) -> list[str]:
    """Queue again the parts of the first sync that have not finished; the providers queued.

    Harmless when pressed twice: each sync takes its connection's lock, and a finished part
    (Qonto read, QuickBooks synced since the start) is not queued again.
    """
    onboarding = _onboarding_locked(workspace)
    if onboarding.first_sync_started_at is None:
        raise ValidationError(_("The first sync has not started yet."))
    progress = first_sync_progress_get(workspace=workspace)
    connections = {
        c.provider: c
        for c in Connection.objects.for_workspace(workspace).filter(
            status=ConnectionStatus.CONNECTED
        )
    }
    queued = []
    if not progress.qonto_read and Provider.QONTO in connections:
        sync_enqueue(connection=connections[Provider.QONTO], trigger="onboarding")
        queued.append(Provider.QONTO)
    synced = progress.run is not None and progress.run.status == SyncStatus.SUCCEEDED
    if not synced and Provider.QUICKBOOKS in connections:
        sync_enqueue(connection=connections[Provider.QUICKBOOKS], trigger="onboarding")
        queued.append(Provider.QUICKBOOKS)
    postings_send_soon()
    onboarding.first_sync_retried_at = timezone.now()
    onboarding.save(update_fields=["first_sync_retried_at"])
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="onboarding.first_sync_retried",
        obj=onboarding,
        before={"failure": progress.failure.reason if progress.failure else ""},
        after={"queued": queued, "retried_at": onboarding.first_sync_retried_at},
    )
    return queued


@dataclass
class FirstSyncProgress:
    started_at: datetime | None
    pulled: dict[str, int]
    run: SyncRun | None
    qonto_read: bool
    records: int
    unproposed: int
    postings_total: int
    postings_sent: int
    postings_open: int
    done: bool
    fraction: float
    time_left: timedelta | None
    failure: StepFailure | None = None

    @property
    def proposed(self) -> int:
        return self.records - self.unproposed

    @property
    def percent(self) -> int:
        return round(self.fraction * 100)

    @property
    def time_left_text(self) -> str:
        if self.time_left is None:
            return ""
        minutes = round(self.time_left.total_seconds() / 60)
        if minutes < 1:
            return "less than a minute"
        if minutes < 60:
            return f"{minutes} minute{'s' if minutes > 1 else ''}"
        return f"{minutes // 60} h {minutes % 60:02d} min"


def first_sync_progress_get(
    *, workspace: Workspace, state: WizardState | None = None
) -> FirstSyncProgress:
    """Where the first sync is, from the rows themselves: records per kind, proposals, postings.

    The estimate of the time left extrapolates the time spent over the share done: the sync's
    kinds in the order it reads them, then proposals, then postings.
    """
    onboarding = state.onboarding if state else onboarding_get(workspace=workspace)
    started = onboarding.first_sync_started_at if onboarding else None
    qonto = (
        state.qonto
        if state
        else Connection.objects.for_workspace(workspace).filter(provider=Provider.QONTO).first()
    )
    pulled = dict(
        SourceRecord.objects.for_workspace(workspace)
        .filter(deleted=False)
        .values_list("entity_type")
        .annotate(n=Count("id"))
        .values_list("entity_type", "n")
    )
    quickbooks = (
        state.quickbooks
        if state
        else Connection.objects.for_workspace(workspace)
        .filter(provider=Provider.QUICKBOOKS)
        .first()
    )
    # A failure before the last retry is history; the runs themselves count from the start.
    retried = onboarding.first_sync_retried_at if onboarding else None
    since = max(started, retried) if started and retried else started
    runs = SyncRun.objects.for_workspace(workspace).exclude(status=SyncStatus.SKIPPED)
    if started:
        runs = runs.filter(started_at__gte=started - timedelta(seconds=1))
    run = runs.filter(connection__provider=Provider.QUICKBOOKS).order_by("-started_at").first()
    qonto_run = runs.filter(connection__provider=Provider.QONTO).order_by("-started_at").first()
    matched = SourceRecord.objects.for_workspace(workspace).filter(
        entity_type__in=DOCUMENT_KINDS, deleted=False, errored=False
    )
    proposals = matched.aggregate(
        records=Count("id"), unproposed=Count("id", filter=Q(state=RecordState.PULLED))
    )
    unproposed = proposals["unproposed"]
    postings = Posting.objects.for_workspace(workspace).aggregate(
        total=Count("id"),
        sent=Count("id", filter=Q(state__in=(PostingState.DONE, PostingState.FAILED))),
        open=Count("id", filter=Q(state__in=OPEN_POSTING_STATES)),
    )
    qonto_read = bool(
        qonto
        and qonto.last_good_sync_at
        and (started is None or qonto.last_good_sync_at >= started)
    )
    synced = run is not None and run.status == SyncStatus.SUCCEEDED
    records = proposals["records"]  # the kinds matching proposes for

    # Share done: reading Qonto 1, each kind the QuickBooks sync reads 1, proposals 2, postings 2.
    steps = 1 + len(FIRST_SYNC_KINDS) + 4
    done_steps = 1.0 if qonto_read else 0.0
    if synced:
        done_steps += len(FIRST_SYNC_KINDS)
    elif run is not None and run.status == SyncStatus.RUNNING:
        entity = (run.progress or {}).get("entity") or ""
        if entity in FIRST_SYNC_KINDS:
            done_steps += FIRST_SYNC_KINDS.index(entity)
    if synced and records:
        done_steps += 2 * (records - unproposed) / records
    if synced and postings["total"]:
        done_steps += 2 * postings["sent"] / postings["total"]
    elif synced and not unproposed:
        done_steps += 2
    done = bool(started) and qonto_read and synced and not unproposed and not postings["open"]
    fraction = 1.0 if done else min(done_steps / steps, 0.99)
    failure = None
    if started and not done:
        since_moment = since - timedelta(seconds=1)
        if not qonto_read:
            failure = _step_failure(
                step="qonto",
                title=_("Reading Qonto"),
                connection=qonto,
                run=qonto_run,
                since=since_moment,
            )
        if failure is None and not synced:
            failure = _step_failure(
                step="quickbooks",
                title=_("Reading QuickBooks"),
                connection=quickbooks,
                run=run,
                since=since_moment,
            )
    time_left = None
    if started and 0 < fraction < 1 and failure is None:
        spent = timezone.now() - started
        time_left = spent * ((1 - fraction) / fraction)
    return FirstSyncProgress(
        started_at=started,
        pulled={kind: pulled.get(kind, 0) for kind in FIRST_SYNC_KINDS},
        run=run,
        qonto_read=qonto_read,
        records=records,
        unproposed=unproposed,
        postings_total=postings["total"],
        postings_sent=postings["sent"],
        postings_open=postings["open"],
        done=done,
        fraction=fraction,
        time_left=time_left,
        failure=failure,
    )
