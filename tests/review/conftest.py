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
