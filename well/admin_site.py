"""The staff admin: reached through allauth's login, and only with MFA."""

from __future__ import annotations

import time

from allauth.account import app_settings as account_settings
from allauth.account.authentication import get_authentication_records
from allauth.account.decorators import secure_admin_login
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from well.auth import user_has_mfa


def session_passed_mfa(request) -> bool:
    return any(
        record.get("method") == "mfa"
        for record in get_authentication_records(request, request.user)
    )


def session_confirmed_password_recently(request) -> bool:
    """The password was just confirmed at allauth's "Confirm Access" prompt."""
    since = time.time() - account_settings.REAUTHENTICATION_TIMEOUT
    return any(
        record.get("method") == "password"
        and record.get("reauthenticated")
        and record.get("at", 0) >= since
        for record in get_authentication_records(request, request.user)
    )


class WellAdminSite(AdminSite):
    site_header = "Well staff"
    site_title = "Well staff"
    index_title = "Tenants and operations"

    def has_permission(self, request) -> bool:
        return (
            super().has_permission(request)
            and user_has_mfa(request.user)
            and session_passed_mfa(request)
        )

    def login(self, request, extra_context=None):
        user = request.user
        if user.is_authenticated and user.is_staff and user.is_active:
            if not user_has_mfa(user):
                messages.warning(request, _("Staff must set up two-factor authentication first."))
                return redirect("mfa_activate_totp")
            if not session_passed_mfa(request):
                # The admin needs the second factor in this session. Once the password is
                # confirmed, ask for the code next instead of asking for the password again
                # (issue 16: the correct password looped back to "Confirm Access").
                next_url = urlencode({"next": request.path})
                if session_confirmed_password_recently(request):
                    messages.info(
                        request,
                        _("Password confirmed. Now enter the code from your authenticator app."),
                    )
                    return redirect(f"{reverse('mfa_reauthenticate')}?{next_url}")
                return redirect(f"{reverse('account_reauthenticate')}?{next_url}")
        return secure_admin_login(super().login)(request, extra_context)
