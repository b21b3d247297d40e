"""What people decided about matching's proposals: the review workflow's own record."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from matching.models import Action, Proposal
from well.models import TenantModel


class DecisionKind(models.TextChoices):
    APPROVE = "approve", _("Approved")
    REJECT = "reject", _("Rejected")
    PIN = "pin", _("Pinned another candidate")
    UPLOAD_AS_NEW = "upload_as_new", _("Upload as new")
    OVERRIDE = "override", _("Override")
    EDIT = "edit", _("Edited")


class Decision(TenantModel):
    """Who judged which proposal, how, and the action they said was right (for learning)."""

    record = models.ForeignKey(
        "connectors.SourceRecord", on_delete=models.CASCADE, related_name="decisions"
    )
    proposal = models.ForeignKey(
        Proposal, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    kind = models.CharField(max_length=16, choices=DecisionKind.choices)
    note = models.TextField(blank=True)
    actor_type = models.CharField(max_length=10)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    right_action = models.CharField(max_length=8, choices=Action.choices, blank=True)
    right_target = models.ForeignKey(
        "connectors.QontoEntry",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    edits = models.JSONField(default=dict, blank=True)
    state_before = models.CharField(max_length=16)
    state_after = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        # The table keeps the name it had when matching held decisions: `migrate` runs while the
        # previous release still serves (docs/operations.md, "Upgrading"), and that code reads
        # and writes `matching_decision`. Renaming it is for a release after this one.
        db_table = "matching_decision"
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="decision_kind_valid", condition=Q(kind__in=DecisionKind.values)
            ),
            models.CheckConstraint(
                name="decision_override_has_note",
                condition=~Q(kind=DecisionKind.OVERRIDE) | ~Q(note=""),
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="decision_workspace_idx"),
            models.Index(fields=["workspace", "actor_id"], name="decision_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor_label}"
