"""What the matching engine proposed for each QuickBooks record, and its fitted models.

What people decided about a proposal is review's (review.models.Decision).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from well.models import TenantModel


class Action(models.TextChoices):
    LINK = "link", _("Link to a Qonto entry")
    CREATE = "create", _("Upload as new")


class Band(models.TextChoices):
    AUTO = "auto", _("Auto-approved")
    REVIEW = "review", _("Review")
    REFUSED = "refused", _("Refused")


class Proposal(TenantModel):
    """The engine's decision for one version of one record; the newest one is current."""

    record = models.ForeignKey(
        "connectors.SourceRecord", on_delete=models.CASCADE, related_name="proposals"
    )
    record_version = models.CharField(max_length=32, blank=True, help_text="SyncToken proposed")
    action = models.CharField(max_length=8, choices=Action.choices)
    target = models.ForeignKey(
        "connectors.QontoEntry",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    confidence = models.FloatField()
    band = models.CharField(max_length=8, choices=Band.choices)
    auto_threshold = models.FloatField(help_text="auto threshold in force (vendor rule applied)")
    review_threshold = models.FloatField(help_text="review threshold in force")
    rule = models.JSONField(default=dict, blank=True, help_text="the vendor rule applied, if any")
    gates_failed = models.JSONField(default=list, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    counterparty = models.JSONField(default=dict, blank=True, help_text="enrichment + provenance")
    features = models.JSONField(default=dict, blank=True)
    comparisons = models.JSONField(default=dict, blank=True)
    vendor_id = models.CharField(max_length=64, blank=True)
    model_version = models.CharField(max_length=80, blank=True)
    changed_after_posting = models.BooleanField(
        default=False, help_text="QuickBooks changed the record after Well posted it"
    )
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("proposal")
        verbose_name_plural = _("proposals")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["record"], condition=Q(is_current=True), name="proposal_one_current"
            ),
            models.CheckConstraint(
                name="proposal_confidence_0_1", condition=Q(confidence__gte=0, confidence__lte=1)
            ),
            models.CheckConstraint(name="proposal_band_valid", condition=Q(band__in=Band.values)),
            models.CheckConstraint(
                name="proposal_action_valid", condition=Q(action__in=Action.values)
            ),
            models.CheckConstraint(
                name="proposal_create_has_no_target",
                condition=Q(action=Action.LINK) | Q(target__isnull=True),
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "is_current", "band", "confidence"],
                name="proposal_queue_idx",
            ),
            models.Index(fields=["workspace", "vendor_id"], name="proposal_vendor_idx"),
            # The review queue sorted by confidence or age reads current proposals in order.
            models.Index(
                fields=["workspace", "confidence", "id"],
                condition=Q(is_current=True),
                name="proposal_current_conf_idx",
            ),
            models.Index(
                fields=["workspace", "created_at", "id"],
                condition=Q(is_current=True),
                name="proposal_current_created_idx",
            ),
            # The queue's reason filter choices: only the few current proposals a gate stopped.
            models.Index(
                fields=["workspace"],
                condition=Q(is_current=True) & ~Q(gates_failed=[]),
                name="proposal_current_gated_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.confidence:.2f} ({self.band})"

    @property
    def target_key(self) -> tuple[str, str] | None:
        return (self.target.kind, self.target.qonto_id) if self.target_id else None


class Candidate(TenantModel):
    """One ranked action of a proposal (rank 1 is the proposal's own), kept for review."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="candidates")
    rank = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    target = models.ForeignKey(
        "connectors.QontoEntry",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    confidence = models.FloatField()
    signals = models.JSONField(default=dict, blank=True, help_text="{signal: {level, weight}}")
    reasons = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("candidate")
        verbose_name_plural = _("candidates")
        ordering = ["proposal", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "rank"], name="candidate_rank_unique"),
            models.CheckConstraint(
                name="candidate_confidence_0_1", condition=Q(confidence__gte=0, confidence__lte=1)
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.action} {self.confidence:.2f}"


class WorkspaceModel(TenantModel):
    """The workspace's matching model, fitted on its own books (matching.core.Model.to_dict()).

    What it was fitted on and when is kept beside it, for staff: a model is data, refreshed as
    the workspace's history and its reviewers' answers grow.
    """

    data = models.JSONField(default=dict)
    version = models.CharField(max_length=80)
    feedback_count = models.PositiveIntegerField(
        default=0, help_text="reviewer answers since this model was fitted"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    fitted_at = models.DateTimeField(null=True, blank=True)
    history_links = models.PositiveIntegerField(default=0, help_text="past links fitted on")
    reviewer_labels = models.PositiveIntegerField(default=0, help_text="reviewer answers fitted on")
    open_records = models.PositiveIntegerField(default=0, help_text="undecided records fitted on")
    entries = models.PositiveIntegerField(default=0, help_text="Qonto entries fitted on")

    class Meta:
        verbose_name = _("workspace matching model")
        verbose_name_plural = _("workspace matching models")
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="workspace_model_one"),
        ]

    def __str__(self) -> str:
        return f"model {self.version}"


class VendorRule(TenantModel):
    """A per-vendor override: its own auto threshold, or never auto-post."""

    vendor_qbo_id = models.CharField(max_length=64)
    vendor_name = models.CharField(max_length=500, blank=True)
    auto_threshold = models.FloatField(null=True, blank=True)
    never_auto = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("vendor rule")
        verbose_name_plural = _("vendor rules")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "vendor_qbo_id"], name="vendor_rule_one_per_vendor"
            ),
            models.CheckConstraint(
                name="vendor_rule_threshold_0_1",
                condition=Q(auto_threshold__isnull=True)
                | Q(auto_threshold__gte=0, auto_threshold__lte=1),
            ),
        ]

    def __str__(self) -> str:
        what = "never auto" if self.never_auto else f"auto at {self.auto_threshold}"
        return f"{self.vendor_name or self.vendor_qbo_id}: {what}"
