"""Owners create and revoke keys in the workspace settings and in the admin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from well.admin import ApiKeyAddForm, ApiKeyAdmin
from well.api_auth import api_key_authenticate
from well.models import ApiKey, Role

pytestmark = pytest.mark.django_db


def test_an_owner_creates_a_key_and_sees_its_secret_once(books, client):
    client.force_login(books.owner)
    url = f"/w/{books.workspace.slug}/settings/api-keys/"
    response = client.post(url, {"name": "practice tool", "scopes": ["read", "decide"]})
    assert response.status_code == 201
    key = ApiKey.objects.get(workspace=books.workspace)
    secret = response.content.decode().split("<pre><code>")[1].split("</code>")[0]
    assert api_key_authenticate(secret=secret) == key
    assert key.scopes == ["read", "decide"]
    again = client.get(url).content.decode()
    assert secret not in again and key.prefix in again


def test_an_owner_revokes_a_key_from_the_settings_page(books, client, make_key):
    key, secret = make_key(books.workspace)
    client.force_login(books.owner)
    url = f"/w/{books.workspace.slug}/settings/api-keys/{key.pk}/revoke/"
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert api_key_authenticate(secret=secret) is None


def test_an_accountant_cannot_manage_keys(books, client, make_user):
    user, _ = books.member(make_user, "acc@atelier.example", Role.ACCOUNTANT)
    client.force_login(user)
    url = f"/w/{books.workspace.slug}/settings/api-keys/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "x", "scopes": ["admin"]}).status_code == 403
    assert not ApiKey.objects.exists()


def test_staff_create_a_key_in_the_admin_and_see_it_once(books, make_user):
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    request = RequestFactory().post("/admin/well/apikey/add/")
    request.user = staff
    request.session = {}
    request._messages = FallbackStorage(request)
    form = ApiKeyAddForm(
        data={"workspace": books.workspace.pk, "name": "from admin", "scope_choices": ["read"]}
    )
    assert form.is_valid(), form.errors
    model_admin = ApiKeyAdmin(ApiKey, admin.site)
    model_admin.save_model(request, form.instance, form, change=False)
    key = ApiKey.objects.get(workspace=books.workspace)
    shown = [str(m) for m in request._messages]
    secret = shown[0].rsplit(" ", 1)[1]
    assert api_key_authenticate(secret=secret) == key
    model_admin.revoke(request, ApiKey.objects.filter(pk=key.pk))
    assert api_key_authenticate(secret=secret) is None
