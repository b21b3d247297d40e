"""factory_boy factories for the main models; each builds through the service where one exists.

A user, a workspace (with its data key) and a membership come from the services a person's
sign-up goes through; the other rows are plain, with payloads and typed columns that agree.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import date
from decimal import Decimal
from itertools import count

import factory
from django.contrib.auth import get_user_model

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto.models import Posting, PostingAction, PostingState, QontoEntry, QontoEntryKind
from connectors.qonto.sync import invoice_fields, transaction_fields
from connectors.quickbooks.extract import Malformed, extract
from connectors.quickbooks.models import SourceRecord
from matching.models import Action, Band, Proposal
from well.audit import Actor
from well.models import Membership, Role, Workspace
from well.services import membership_add, workspace_create

PASSWORD = "correct horse battery"
_ids = count(1000)
# QuickBooks kinds whose mapped fields the sync types (connectors.quickbooks.extract).
TYPED_KINDS = ("Bill", "VendorCredit", "Purchase", "Vendor")


class UserFactory(factory.django.DjangoModelFactory):
    """A person who signs in with their e-mail address (its user name too)."""

    class Meta:
        model = get_user_model()

    email = factory.Sequence(lambda n: f"person{n}@well.example")
    username = factory.SelfAttribute("email")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from allauth.account.models import EmailAddress

        user = model_class.objects.create_user(*args, **kwargs)
        # Sign-in needs a verified address (ACCOUNT_EMAIL_VERIFICATION = "mandatory").
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        return user


class WorkspaceFactory(factory.django.DjangoModelFactory):
    """A tenant with its own data key (well.services.workspace_create)."""

    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Company {n}")

    @classmethod
    def _create(cls, model_class, *, name: str, **kwargs):
        return workspace_create(name=name, actor=Actor.system("tests"), **kwargs)


class MembershipFactory(factory.django.DjangoModelFactory):
    """A person's role in a workspace (well.services.membership_add)."""

    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER

    @classmethod
    def _create(cls, model_class, *, workspace, user, role):
        return membership_add(workspace=workspace, user=user, role=role, actor=Actor.system())


class ConnectionFactory(factory.django.DjangoModelFactory):
    """A connected provider account of a workspace (no tokens: nothing calls the provider)."""

    class Meta:
        model = Connection

    workspace = factory.SubFactory(WorkspaceFactory)
    provider = Provider.QUICKBOOKS
    status = ConnectionStatus.CONNECTED
    external_id = factory.LazyFunction(lambda: f"realm-{next(_ids)}")


class SourceRecordFactory(factory.django.DjangoModelFactory):
    """A QuickBooks record whose payload and typed columns agree (the sync's extraction)."""

    class Meta:
        model = SourceRecord

    class Params:
        amount = "120.00"
        day = "2025-01-10"
        doc = ""
        vendor_id = "1"
        vendor_name = "Algolia SAS"
        account_id = "7"

    workspace = factory.SubFactory(WorkspaceFactory)
    connection = factory.SubFactory(
        ConnectionFactory, workspace=factory.SelfAttribute("..workspace")
    )
    entity_type = "Bill"
    qbo_id = factory.LazyFunction(lambda: str(next(_ids)))
    sync_token = "0"
    state = "pulled"
    total_amount = factory.LazyAttribute(lambda o: Decimal(o.amount))
    currency = "EUR"
    issue_date = factory.LazyAttribute(lambda o: date.fromisoformat(o.day))
    invoice_number = factory.LazyAttribute(lambda o: o.doc)
    supplier_name = factory.LazyAttribute(lambda o: o.vendor_name)
    vendor_qbo_id = factory.LazyAttribute(lambda o: o.vendor_id)
    payload = factory.LazyAttribute(
        lambda o: {
            "Id": o.qbo_id,
            "SyncToken": o.sync_token,
            "TxnDate": o.day,
            "DueDate": o.day,
            "TotalAmt": o.amount,
            "DocNumber": o.doc,
            "VendorRef": {"value": o.vendor_id, "name": o.vendor_name},
            "CurrencyRef": {"value": "EUR"},
            "Line": [
                {
                    "Amount": o.amount,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": o.account_id}},
                }
            ],
        }
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # A well-formed payload's typed columns are what the sync makes of it (matching reads
        # them); a test's deliberately partial payload keeps the columns declared above.
        if kwargs["entity_type"] in TYPED_KINDS:
            with contextlib.suppress(Malformed):
                kwargs.update(extract(kwargs["entity_type"], kwargs["payload"]))
        return super()._create(model_class, *args, **kwargs)


class QontoEntryFactory(factory.django.DjangoModelFactory):
    """A Qonto supplier invoice (or, with kind=transaction, a debit) with its raw payload."""

    class Meta:
        model = QontoEntry

    class Params:
        amount_text = "120.00"
        day = "2025-01-10"
        number = ""
        name = "Algolia SAS"

    workspace = factory.SubFactory(WorkspaceFactory)
    connection = factory.SubFactory(
        ConnectionFactory, workspace=factory.SelfAttribute("..workspace"), provider=Provider.QONTO
    )
    kind = QontoEntryKind.SUPPLIER_INVOICE
    qonto_id = factory.LazyFunction(lambda: f"q-{next(_ids)}")
    amount = factory.LazyAttribute(
        lambda o: -Decimal(o.amount_text) if o.kind == "transaction" else Decimal(o.amount_text)
    )
    currency = "EUR"
    date = factory.LazyAttribute(lambda o: date.fromisoformat(o.day))
    counterparty = factory.LazyAttribute(lambda o: o.name)
    invoice_number = factory.LazyAttribute(lambda o: o.number)
    payload = factory.LazyAttribute(
        lambda o: (
            {
                "id": o.qonto_id,
                "supplier_name": o.name,
                "invoice_number": o.number,
                "total_amount": {"value": o.amount_text, "currency": "EUR"},
                "issue_date": o.day,
                "status": "to_review",
            }
            if o.kind == QontoEntryKind.SUPPLIER_INVOICE
            else {
                "id": o.qonto_id,
                "label": f"PRLV SEPA {o.name.upper()}",
                "clean_counterparty_name": o.name,
                "amount_cents": int(Decimal(o.amount_text) * 100),
                "currency": "EUR",
                "side": "debit",
                "settled_at": f"{o.day}T10:00:00Z",
                "status": "completed",
            }
        )
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # The typed columns come from the payload as the Qonto sync types them.
        typed = (
            transaction_fields(kwargs["payload"])
            if kwargs["kind"] == QontoEntryKind.TRANSACTION
            else invoice_fields(kwargs["payload"])
        )
        kwargs.update(typed)
        return super()._create(model_class, *args, **kwargs)


class PostingFactory(factory.django.DjangoModelFactory):
    """An outbox row for a record's current version (ready to send unless told otherwise)."""

    class Meta:
        model = Posting

    record = factory.SubFactory(SourceRecordFactory)
    workspace = factory.SelfAttribute("record.workspace")
    source_version = factory.LazyAttribute(lambda o: o.record.sync_token or "0")
    action = PostingAction.UPLOAD
    state = PostingState.READY
    idempotency_key = factory.LazyFunction(lambda: str(uuid.uuid4()))


class ProposalFactory(factory.django.DjangoModelFactory):
    """The current proposal for a record: upload as new, in review, at the default thresholds."""

    class Meta:
        model = Proposal

    record = factory.SubFactory(SourceRecordFactory)
    workspace = factory.SelfAttribute("record.workspace")
    record_version = factory.LazyAttribute(lambda o: o.record.sync_token)
    action = Action.CREATE
    confidence = 0.7
    band = Band.REVIEW
    auto_threshold = 0.85
    review_threshold = 0.55
    is_current = True
