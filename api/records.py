"""Partner API over the review workflow: records, their proposals and audit trail, decisions.

Thin views: they parse, call review's selectors and services (the same the pages call), and
render. Each endpoint has its own small serializers.
"""

from __future__ import annotations

import django_filters
from django.db.models import Exists, F, FilteredRelation, OuterRef, Q
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from api.audit import AuditEventOut
from api.base import Cursor, WorkspaceViewSet
from api.errors import ERRORS, Conflict
from connectors.qonto.models import Posting, QontoEntry
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.models import Action, Band, Proposal
from matching.selectors import MATCHED_KINDS
from review import services
from review.decisions import Kind, decision_check
from review.models import Decision, DecisionKind
from review.selectors.audit import record_audit_events
from review.selectors.records import (
    decisions_for_workspace,
    record_current_proposal,
    record_decisions,
)
from review.services import DecisionError
from well.models import Role

# --- serializers ---------------------------------------------------------------------------


class EntryOut(serializers.Serializer):
    """A Qonto entry as a candidate target."""

    id = serializers.UUIDField()
    kind = serializers.CharField()
    qonto_id = serializers.CharField()
    amount = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    currency = serializers.CharField()
    date = serializers.DateField(allow_null=True)
    counterparty = serializers.CharField()
    invoice_number = serializers.CharField()


class ReasonOut(serializers.Serializer):
    signal = serializers.CharField()
    detail = serializers.CharField()
    weight = serializers.FloatField(required=False)


class SignalOut(serializers.Serializer):
    level = serializers.CharField(allow_null=True)
    weight = serializers.FloatField(allow_null=True)


class ProposalBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(Action.choices)
    confidence = serializers.FloatField()
    band = serializers.ChoiceField(Band.choices)


class RecordOut(serializers.Serializer):
    """One line of the records list."""

    id = serializers.IntegerField()
    kind = serializers.CharField(source="entity_type")
    qbo_id = serializers.CharField()
    state = serializers.ChoiceField(RecordState.choices)
    supplier_name = serializers.CharField()
    vendor_qbo_id = serializers.CharField()
    invoice_number = serializers.CharField()
    total_amount = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    currency = serializers.CharField()
    issue_date = serializers.DateField(allow_null=True)
    due_date = serializers.DateField(allow_null=True)
    deleted = serializers.BooleanField()
    pulled_at = serializers.DateTimeField()
    proposal = serializers.SerializerMethodField()

    @extend_schema_field(ProposalBriefOut(allow_null=True))
    def get_proposal(self, record) -> dict | None:
        if getattr(record, "p_id", None) is None:
            return None
        return {
            "id": record.p_id,
            "action": record.p_action,
            "confidence": record.p_confidence,
            "band": record.p_band,
        }

    def to_representation(self, record) -> dict:
        """The declared fields' output, built directly (see `row`)."""
        return self.row(
            {
                **{name: getattr(record, name) for name in LIST_FIELDS},
                "p_id": getattr(record, "p_id", None),
                "p_action": getattr(record, "p_action", None),
                "p_confidence": getattr(record, "p_confidence", None),
                "p_band": getattr(record, "p_band", None),
            }
        )

    @staticmethod
    def row(values: dict) -> dict:
        """One list line from the list query's plain values: the list's hot path, no model
        instances. tests/api/test_records.py checks it against DRF's generic rendering."""
        amount = values["total_amount"]
        issue_date = values["issue_date"]
        due_date = values["due_date"]
        return {
            "id": values["id"],
            "kind": values["entity_type"],
            "qbo_id": values["qbo_id"],
            "state": values["state"],
            "supplier_name": values["supplier_name"],
            "vendor_qbo_id": values["vendor_qbo_id"],
            "invoice_number": values["invoice_number"],
            "total_amount": None if amount is None else _AMOUNT.to_representation(amount),
            "currency": values["currency"],
            "issue_date": issue_date.isoformat() if issue_date else None,
            "due_date": due_date.isoformat() if due_date else None,
            "deleted": values["deleted"],
            "pulled_at": _TIME.to_representation(values["pulled_at"]),
            "proposal": None
            if values["p_id"] is None
            else {
                "id": values["p_id"],
                "action": values["p_action"],
                "confidence": values["p_confidence"],
                "band": values["p_band"],
            },
        }


_AMOUNT = serializers.DecimalField(max_digits=19, decimal_places=4)
_TIME = serializers.DateTimeField()


class MappedOut(serializers.Serializer):
    """The mapping table's typed fields, as Well will post them."""

    total_amount = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    tax_amount = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    currency = serializers.CharField()
    issue_date = serializers.DateField(allow_null=True)
    due_date = serializers.DateField(allow_null=True)
    invoice_number = serializers.CharField()
    label = serializers.CharField()
    supplier_name = serializers.CharField()
    supplier_website = serializers.CharField()
    supplier_tax_id = serializers.CharField()
    vendor_qbo_id = serializers.CharField()


class CandidateOut(serializers.Serializer):
    rank = serializers.IntegerField()
    action = serializers.ChoiceField(Action.choices)
    target = EntryOut(allow_null=True)
    confidence = serializers.FloatField()
    signals = serializers.DictField(child=SignalOut(), help_text="per-signal level and weight")
    reasons = ReasonOut(many=True)


class ProposalOut(serializers.Serializer):
    id = serializers.IntegerField()
    record_version = serializers.CharField()
    action = serializers.ChoiceField(Action.choices)
    target = EntryOut(allow_null=True)
    confidence = serializers.FloatField()
    band = serializers.ChoiceField(Band.choices)
    auto_threshold = serializers.FloatField()
    review_threshold = serializers.FloatField()
    rule = serializers.JSONField()
    gates_failed = serializers.ListField(child=serializers.CharField())
    reasons = ReasonOut(many=True)
    model_version = serializers.CharField()
    changed_after_posting = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    candidates = CandidateOut(many=True, source="candidates.all")


class PostingBriefOut(serializers.Serializer):
    id = serializers.UUIDField()
    action = serializers.CharField()
    state = serializers.CharField()
    qonto_id = serializers.CharField()
    qonto_url = serializers.CharField()


class VerdictOut(serializers.Serializer):
    """The decision service's answer for one decision: would it be taken now, and what it does."""

    allowed = serializers.BooleanField()
    reason = serializers.CharField(help_text="why not, when not allowed")
    outcome = serializers.CharField(help_text="what it does in Qonto, when allowed")


class OfferedOut(serializers.Serializer):
    approve = VerdictOut()
    reject = VerdictOut()
    upload_as_new = VerdictOut()


class RecordDetailOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(source="entity_type")
    qbo_id = serializers.CharField()
    sync_token = serializers.CharField()
    state = serializers.ChoiceField(RecordState.choices)
    deleted = serializers.BooleanField()
    errored = serializers.BooleanField()
    error_reason = serializers.CharField()
    last_updated_at = serializers.DateTimeField(allow_null=True)
    pulled_at = serializers.DateTimeField()
    quickbooks = serializers.JSONField(source="payload", help_text="the QuickBooks object")
    mapped = MappedOut(source="*")
    enrichment = serializers.JSONField(
        allow_null=True, help_text="counterparty enrichment with the provenance of each field"
    )
    proposal = ProposalOut(allow_null=True)
    postings = PostingBriefOut(many=True, source="postings_list")
    decisions = OfferedOut(
        source="offered",
        help_text="what the decision service would accept now (the record page's buttons)",
    )


class DecisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    record = serializers.IntegerField(source="record_id")
    proposal = serializers.IntegerField(source="proposal_id", allow_null=True)
    kind = serializers.ChoiceField(DecisionKind.choices)
    note = serializers.CharField()
    actor_type = serializers.CharField()
    actor_label = serializers.CharField()
    right_action = serializers.CharField()
    right_target = serializers.UUIDField(source="right_target_id", allow_null=True)
    edits = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    state_before = serializers.CharField()
    state_after = serializers.CharField()
    created_at = serializers.DateTimeField()


class DecidedOut(serializers.Serializer):
    decision = DecisionOut()
    record = RecordOut()


class EditsIn(serializers.Serializer):
    ledger_account = serializers.CharField(required=False, allow_blank=True)
    invoice_number = serializers.CharField(required=False, allow_blank=True)
    due_date = serializers.DateField(required=False, allow_null=True)


class NoteIn(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    proposal = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="the proposal you decided on (its id); a decision on a proposal replaced since "
        "is refused with 409",
    )


class ApproveIn(NoteIn):
    edits = EditsIn(required=False)


class PinIn(ApproveIn):
    entry = serializers.UUIDField(help_text="the Qonto entry to link (a candidate's target.id)")


# --- records -------------------------------------------------------------------------------


class RecordFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=RecordState.choices)
    kind = django_filters.ChoiceFilter(
        field_name="entity_type", choices=[(k, k) for k in sorted(MATCHED_KINDS)]
    )
    vendor = django_filters.CharFilter(
        method="filter_vendor", help_text="QuickBooks vendor ID or part of the supplier's name"
    )
    date_from = django_filters.DateFilter(field_name="issue_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="issue_date", lookup_expr="lte")
    confidence_min = django_filters.NumberFilter(method="filter_confidence")
    confidence_max = django_filters.NumberFilter(method="filter_confidence")

    class Meta:
        model = SourceRecord
        fields: list[str] = []

    def filter_vendor(self, queryset, name, value):
        return queryset.filter(Q(vendor_qbo_id=value) | Q(supplier_name__icontains=value))

    def filter_confidence(self, queryset, name, value):
        lookup = "confidence__gte" if name == "confidence_min" else "confidence__lte"
        current = Proposal.objects.filter(
            record=OuterRef("pk"), is_current=True, **{lookup: float(value)}
        )
        return queryset.filter(Exists(current))


class CursorById(Cursor):
    """Newest first by ID, read from plain values rows (the same cursors as by pk)."""

    ordering = "-id"


def _decided(decision: Decision, record: SourceRecord) -> dict:
    return {"decision": DecisionOut(decision).data, "record": RecordOut(record).data}


LIST_FIELDS = (
    "id",
    "entity_type",
    "qbo_id",
    "state",
    "supplier_name",
    "vendor_qbo_id",
    "invoice_number",
    "total_amount",
    "currency",
    "issue_date",
    "due_date",
    "deleted",
    "pulled_at",
)


class RecordViewSet(WorkspaceViewSet):
    """QuickBooks transactions (bills, purchases, vendor credits) and the decisions on them."""

    queryset = SourceRecord.objects.none()  # the schema reads parameter types from it

    pagination_class = CursorById
    lookup_url_kwarg = "record_id"
    lookup_value_converter = "int"
    filter_backends = [DjangoFilterBackend]
    filterset_class = RecordFilter
    action_roles = {
        "approve": Role.ACCOUNTANT,
        "reject": Role.ACCOUNTANT,
        "pin": Role.ACCOUNTANT,
        "upload_as_new": Role.ACCOUNTANT,
    }

    def get_queryset(self):
        return (
            SourceRecord.objects.for_workspace(self.workspace)
            .filter(entity_type__in=MATCHED_KINDS)
            .order_by("-pk")
        )

    @extend_schema(responses={200: RecordOut(many=True), **ERRORS})
    def list(self, request):
        # Plain values, not model instances: the partner list's hot path (docs/benchmarks.md).
        query = (
            self.filter_queryset(self.get_queryset())
            .annotate(
                current=FilteredRelation("proposals", condition=Q(proposals__is_current=True)),
                p_id=F("current__id"),
                p_action=F("current__action"),
                p_confidence=F("current__confidence"),
                p_band=F("current__band"),
            )
            .values(*LIST_FIELDS, "p_id", "p_action", "p_confidence", "p_band")
        )
        page = self.paginate_queryset(query)
        return self.get_paginated_response([RecordOut.row(values) for values in page])

    @extend_schema(responses={200: RecordDetailOut, **ERRORS})
    def retrieve(self, request, record_id: int):
        record = self.get_object()
        proposal = record_current_proposal(record=record)
        record.proposal = proposal
        record.enrichment = proposal.counterparty if proposal else None
        record.offered = {
            kind: decision_check(record=record, kind=kind, proposal=proposal)
            for kind in (Kind.APPROVE, Kind.REJECT, Kind.UPLOAD_AS_NEW)
        }
        record.postings_list = list(
            Posting.objects.for_workspace(self.workspace)
            .filter(record=record)
            .order_by("-created_at")
        )
        return Response(RecordDetailOut(record).data)

    def _decide(self, service, serializer_class, **extra):
        data = serializer_class(data=self.request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        record = self.get_object()
        kwargs = {"note": values.get("note", ""), "proposal_id": values.get("proposal")}
        if "edits" in values:
            kwargs["edits"] = values["edits"] or None
        if "entry" in values:
            entry = QontoEntry.objects.for_workspace(self.workspace).filter(pk=values["entry"])
            kwargs["entry"] = entry.first()
            if kwargs["entry"] is None:
                raise ValidationError({"entry": ["No such Qonto entry in this workspace."]})
        caller = self.caller
        try:
            decision = service(
                record=record, actor=caller.actor, membership=caller.membership, **kwargs
            )
        except DecisionError as exc:
            raise Conflict(str(exc)) from exc
        return Response(_decided(decision, record), status=201)

    def _once(self, service, serializer_class):
        return self.check_idempotent(lambda: self._decide(service, serializer_class))

    @extend_schema(request=ApproveIn, responses={201: DecidedOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request, record_id: int):
        """Approve the current proposal (after optional edits of mapped fields): it is posted."""
        return self._once(services.record_approve, ApproveIn)

    @extend_schema(request=ApproveIn, responses={201: DecidedOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request, record_id: int):
        """The proposal is wrong: nothing is posted (the note and corrections are kept)."""
        return self._once(services.record_reject, ApproveIn)

    @extend_schema(request=PinIn, responses={201: DecidedOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def pin(self, request, record_id: int):
        """Link the record to another Qonto entry (a candidate) and post it."""
        return self._once(services.record_pin, PinIn)

    @extend_schema(request=ApproveIn, responses={201: DecidedOut, **ERRORS})
    @action(detail=True, methods=["post"], url_path="upload-as-new")
    def upload_as_new(self, request, record_id: int):
        """No Qonto entry is this record: upload it as a new supplier invoice."""
        return self._once(services.record_upload_as_new, ApproveIn)

    @extend_schema(responses={200: DecisionOut(many=True), **ERRORS})
    @action(detail=True, methods=["get"])
    def decisions(self, request, record_id: int):
        page = self.paginate_queryset(record_decisions(record=self.get_object()))
        return self.get_paginated_response(DecisionOut(page, many=True).data)

    @extend_schema(responses={200: AuditEventOut(many=True), **ERRORS})
    @action(detail=True, methods=["get"], url_path="audit-events")
    def audit_events(self, request, record_id: int):
        # The same events as the record page's audit timeline, newest first.
        events = record_audit_events(record=self.get_object())
        page = self.paginate_queryset(events.order_by("-pk"))
        return self.get_paginated_response(AuditEventOut(page, many=True).data)


class DecisionViewSet(WorkspaceViewSet):
    """Every decision taken in the workspace, people's, keys' and Well's, newest first."""

    queryset = Decision.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "decision_id"
    lookup_value_converter = "int"

    def get_queryset(self):
        return decisions_for_workspace(workspace=self.workspace).order_by("-pk")

    @extend_schema(responses={200: DecisionOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DecisionOut(page, many=True).data)

    @extend_schema(responses={200: DecisionOut, **ERRORS})
    def retrieve(self, request, decision_id: int):
        return Response(DecisionOut(self.get_object()).data)
