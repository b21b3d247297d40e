"""Fixtures for the partner API tests: two workspaces' books, keys, and a client per key."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

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
