"""The review pages' fixtures: a client signed in as each role of the books' workspace."""

from __future__ import annotations

import pytest
from django.test import Client

from well.models import Role


@pytest.fixture
def people(books, make_user):
    """A client signed in as each role."""
    accountant, _ = books.member(make_user, "acc@atelier.example", Role.ACCOUNTANT)
    viewer, _ = books.member(make_user, "view@atelier.example", Role.VIEWER)
    clients = {}
    for role, user in (("owner", books.owner), ("accountant", accountant), ("viewer", viewer)):
        client = Client()
        client.force_login(user)
        clients[role] = client
    return clients


@pytest.fixture
def api_key_client():
    """A DRF client speaking with a new partner API key (read and decide) of these books."""
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from well.api_auth import api_key_create
    from well.audit import Actor

    def make(books, scopes=("read", "decide")):
        cache.clear()  # the throttle's counters
        _, secret = api_key_create(
            workspace=books.workspace, name="partner", scopes=list(scopes), actor=Actor.system("t")
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make
