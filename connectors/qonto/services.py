"""Qonto connection and outbox services; each state change writes its audit event.

Shaped like connectors/services.py for QuickBooks: connect, tokens under a row lock, disconnect,
plus `posting_enqueue` / `record_post`, the door through which review and matching post to Qonto.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from connectors.http import AuthRevoked, ProviderError
from connectors.models import Connection, ConnectionStatus, Provider, RecordState, SourceRecord
from connectors.qonto import client, oauth
from connectors.qonto.models import (
    PAYMENT_ACTIONS,
    Posting,
    PostingAction,
    PostingState,
    QontoBankAccount,
    QontoEntry,
)
from connectors.services import (
    ConnectError,
    connection_mark_needs_reconnect,
    connection_public,
    connection_tokens_forget,
    oauth_callback_workspace,
)
from well.audit import Actor, audit_event_record
from well.encryption import secret_open, secret_seal
from well.models import Workspace
from well.webhooks import record_summary, webhooks_emit

logger = logging.getLogger("well.connectors.qonto")

OAUTH_SESSION_KEY = "qonto_oauth"
PENDING_LIFETIME = timedelta(minutes=10)  # §2.2: the code itself lives 10 minutes
REFRESH_MARGIN = timedelta(minutes=5)
SYSTEM = Actor.system("Qonto connector")
IDEMPOTENCY_NAMESPACE = uuid.UUID("8a3c4a52-64a4-4f83-8b3e-6f1f2f6f7b10")


class NotPostable(ValueError):
    """This record means nothing to post in Qonto (or not yet); the message says why."""


def qonto_redirect_uri() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("qonto_oauth:callback")


def qonto_connection_get(*, workspace: Workspace | int) -> Connection | None:
    return Connection.objects.for_workspace(workspace).filter(provider=Provider.QONTO).first()


# --- Connect ---------------------------------------------------------------------------------


def qonto_authorization_begin(*, workspace: Workspace, user) -> tuple[str, dict]:
    """The consent URL and what the session must remember to check the callback."""
    state = oauth.new_state()
    pending = {
        "state": state,
        "workspace_id": workspace.pk,
        "user_id": user.pk,
        "started_at": timezone.now().isoformat(),
    }
    return oauth.authorization_url(state=state, redirect_uri=qonto_redirect_uri()), pending


@dataclass(frozen=True)
class ConnectOutcome:
    workspace: Workspace
    connection: Connection
    message: str


def qonto_authorization_complete(
    *, pending, user, state: str, code: str, error: str = ""
) -> ConnectOutcome:
    """Check the callback against the session's state, then store the grant (or nothing)."""
    workspace = oauth_callback_workspace(
        pending=pending,
        user=user,
        state=state,
        error=error,
        provider_name="Qonto",
        lifetime=PENDING_LIFETIME,
    )
    if not code:
        raise ConnectError("Qonto answered without an authorization code; nothing was stored.")
    tokens = oauth.code_exchange(code=code, redirect_uri=qonto_redirect_uri())
    api = client.QontoApi(
        base_url=settings.QONTO_API_URL,
        token=lambda rejected: tokens.access_token,
        staging_token=settings.QONTO_STAGING_TOKEN,
    )
    organization = client.organization(api)
    connection = qonto_connection_complete(
        workspace=workspace, tokens=tokens, organization=organization, actor=Actor.user(user)
    )
    return ConnectOutcome(
        workspace=workspace,
        connection=connection,
        message=f"Qonto is connected ({connection.external_name or 'organization'}).",
    )


def _seal_tokens(connection: Connection, tokens: oauth.TokenSet) -> None:
    connection.access_token = secret_seal(connection, "access_token", tokens.access_token)
    connection.refresh_token = secret_seal(connection, "refresh_token", tokens.refresh_token)
    connection.access_expires_at = tokens.access_expires_at
    connection.refresh_expires_at = tokens.refresh_expires_at


def _sync_minute(connection: Connection) -> int:
    return int(hashlib.sha256(str(connection.pk).encode()).hexdigest(), 16) % 60


@transaction.atomic
def qonto_connection_complete(
    *, workspace: Workspace, tokens: oauth.TokenSet, organization: dict, actor: Actor
) -> Connection:
    """Store the grant for the organization; another organization's candidates are dropped."""
    org_id = str(organization.get("id") or "")[:64]
    if not org_id:
        raise ConnectError("Qonto did not say which organization was connected.")
    connection = (
        Connection.objects.select_for_update()
        .filter(workspace=workspace, provider=Provider.QONTO)
        .first()
    )
    created = connection is None
    if connection is None:
        connection = Connection(workspace=workspace, provider=Provider.QONTO)
        connection.sync_minute = _sync_minute(connection)
    before = None if created else connection_public(connection)
    if connection.external_id and connection.external_id != org_id:
        # Candidates are a cache of the old organization; postings (what Well did) stay.
        removed, _ = QontoEntry.objects.filter(connection=connection).delete()
        QontoBankAccount.objects.filter(connection=connection).delete()
        connection.sync_marker = ""
        audit_event_record(
            workspace=workspace,
            actor=actor,
            verb="connection.organization_changed",
            obj=connection,
            before=before,
            after={"external_id": org_id, "candidates_removed": removed},
        )
    connection.external_id = org_id
    connection.external_name = str(
        organization.get("legal_name") or organization.get("name") or ""
    )[:200]
    _seal_tokens(connection, tokens)
    connection.scopes = tokens.scope[:300]
    connection.status = ConnectionStatus.CONNECTED
    connection.last_error = ""
    connection.last_error_at = None
    connection.connected_at = timezone.now()
    connection.save()
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="connection.connected" if created else "connection.reconnected",
        obj=connection,
        before=before,
        after=connection_public(connection),
    )
    qonto_sync_enqueue(connection=connection, trigger="connect")
    return connection


def qonto_sync_enqueue(*, connection: Connection, trigger: str) -> None:
    """Queue one Qonto read in the current transaction (ORM broker: a rollback un-queues it)."""
    from django_q.tasks import async_task

    async_task(
        "connectors.qonto.tasks.qonto_sync_task",
        str(connection.pk),
        trigger,
        task_name=f"qonto sync {connection.pk}"[:100],
        group="sync",
    )


# --- Tokens ----------------------------------------------------------------------------------


def _usable(connection: Connection) -> None:
    if connection.status != ConnectionStatus.CONNECTED or not connection.refresh_token:
        raise AuthRevoked("Qonto needs to be reconnected for this workspace; no call was made.")


def _fresh(connection: Connection, rejected: str | None, now) -> str | None:
    if connection.access_expires_at is None or connection.access_expires_at <= now + REFRESH_MARGIN:
        return None
    token = secret_open(connection, "access_token")
    if not token or token == rejected:
        return None
    return token


def qonto_access_token_get(*, connection_id, rejected: str | None = None) -> str:
    """A valid access token; refreshes at most once across every worker (row lock).

    Qonto rotates refresh tokens and keeps the old one only 60 seconds (§2.4), so the new pair
    is committed at once, in the transaction holding the lock.
    """
    connection = Connection.objects.get(pk=connection_id, provider=Provider.QONTO)
    _usable(connection)
    token = _fresh(connection, rejected, timezone.now())
    if token:
        return token
    revoked: str | None = None
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        _usable(connection)
        # Re-read under the lock: another worker may have refreshed while we waited.
        token = _fresh(connection, rejected, timezone.now())
        if token:
            return token
        used = secret_open(connection, "refresh_token")
        try:
            tokens = oauth.token_refresh(refresh_token=used)
        except oauth.InvalidGrant:
            connection.refresh_from_db()
            if secret_open(connection, "refresh_token") != used:
                token = _fresh(connection, rejected, timezone.now())
                if token:
                    return token
            revoked = "Qonto refused the refresh token (invalid_grant): reconnect Qonto."
        else:
            before_expiry = connection.access_expires_at
            _seal_tokens(connection, tokens)
            connection.save(
                update_fields=[
                    "access_token",
                    "refresh_token",
                    "access_expires_at",
                    "refresh_expires_at",
                    "updated_at",
                ]
            )
            audit_event_record(
                workspace=connection.workspace_id,
                actor=SYSTEM,
                verb="connection.token_refreshed",
                obj=connection,
                before={"access_expires_at": before_expiry},
                after={"access_expires_at": connection.access_expires_at},
            )
            return tokens.access_token
    connection_mark_needs_reconnect(connection=connection, reason=revoked, actor=SYSTEM)
    raise AuthRevoked(revoked)


class TokenCache:
    """The token provider handed to the client: cached in memory, refreshed via the service."""

    def __init__(self, connection_id) -> None:
        self.connection_id = connection_id
        self.token: str | None = None
        self.lock = threading.Lock()

    def __call__(self, rejected: str | None) -> str:
        with self.lock:
            if self.token and rejected is None:
                return self.token
            self.token = qonto_access_token_get(connection_id=self.connection_id, rejected=rejected)
            return self.token


def qonto_api_for(connection: Connection, **options) -> client.QontoApi:
    """The client configuration of one connection (tests pass `sleep`, `policy`, `timeout`)."""
    return client.QontoApi(
        base_url=settings.QONTO_API_URL,
        token=TokenCache(connection.pk),
        staging_token=settings.QONTO_STAGING_TOKEN,
        **options,
    )


# --- Disconnect ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisconnectResult:
    revoked: bool
    message: str


def qonto_disconnect(*, connection: Connection, actor: Actor) -> DisconnectResult:
    """Revoke the consent and the tokens, delete the tokens; postings and candidates stay."""
    notes: list[str] = []
    revoked = False
    if connection.refresh_token and connection.status == ConnectionStatus.CONNECTED:
        try:
            client.consents_delete(qonto_api_for(connection, policy=client.http.NO_RETRY))
            revoked = True
        except ProviderError as exc:
            notes.append(f"Qonto did not confirm the consent removal ({exc.message[:160]}).")
    if connection.refresh_token:
        try:
            oauth.token_revoke(token=secret_open(connection, "refresh_token"))
            revoked = True
        except ProviderError as exc:
            notes.append(f"Qonto did not confirm the token revocation ({exc.message[:160]}).")
    connection_tokens_forget(
        connection=connection,
        actor=actor,
        reason=" ".join(notes) or "grant revoked; postings and review queue kept",
    )
    message = "Qonto is disconnected. Everything already posted and the review queue are kept."
    return DisconnectResult(revoked=revoked, message=" ".join([message, *notes]))


@transaction.atomic
def qonto_sync_request(*, connection: Connection, actor: Actor) -> bool:
    """Queue a Qonto read now at a person's request; False when not connected."""
    if connection.status != ConnectionStatus.CONNECTED:
        return False
    audit_event_record(
        workspace=connection.workspace_id,
        actor=actor,
        verb="connection.sync_requested",
        obj=connection,
    )
    qonto_sync_enqueue(connection=connection, trigger="manual")
    return True


# --- Outbox ----------------------------------------------------------------------------------


def idempotency_key(
    *, workspace_id: int, entity_type: str, qbo_id: str, version: str, action: str, target: str = ""
):
    """Stable per (workspace, QuickBooks entity and ID, version posted, action): a UUID (§7.4).

    A mark_paid or unmark_paid adds its target (the Qonto invoice): a payment of several bills
    has one each. An unmark_paid's version is the version of the mark it undoes.
    """
    name = f"{workspace_id}:{entity_type}:{qbo_id}:{version}:{action}"
    if target:
        name += f":{target}"
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, name))


def qonto_url_for(kind: str, qonto_id: str) -> str:
    """A link to the object in the Qonto web app (settings.QONTO_APP_URL)."""
    base = settings.QONTO_APP_URL.rstrip("/")
    if kind == "transaction":
        return f"{base}/transactions/{qonto_id}"
    return f"{base}/supplier-invoices/{qonto_id}"


# What each QuickBooks kind means in Qonto (docs/triggers.md).
UPLOAD_KINDS = {"Bill": PostingAction.UPLOAD, "VendorCredit": PostingAction.CREDIT_NOTE}
UPLOAD_KINDS["CreditMemo"] = PostingAction.CREDIT_NOTE
PAYMENT_KINDS = frozenset({"BillPayment", "Payment"})
NEVER_POSTED = {
    "Invoice": "A sales invoice is context for reconciliation only; it is never uploaded to "
    "Qonto as a supplier invoice.",
    "PurchaseOrder": "A purchase order is not posted; it is the policy fit for the bill that "
    "arrives against it (vendor and amount within the order).",
    "Account": "A bank account is mapped to a Qonto bank account by IBAN or number, not posted.",
    "Vendor": "Vendors feed the counterparty graph used by enrichment; nothing is posted.",
    "Customer": "Customers feed the counterparty graph used by enrichment; nothing is posted.",
    "Attachable": "An attachment is posted as the PDF of its bill or purchase.",
}


def postings_send_soon() -> None:
    """Queue a run of the outbox worker in the caller's transaction.

    The ORM broker lives on the main database: the task row commits, or rolls back, with the
    postings it is meant to send.
    """
    from django_q.tasks import async_task

    async_task(
        "connectors.qonto.tasks.postings_send_task", task_name="qonto postings", group="post"
    )


@transaction.atomic
def posting_enqueue(
    *,
    record: SourceRecord,
    action: str,
    actor: Actor,
    target_qonto_id: str = "",
    target_kind: str = "",
    payment_date: date | None = None,
    reason: str = "",
    undoes_version: str = "",
) -> Posting:
    """Add the outbox row for this version of the record, in the caller's transaction.

    Call it in the same transaction as the approval. The idempotency key is stored now, before
    any request. Calling twice for the same version and action returns the same row.
    An unmark_paid carries the version of the mark it undoes (`undoes_version`): one per mark,
    even when the deletion or the new version is delivered twice.
    """
    if action not in PostingAction.values:
        raise ValueError(f"unknown posting action {action!r}")
    undoing = action == PostingAction.UNMARK_PAID
    # Undoing a mark is exactly what a deleted payment needs; nothing else posts a deleted one.
    if (record.deleted and not undoing) or record.errored:
        raise NotPostable("A deleted or malformed QuickBooks record is not posted.")
    if undoing and not undoes_version:
        raise ValueError("an unmark_paid posting needs the version of the mark it undoes")
    version = undoes_version if undoing else record.sync_token or "0"
    paying = action in PAYMENT_ACTIONS
    if paying and not target_qonto_id:
        raise ValueError(f"a {action} posting needs the Qonto invoice it acts on")
    key = idempotency_key(
        workspace_id=record.workspace_id,
        entity_type=record.entity_type,
        qbo_id=record.qbo_id,
        version=version,
        action=action,
        target=target_qonto_id if paying else "",
    )
    # One row per version and action; a payment has one per Qonto invoice it marks paid.
    lookup = {"qonto_id": target_qonto_id} if paying else {}
    posting, created = Posting.objects.get_or_create(
        workspace_id=record.workspace_id,
        record=record,
        source_version=version,
        action=action,
        **lookup,
        defaults={
            "idempotency_key": key,
            "qonto_id": target_qonto_id if action == PostingAction.LINK or paying else "",
            "target_kind": target_kind,
            "payment_date": payment_date,
        },
    )
    if not created:
        return posting
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb="posting.enqueued",
        obj=posting,
        after={
            "record": str(record.pk),
            "entity": record.entity_type,
            "qbo_id": record.qbo_id,
            "version": version,
            "action": action,
            "idempotency_key": key,
            "target": target_qonto_id,
        },
        reason=reason,
    )
    _record_state(record=record, state=RecordState.POSTING, actor=actor, reason=f"{action} queued")
    postings_send_soon()
    return posting


def _record_state(*, record: SourceRecord, state: str, actor: Actor, reason: str = "") -> None:
    """Move the record along its lifecycle with its audit event (caller holds a transaction)."""
    before = SourceRecord.objects.filter(pk=record.pk).values_list("state", flat=True).first()
    if before == state:
        return
    SourceRecord.objects.filter(pk=record.pk).update(state=state)
    record.state = state
    if state in (RecordState.POSTED, RecordState.FAILED):
        webhooks_emit(
            workspace=record.workspace_id, event=f"record.{state}", payload=record_summary(record)
        )
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb=f"record.{state}",
        obj=record,
        object_type="quickbooks." + record.entity_type.lower(),
        before={"state": before},
        after={"state": state},
        reason=reason,
    )


def record_post(*, record: SourceRecord, actor: Actor) -> Posting:
    """Decide what this approved record means in Qonto and enqueue it (docs/triggers.md)."""
    from connectors.qonto import selectors

    kind = record.entity_type
    if kind in NEVER_POSTED:
        raise NotPostable(NEVER_POSTED[kind])
    if kind in UPLOAD_KINDS:
        existing = selectors.qonto_invoice_existing(record=record)
        if existing is not None:
            return posting_enqueue(
                record=record,
                action=PostingAction.LINK,
                actor=actor,
                target_qonto_id=existing.qonto_id,
                target_kind="invoice",
                reason=f"Qonto already holds this invoice ({existing.invoice_number}); linked.",
            )
        return posting_enqueue(record=record, action=UPLOAD_KINDS[kind], actor=actor)
    if kind in PAYMENT_KINDS:
        settled = payment_settle(record=record, actor=actor)
        if not settled.postings:
            raise NotPostable(settled.reason)
        return settled.postings[-1]
    if kind == "Purchase":
        if selectors.record_has_file(record=record):
            return posting_enqueue(record=record, action=PostingAction.UPLOAD, actor=actor)
        from connectors.onboarding import purchase_qonto_bank_account

        paid_from = purchase_qonto_bank_account(record=record)  # the user's pairing wins
        transaction_entry = selectors.qonto_transaction_for(
            record=record, bank_account_id=paid_from.qonto_id if paid_from else ""
        )
        if transaction_entry is None:
            raise NotPostable("No Qonto transaction matches this purchase yet.")
        return posting_enqueue(
            record=record,
            action=PostingAction.LINK,
            actor=actor,
            target_qonto_id=transaction_entry.qonto_id,
            target_kind="transaction",
        )
    raise NotPostable(f"Well posts nothing to Qonto for a QuickBooks {kind}.")


# --- Payments ---------------------------------------------------------------------------------

CUSTOMER_PAYMENT = (
    "A customer payment settles sales invoices, which are context for reconciliation only and "
    "never uploaded to Qonto; nothing to mark paid."
)
NO_POSTED_BILL = "This payment is not against a bill Well has posted; nothing to mark paid."


@dataclass(frozen=True)
class PaymentSettled:
    """What one version of a QuickBooks payment means in Qonto."""

    postings: list[Posting]  # one mark_paid per Qonto invoice paid (new or already queued)
    waiting: list[str]  # QuickBooks IDs of paid bills not in Qonto yet
    reason: str = ""  # why nothing (more) is posted
    undone: list[Posting] = field(default_factory=list)  # unmark_paid of marks no longer true
    withdrawn: list[str] = field(default_factory=list)  # Qonto invoices of marks never sent


def _payment_date(record: SourceRecord) -> date:
    if record.issue_date:
        return record.issue_date
    try:
        return date.fromisoformat(str(record.payload.get("TxnDate") or "")[:10])
    except ValueError:
        return timezone.localdate()


def _marks_in_effect(record: SourceRecord) -> dict[str, list[Posting]]:
    """The payment's mark_paid postings not undone yet, by Qonto invoice (oldest first)."""
    postings = Posting.objects.for_workspace(record.workspace_id).filter(
        record=record, action__in=PAYMENT_ACTIONS
    )
    undone = {
        (p.source_version, p.qonto_id) for p in postings if p.action == PostingAction.UNMARK_PAID
    }
    marks: dict[str, list[Posting]] = {}
    for posting in postings.order_by("created_at", "id"):
        if posting.action != PostingAction.MARK_PAID:
            continue
        if (posting.source_version, posting.qonto_id) not in undone:
            marks.setdefault(posting.qonto_id, []).append(posting)
    return marks


def _mark_undo(*, mark: Posting, record: SourceRecord, actor: Actor, reason: str) -> Posting | None:
    """Take back one mark_paid: withdrawn if it never reached Qonto, else an unmark_paid.

    Returns the unmark_paid posting, or None when the mark was withdrawn. A ready or failed mark
    was never accepted by Qonto (a failure is Qonto's refusal), so its row is deleted under a
    state condition (a worker that claimed it meanwhile wins, and the mark is undone instead).
    In flight, unknown or done, it may be in Qonto: the unmark is sent once it has settled.
    """
    withdrawable = [PostingState.READY, PostingState.FAILED]
    deleted, _ = Posting.objects.filter(pk=mark.pk, state__in=withdrawable).delete()
    if deleted:
        audit_event_record(
            workspace=record.workspace_id,
            actor=actor,
            verb="posting.withdrawn",
            obj=mark,
            before={
                "state": mark.state,
                "action": mark.action,
                "version": mark.source_version,
                "qonto_id": mark.qonto_id,
                "payment_date": mark.payment_date,
                "idempotency_key": mark.idempotency_key,
            },
            reason=f"{reason}; the mark never reached Qonto, so nothing is undone there",
        )
        return None
    return posting_enqueue(
        record=record,
        action=PostingAction.UNMARK_PAID,
        actor=actor,
        target_qonto_id=mark.qonto_id,
        target_kind="invoice",
        payment_date=mark.payment_date,
        reason=reason,
        undoes_version=mark.source_version,
    )


def payment_settle(*, record: SourceRecord, actor: Actor = SYSTEM) -> PaymentSettled:
    """The one place that decides what a QuickBooks payment does in Qonto (docs/triggers.md).

    A BillPayment marks paid, with its TxnDate, the Qonto supplier invoice of each bill it pays
    that Well posted or linked: one mark_paid posting per (payment version, invoice), so running
    it again changes nothing. A paid bill not in Qonto yet is waited for: when its posting is
    done, `bill_payments_settle` runs this again. A customer Payment pays sales invoices, which
    are never uploaded: recorded as context, nothing posted. One audit event per decision.

    A mark that is no longer true is taken back (`_mark_undo`): the payment was deleted, no
    longer pays that bill, or pays it on another date. Qonto keeps the first date when an
    invoice already paid is marked again (qonto-api.md §4.1), so a new date is an unmark then a
    new mark; the worker sends one invoice's payment postings in order.
    """
    from connectors.qonto import selectors

    version = record.sync_token or "0"
    if record.entity_type == "Payment" or record.errored:
        reason = (
            CUSTOMER_PAYMENT
            if record.entity_type == "Payment"
            else "A malformed QuickBooks payment marks nothing paid."
        )
        _payment_audit(record, actor, "payment.context", {"version": version}, reason, once=True)
        return PaymentSettled(postings=[], waiting=[], reason=reason)
    bills = [] if record.deleted else selectors.payment_bill_ids(record=record)
    invoices = {} if record.deleted else selectors.paid_bill_invoices(record=record)
    waiting = [bill for bill in bills if bill not in invoices]
    day = _payment_date(record)
    postings: list[Posting] = []
    undone: list[Posting] = []
    withdrawn: list[str] = []
    with transaction.atomic():
        # One decision at a time per payment: a sync and a bill's finish may settle it at once.
        SourceRecord.objects.select_for_update().filter(pk=record.pk).first()
        in_effect = _marks_in_effect(record)
        standing: dict[str, Posting] = {}  # invoice → the mark that still holds
        for invoice, marks in in_effect.items():
            for mark in marks:
                if invoice in invoices.values() and mark.payment_date == day:
                    standing.setdefault(invoice, mark)
                    continue
                if record.deleted:
                    why = f"QuickBooks payment {record.qbo_id} was deleted"
                elif invoice not in invoices.values():
                    why = f"QuickBooks payment {record.qbo_id} no longer pays this invoice's bill"
                else:
                    why = f"QuickBooks payment {record.qbo_id} is now dated {day.isoformat()}"
                unmark = _mark_undo(mark=mark, record=record, actor=actor, reason=why)
                if unmark is None:
                    withdrawn.append(invoice)
                else:
                    undone.append(unmark)
        new: dict[str, str] = {}
        for bill, invoice in invoices.items():
            if invoice in standing:
                postings.append(standing[invoice])
                continue
            postings.append(
                posting_enqueue(
                    record=record,
                    action=PostingAction.MARK_PAID,
                    actor=actor,
                    target_qonto_id=invoice,
                    target_kind="invoice",
                    payment_date=day,
                    reason=f"pays QuickBooks bill {bill}",
                )
            )
            new[bill] = invoice
        reason = ""
        if record.deleted:
            reason = "The QuickBooks payment was deleted: Well takes back what it marked paid."
        elif waiting:
            reason = f"Waiting for bill(s) {', '.join(waiting)} to be in Qonto to mark them paid."
        elif not invoices:
            reason = NO_POSTED_BILL
        after = {
            "version": version,
            "payment_date": day,
            "bills": bills,
            "marked_paid": new,
            "waiting": waiting,
            "deleted": record.deleted,
            "unmarked": [p.qonto_id for p in undone],
            "withdrawn": withdrawn,
        }
        if withdrawn and not Posting.objects.filter(record=record).exists():
            # Its only marks were withdrawn: the payment is back to where the sync left it.
            _record_state(
                record=record, state=RecordState.PULLED, actor=actor, reason="marks withdrawn"
            )
        changed = bool(new or undone or withdrawn)
        _payment_audit(record, actor, "payment.settled", after, reason, once=not changed)
    return PaymentSettled(
        postings=postings, waiting=waiting, reason=reason, undone=undone, withdrawn=withdrawn
    )


def _payment_audit(
    record: SourceRecord, actor: Actor, verb: str, after: dict, reason: str, *, once: bool
) -> None:
    """The decision's audit event; with `once`, only the first for this version."""
    from well.models import AuditEvent

    object_type = "quickbooks." + record.entity_type.lower()
    same = {"after__version": after["version"]}
    if after.get("deleted"):
        same["after__deleted"] = True  # the deletion is its own decision for that version
    if (
        once
        and AuditEvent.objects.filter(
            workspace_id=record.workspace_id,
            object_type=object_type,
            object_id=str(record.pk),
            verb=verb,
            **same,
        ).exists()
    ):
        return
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb=verb,
        obj=record,
        object_type=object_type,
        after=after,
        reason=reason,
    )


def payments_settle(*, records: list[SourceRecord], actor: Actor = SYSTEM) -> int:
    """`payment_settle` for each payment of a synced batch; one failure never stops the rest."""
    made = 0
    for record in records:
        if record.entity_type not in PAYMENT_KINDS:
            continue
        try:
            settled = payment_settle(record=record, actor=actor)
            made += len(settled.postings) + len(settled.undone)
        except Exception:
            logger.exception("settling QuickBooks payment %s failed", record.pk)
    return made


def bill_payments_settle(*, bill: SourceRecord, actor: Actor = SYSTEM) -> int:
    """A bill is now in Qonto: the payments that arrived before it mark its invoice paid."""
    from connectors.qonto import selectors

    return payments_settle(records=list(selectors.payments_of_bill(bill=bill)), actor=actor)


# --- Outbox transitions (used by the worker; fenced by attempt_id) ----------------------------


def posting_claim(
    *, limit: int, workspace_ids: list[int] | None = None, now: datetime | None = None
) -> list[Posting]:
    """Claim up to `limit` ready or unknown postings; other workers skip them (skip_locked).

    Each claim gets a new attempt_id: only the holder of that id may finish the attempt.
    """
    now = now or timezone.now()
    with transaction.atomic():
        query = Posting.objects.select_for_update(skip_locked=True).filter(
            state__in=[PostingState.READY, PostingState.UNKNOWN]
        )
        if workspace_ids is not None:
            query = query.filter(workspace_id__in=workspace_ids)
        claimed = list(query.order_by("created_at", "id")[:limit])
        if not claimed:
            return []
        before: dict = {}
        for posting in claimed:
            before[posting.pk] = posting.state
            posting.previous_state = posting.state
            posting.state = PostingState.IN_FLIGHT
            posting.attempt_id = uuid.uuid4()
            posting.attempts += 1
            posting.claimed_at = now
        Posting.objects.bulk_update(claimed, ["state", "attempt_id", "attempts", "claimed_at"])
        for posting in claimed:
            audit_event_record(
                workspace=posting.workspace_id,
                actor=SYSTEM,
                verb="posting.claimed",
                obj=posting,
                before={"state": before[posting.pk]},
                after={"state": PostingState.IN_FLIGHT, "attempt": posting.attempts},
            )
    return claimed


def posting_finish(
    *,
    posting: Posting,
    state: str,
    outcome: str = "",
    qonto_id: str = "",
    target_kind: str = "",
    message: str = "",
    error_code: str = "",
    extra: dict | None = None,
) -> bool:
    """End one claimed attempt: a conditional UPDATE fenced by attempt_id, with its audit event.

    Returns False (and changes nothing) when another worker's claim superseded this one.
    """
    now = timezone.now()
    values: dict = {"state": state, "updated_at": now, **(extra or {})}
    if state == PostingState.DONE:
        values.update(qonto_id=qonto_id, done_at=now, outcome=outcome, message=message)
        values["qonto_url"] = qonto_url_for(target_kind or "invoice", qonto_id)
        values["target_kind"] = target_kind or posting.target_kind or "invoice"
        values["error_code"] = ""
    elif state == PostingState.FAILED:
        values.update(message=message[:4000] or "Qonto refused it.", error_code=error_code[:60])
    else:
        values.update(message=message[:4000], error_code=error_code[:60])
    with transaction.atomic():
        updated = Posting.objects.filter(
            pk=posting.pk, attempt_id=posting.attempt_id, state=PostingState.IN_FLIGHT
        ).update(**values)
        if not updated:
            return False
        audit_event_record(
            workspace=posting.workspace_id,
            actor=SYSTEM,
            verb=f"posting.{state}",
            obj=posting,
            before={"state": PostingState.IN_FLIGHT},
            after={
                "state": state,
                "outcome": outcome,
                "qonto_id": qonto_id or posting.qonto_id,
                "idempotency_key": posting.idempotency_key,
                "attempt": posting.attempts,
            },
            reason=message[:2000],
        )
        record = SourceRecord.objects.get(pk=posting.record_id)
        if state == PostingState.DONE:
            _record_state(
                record=record,
                state=RecordState.POSTED,
                actor=SYSTEM,
                reason=f"{posting.action}: Qonto {qonto_id} ({outcome})",
            )
        elif state == PostingState.FAILED:
            _record_state(record=record, state=RecordState.FAILED, actor=SYSTEM, reason=message)
    for name, value in values.items():
        setattr(posting, name, value)
    if (
        state == PostingState.DONE
        and record.entity_type == "Bill"
        and posting.action != PostingAction.MARK_PAID
        and values["target_kind"] == "invoice"
    ):
        bill_payments_settle(bill=record)
    return True


def posting_mark_unknown(*, posting: Posting, reason: str) -> bool:
    """A stale in-flight claim (the worker died) becomes unknown: it may have reached Qonto."""
    with transaction.atomic():
        updated = Posting.objects.filter(
            pk=posting.pk, state=PostingState.IN_FLIGHT, attempt_id=posting.attempt_id
        ).update(state=PostingState.UNKNOWN, message=reason[:4000], updated_at=timezone.now())
        if updated:
            audit_event_record(
                workspace=posting.workspace_id,
                actor=SYSTEM,
                verb="posting.unknown",
                obj=posting,
                before={"state": PostingState.IN_FLIGHT},
                after={"state": PostingState.UNKNOWN},
                reason=reason,
            )
    return bool(updated)


def posting_retry(*, posting: Posting, actor: Actor) -> bool:
    """A person asks to try a failed posting again (same key: same version, same action).

    A mark that was taken back (its payment deleted or re-dated) is not sent any more.
    """
    undone = Posting.objects.filter(
        record_id=posting.record_id,
        action=PostingAction.UNMARK_PAID,
        source_version=posting.source_version,
        qonto_id=posting.qonto_id,
    )
    if posting.action == PostingAction.MARK_PAID and undone.exists():
        return False
    with transaction.atomic():
        updated = Posting.objects.filter(pk=posting.pk, state=PostingState.FAILED).update(
            state=PostingState.READY, updated_at=timezone.now()
        )
        if updated:
            audit_event_record(
                workspace=posting.workspace_id,
                actor=actor,
                verb="posting.retried",
                obj=posting,
                before={"state": PostingState.FAILED},
                after={"state": PostingState.READY},
            )
    return bool(updated)
