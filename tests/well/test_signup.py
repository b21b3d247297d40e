"""Sign-up does not tell which addresses are registered (issue 19, finding 7): verification is
mandatory and a sign-up with a registered address gets the same answer as a new one."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-new-password-4821"


def _sign_up(email: str):
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"email": email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    return client, response


def _visible(response) -> str:
    """The page without what differs per request (CSRF token, nonce, the address typed)."""
    text = response.content.decode()
    text = re.sub(r'(value|nonce)="[^"]*"', "", text)
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", text)


def test_a_registered_address_gets_the_same_answer_as_a_new_one(make_user):
    make_user("taken@well.example")

    _, taken = _sign_up("taken@well.example")
    _, fresh = _sign_up("fresh@well.example")

    assert taken.status_code == fresh.status_code == 302
    assert taken["Location"] == fresh["Location"]
    assert _visible(Client().get(taken["Location"])) == _visible(Client().get(fresh["Location"]))
    # The owner of the registered address is told by mail, not the person at the form.
    assert {m.to[0] for m in mail.outbox} == {"taken@well.example", "fresh@well.example"}


def test_a_new_account_signs_in_only_after_verifying_its_address():
    client, response = _sign_up("new@well.example")
    assert response.status_code == 302

    assert client.get("/").status_code == 302  # not signed in yet
    login = Client().post(
        "/accounts/login/", {"login": "new@well.example", "password": NEW_PASSWORD}
    )
    assert "/accounts/confirm-email/" in login["Location"]

    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    path = link.split("testserver", 1)[-1]
    confirmed = client.post(path)
    assert confirmed.status_code == 302
    assert client.get("/").status_code in (200, 302)
    from allauth.account.models import EmailAddress

    assert EmailAddress.objects.get(email="new@well.example").verified


def test_the_development_run_shows_the_verification_link_it_could_not_deliver():
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"email": "demo-new@well.example", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        follow=True,
    )

    assert "verification-link" in response.content.decode()


def test_production_never_shows_the_verification_link(settings):
    settings.PRODUCTION = True
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"email": "prod-new@well.example", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        follow=True,
    )

    assert "verification-link" not in response.content.decode()
    assert "/confirm-email/" not in response.content.decode()


def test_existing_people_still_sign_in(make_user):
    make_user("owner@well.example")

    response = Client().post(
        "/accounts/login/", {"login": "owner@well.example", "password": PASSWORD}
    )

    assert response.status_code == 302 and "confirm-email" not in response["Location"]
