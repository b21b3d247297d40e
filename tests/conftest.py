from __future__ import annotations

import pytest
from django.db import connection

from well.audit import Actor
from well.models import Role
from well.services import membership_add, workspace_create


def pytest_sessionstart(session):
    """Fail the whole run at once, and clearly, when PostgreSQL cannot be reached."""
    import psycopg
    from django.conf import settings

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
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def make_user(django_user_model):
    def make(email: str, password: str = "correct horse battery", **extra):
        return django_user_model.objects.create_user(
            username=email, email=email, password=password, **extra
        )

    return make


@pytest.fixture
def make_workspace(make_user):
    def make(name: str, owner=None, role: str = Role.OWNER):
        workspace = workspace_create(name=name, actor=Actor.system("tests"))
        if owner is not None:
            membership_add(workspace=workspace, user=owner, role=role, actor=Actor.system())
        return workspace

    return make


@pytest.fixture
def on_postgresql():
    assert connection.vendor == "postgresql"
