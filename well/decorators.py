"""View decorators that resolve the workspace from the URL through the user's membership."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from well.i18n import workspace_locale_activate
from well.models import Role
from well.selectors import membership_get


def workspace_view(role: str = Role.VIEWER):
    """Require membership of the URL's workspace (404 otherwise) with at least `role` (403).

    Put it outermost, so that a non-member learns nothing, not even the allowed methods.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, workspace_slug: str, *args, **kwargs):
            membership = membership_get(user=request.user, workspace_slug=workspace_slug)
            if not membership.allows(role):
                raise PermissionDenied(_("Your role in this workspace does not allow this."))
            request.membership = membership
            request.workspace = membership.workspace
            workspace_locale_activate(request, membership.workspace)
            if request.session.get("workspace_slug") != membership.workspace.slug:
                # Only on a change: an unchanged session is not written back on every page.
                request.session["workspace_slug"] = membership.workspace.slug
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
