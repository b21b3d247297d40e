"""Fixtures for the partner API tests: two workspaces' books, keys, and a client per key."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from matching.models import Band
from matching.services import record_propose
from tests.matching.test_proposals_fixtures import *  # noqa: F403 - the shared fixtures
from well.api_auth import api_key_create
from well.audit import Actor


@pytest.fixture(autouse=True)
def _fresh_throttle():
    """Throttle counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_key():
    def make(workspace, scopes=("read", "decide", "admin"), name="partner"):
        key, secret = api_key_create(
            workspace=workspace, name=name, scopes=list(scopes), actor=Actor.system("tests")
        )
        return key, secret

    return make


@pytest.fixture
def client_for(make_key):
    """An API client speaking with a new key of `workspace` (or a given secret)."""

    def make(workspace=None, scopes=("read", "decide", "admin"), secret=None):
        if secret is None:
            _, secret = make_key(workspace, scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make


def record_in_review(books):
    """A bill the engine sends to review (about 0.73, 'upload as new', invoice runner-up)."""
    books.invoice()
    bill = books.bill(amount="121.00", day="2025-01-05")
    proposal = record_propose(record=bill)
    assert proposal.band == Band.REVIEW
    return bill


@pytest.fixture
def in_review():
    return record_in_review
