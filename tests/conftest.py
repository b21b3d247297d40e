"""Fixtures every test folder may use: people, workspaces, and one workspace's books."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from connectors.models import Connection, Provider
from connectors.qonto.models import QontoEntry
from connectors.quickbooks.extract import Malformed, extract
from connectors.quickbooks.models import SourceRecord
from matching.models import Band
from matching.services import record_propose
from tests.factories import (
    PASSWORD,
    ConnectionFactory,
    MembershipFactory,
    QontoEntryFactory,
    SourceRecordFactory,
    UserFactory,
    WorkspaceFactory,
)
from well.audit import Actor
from well.models import Role, Workspace
from well.services import membership_add

# What the demo and the sandboxes' fixtures repoint at the sandboxes (restored after each test).
PROVIDER_SETTINGS = [
    *(name for name in dir(settings) if name.startswith(("QUICKBOOKS_", "QONTO_"))),
    "SITE_URL",
    "WELL_ALLOW_LOOPBACK_DOWNLOADS",
]


def pytest_sessionstart(session):
    """Fail the whole run at once, and clearly, when PostgreSQL cannot be reached."""
    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL is not reachable for the tests: {exc}", returncode=3)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache; one test's sign-ins never throttle the next's."""
    cache.clear()


@pytest.fixture
def make_user():
    def make(email: str, password: str = PASSWORD, **extra):
        return UserFactory(email=email, password=password, **extra)

    return make


@pytest.fixture
def make_workspace():
    def make(name: str, owner=None, role: str = Role.OWNER):
        workspace = WorkspaceFactory(name=name)
        if owner is not None:
            MembershipFactory(workspace=workspace, user=owner, role=role)
        return workspace

    return make


@pytest.fixture
def on_postgresql():
    assert connection.vendor == "postgresql"


@pytest.fixture
def provider_settings_restored():
    """The demo repoints the provider settings (their names are yielded); put them back after."""
    saved = {name: getattr(settings, name) for name in PROVIDER_SETTINGS}
    yield PROVIDER_SETTINGS
    for name, value in saved.items():
        setattr(settings, name, value)


# --- One workspace's books: QuickBooks and Qonto rows as the syncs leave them ---------------


@dataclass
class Books:
    """One workspace's QuickBooks and Qonto connections, vendor and account."""

    workspace: Workspace
    owner: object
    qbo: Connection
    qonto: Connection

    def bill(self, **kwargs) -> SourceRecord:
        return SourceRecordFactory(workspace=self.workspace, connection=self.qbo, **kwargs)

    def invoice(self, **kwargs) -> QontoEntry:
        return QontoEntryFactory(workspace=self.workspace, connection=self.qonto, **kwargs)

    def transaction(self, **kwargs) -> QontoEntry:
        return QontoEntryFactory(
            workspace=self.workspace, connection=self.qonto, kind="transaction", **kwargs
        )

    def reference(self, entity: str, qbo_id: str, payload: dict) -> SourceRecord:
        payload = {"Id": qbo_id, **payload}
        typed = {}
        with contextlib.suppress(Malformed):  # a partial payload on purpose: no typed columns
            typed = extract(entity, payload)  # typed as the sync types them
        return SourceRecord.objects.create(
            workspace=self.workspace,
            connection=self.qbo,
            entity_type=entity,
            qbo_id=qbo_id,
            payload=payload,
            **typed,
        )

    def member(self, make_user, email: str, role: str):
        user = make_user(email)
        membership = membership_add(
            workspace=self.workspace, user=user, role=role, actor=Actor.system("tests")
        )
        return user, membership


@pytest.fixture
def make_books(make_user, make_workspace):
    def make(name: str = "Atelier") -> Books:
        owner = make_user(f"owner@{name.lower()}.example")
        workspace = make_workspace(name, owner=owner, role=Role.OWNER)
        qbo = ConnectionFactory(workspace=workspace, external_id=f"realm-{workspace.pk}")
        qonto = ConnectionFactory(
            workspace=workspace, provider=Provider.QONTO, external_id=f"org-{workspace.pk}"
        )
        books = Books(workspace, owner, qbo, qonto)
        books.reference("Vendor", "1", {"DisplayName": "Algolia", "CompanyName": "Algolia SAS"})
        books.reference("Account", "7", {"Name": "Software", "AcctNum": "6156"})
        books.reference("Account", "8", {"Name": "Travel", "AcctNum": "6251"})
        return books

    return make


@pytest.fixture
def books(make_books):
    return make_books("Atelier")


@pytest.fixture
def other_books(make_books):
    return make_books("Autre")


def _record_in_review(books: Books) -> SourceRecord:
    """A bill the engine sends to review: two invoices of its vendor for its amount, two and five
    days after it (about 0.7 for the nearer, the other runner-up)."""
    books.invoice(day="2025-01-12")
    books.invoice(day="2025-01-15")
    bill = books.bill()
    proposal = record_propose(record=bill)
    assert proposal.band == Band.REVIEW
    return bill


@pytest.fixture
def in_review():
    """Puts one bill of the given books in review, proposed by the real engine."""
    return _record_in_review
