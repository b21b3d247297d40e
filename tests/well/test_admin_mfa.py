from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def _current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def _sign_in(client, email: str, secret: str | None = None):
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    if secret is not None:
        assert response.url.startswith("/accounts/2fa/authenticate")
        response = client.post("/accounts/2fa/authenticate/", {"code": _current_code(secret)})
    return response


def test_the_admin_login_sends_visitors_to_allauth(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_staff_without_mfa_cannot_reach_the_admin(client, make_user):
    make_user("staff@well.example", is_staff=True, is_superuser=True)
    _sign_in(client, "staff@well.example")

    index = client.get("/admin/")
    login = client.get(index.url)

    assert index.status_code == 302
    assert login.status_code == 302 and login.url == "/accounts/2fa/totp/activate/"


def test_staff_with_mfa_reach_the_admin_after_the_second_factor(client, make_user):
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    _sign_in(client, "staff@well.example", secret)

    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/well/workspace/").status_code == 200


def test_a_session_that_skipped_the_second_factor_is_sent_to_reauthenticate(client, make_user):
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    client.force_login(staff)
    TOTP.activate(staff, generate_totp_secret())

    index = client.get("/admin/")
    login = client.get(index.url)

    assert login.status_code == 302 and login.url.startswith("/accounts/reauthenticate/")


def test_members_who_are_not_staff_are_refused(client, make_user):
    make_user("ann@example.com")
    _sign_in(client, "ann@example.com")

    assert client.get("/admin/login/").status_code == 403


def test_totp_secrets_are_sealed_at_rest(make_user):
    user = make_user("staff@well.example", is_staff=True)
    secret = generate_totp_secret()

    TOTP.activate(user, secret)

    stored = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"]
    assert secret not in stored
    assert stored.startswith("v1.")
    assert TOTP(Authenticator.objects.get(user=user)).validate_code(_current_code(secret))


def test_login_failures_are_rate_limited(client, make_user):
    make_user("ann@example.com")

    for _ in range(3):
        client.post("/accounts/login/", {"login": "ann@example.com", "password": "wrong"})
    response = client.post("/accounts/login/", {"login": "ann@example.com", "password": PASSWORD})

    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_pages_never_show_a_secret(client, make_user, make_workspace):
    from connectors.models import Connection, Provider
    from well.encryption import secret_seal

    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    connection = Connection(workspace=make_workspace("Acme"), provider=Provider.QONTO)
    connection.access_token = secret_seal(connection, "access_token", "sentinel-admin-token")
    connection.save()
    _sign_in(client, "staff@well.example", secret)
    authenticator = Authenticator.objects.get(user=staff)

    pages = [
        "/admin/connectors/connection/",
        f"/admin/connectors/connection/{connection.pk}/change/",
        "/admin/mfa/authenticator/",
        f"/admin/mfa/authenticator/{authenticator.pk}/change/",
        "/admin/well/workspace/",
        "/admin/well/membership/",
        "/admin/auth/user/",
        "/admin/connectors/syncrun/",
        "/admin/connectors/sourcerecord/",
        "/admin/connectors/posting/",
        "/admin/connectors/qontoentry/",
        "/admin/django_q/failure/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "sentinel-admin-token" not in body, url
        assert connection.access_token not in body, url
        assert authenticator.data["secret"] not in body and secret not in body, url


def test_the_correct_password_at_confirm_access_leads_to_the_code_then_the_admin(client, make_user):
    """Issue 16: the correct password looped back to "Confirm Access" four times."""
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    client.force_login(staff)  # a session without the second factor (TOTP activated since)
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    confirm = client.get(client.get("/admin/").url).url
    assert confirm.startswith("/accounts/reauthenticate/")

    after_password = client.post(confirm, {"password": PASSWORD}, follow=True)

    visited = [url for url, _status in after_password.redirect_chain]
    assert not any(url.startswith("/accounts/reauthenticate/") for url in visited)
    assert after_password.request["PATH_INFO"] == "/accounts/2fa/reauthenticate/"
    assert b"Now enter the code from your authenticator app" in after_password.content
    code_page = after_password.request["PATH_INFO"] + "?" + after_password.request["QUERY_STRING"]

    after_code = client.post(code_page, {"code": _current_code(secret)}, follow=True)

    assert after_code.request["PATH_INFO"] == "/admin/" and after_code.status_code == 200


def test_a_wrong_password_at_confirm_access_opens_nothing(client, make_user):
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    client.force_login(staff)
    TOTP.activate(staff, generate_totp_secret())
    confirm = client.get(client.get("/admin/").url).url

    response = client.post(confirm, {"password": "not the password"}, follow=True)

    assert response.request["PATH_INFO"] == "/accounts/reauthenticate/"
    assert client.get("/admin/").status_code == 302
