"""The one service that writes audit events; every app calls it inside its own transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from well.context import current_request_id
from well.models import ActorType, AuditEvent, Workspace


@dataclass(frozen=True)
class Actor:
    """Who did something: a person, a partner's API key, or Well itself."""

    type: str
    id: str
    label: str

    @classmethod
    def user(cls, user) -> Actor:
        return cls(ActorType.USER, str(user.pk), user.get_username() or user.email)

    @classmethod
    def api_key(cls, key_id: Any, label: str) -> Actor:
        return cls(ActorType.API_KEY, str(key_id), label)

    @classmethod
    def system(cls, label: str = "Well") -> Actor:
        return cls(ActorType.SYSTEM, "", label)


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_event_record(
    *,
    workspace: Workspace | int | None,
    actor: Actor,
    verb: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    request_id: str = "",
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the change it records."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    workspace_id = workspace.pk if isinstance(workspace, Workspace) else workspace
    return AuditEvent.objects.create(
        workspace_id=workspace_id,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        verb=verb,
        object_type=object_type,
        object_id=str(object_id),
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason,
        request_id=request_id or current_request_id.get(),
        created_at=timezone.now(),
    )
