"""Reads of tenancy data; everything a user sees passes through a membership."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from well.models import Membership, Workspace


def memberships_for_user(*, user) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")
    )


def membership_get(*, user, workspace_slug: str) -> Membership:
    """The user's membership of the workspace, or 404 (never 403: no existence leak)."""
    membership = memberships_for_user(user=user).filter(workspace__slug=workspace_slug).first()
    if membership is None:
        raise Http404(_("No such workspace."))
    return membership


def workspace_get_by_slug(*, slug: str) -> Workspace | None:
    return Workspace.objects.filter(slug=slug).first()
