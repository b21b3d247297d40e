"""Tenancy services: workspaces and memberships, each change with its audit event."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from well.audit import Actor, audit_event_record
from well.encryption import workspace_key_create
from well.models import Membership, Role, Workspace


class ThresholdError(ValueError):
    pass


def _workspace_settings(workspace: Workspace) -> dict:
    return {
        "name": workspace.name,
        "slug": workspace.slug,
        "storage_region": workspace.storage_region,
        "auto_threshold": workspace.auto_threshold,
        "review_threshold": workspace.review_threshold,
        "language": workspace.language,
        "time_zone": workspace.time_zone,
    }


@transaction.atomic
def workspace_create(
    *,
    name: str,
    actor: Actor,
    owner=None,
    slug: str = "",
    storage_region: str = "eu",
    language: str = "",
    time_zone: str = "",
) -> Workspace:
    fields = {"language": language} if language else {}
    if time_zone:
        fields["time_zone"] = time_zone
    workspace = Workspace.objects.create(
        name=name, slug=slug or slugify(name)[:60], storage_region=storage_region, **fields
    )
    workspace_key_create(workspace=workspace)
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="workspace.created",
        obj=workspace,
        after=_workspace_settings(workspace),
    )
    if owner is not None:
        membership_add(workspace=workspace, user=owner, role=Role.OWNER, actor=actor)
    return workspace


@transaction.atomic
def membership_add(*, workspace: Workspace, user, role: str, actor: Actor) -> Membership:
    membership, created = Membership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_event_record(
            workspace=workspace,
            actor=actor,
            verb="membership.role_changed",
            obj=membership,
            before={"role": before},
            after={"role": role, "user": user.email},
        )
    elif created:
        audit_event_record(
            workspace=workspace,
            actor=actor,
            verb="membership.added",
            obj=membership,
            after={"role": role, "user": user.email},
        )
    return membership


@transaction.atomic
def workspace_thresholds_update(
    *, workspace: Workspace, auto_threshold: float, review_threshold: float, actor: Actor
) -> Workspace:
    if not (0 <= review_threshold <= auto_threshold <= 1):
        raise ThresholdError(_("The thresholds must satisfy 0 % ≤ review ≤ auto-post ≤ 100 %."))
    locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
    before = _workspace_settings(locked)
    locked.auto_threshold = auto_threshold
    locked.review_threshold = review_threshold
    locked.save(update_fields=["auto_threshold", "review_threshold", "updated_at"])
    audit_event_record(
        workspace=locked,
        actor=actor,
        verb="workspace.thresholds_changed",
        obj=locked,
        before=before,
        after=_workspace_settings(locked),
    )
    return locked


@transaction.atomic
def workspace_locale_update(
    *, workspace: Workspace, language: str, time_zone: str, actor: Actor
) -> Workspace:
    """The workspace's default language and the time zone its times are shown in."""
    if language not in {code for code, _name in settings.LANGUAGES}:
        raise ValueError(f"unsupported language {language!r}")
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {time_zone!r}") from exc
    locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
    before = _workspace_settings(locked)
    locked.language, locked.time_zone = language, time_zone
    locked.save(update_fields=["language", "time_zone", "updated_at"])
    audit_event_record(
        workspace=locked,
        actor=actor,
        verb="workspace.locale_changed",
        obj=locked,
        before=before,
        after=_workspace_settings(locked),
    )
    return locked


@transaction.atomic
def workspace_delete(*, workspace: Workspace, actor: Actor, reason: str) -> None:
    """Delete a workspace and its data key: its secrets become unreadable everywhere."""
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="workspace.deleted",
        obj=workspace,
        before=_workspace_settings(workspace),
        reason=reason,
    )
    workspace.delete()
