"""The workspace's audit trail, read only (a record's own trail is under its endpoint)."""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.base import WorkspaceViewSet
from api.errors import ERRORS
from well.models import AuditEvent


class AuditEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_type = serializers.CharField()
    actor_label = serializers.CharField()
    verb = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()


class AuditEventFilter(django_filters.FilterSet):
    verb = django_filters.CharFilter()
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


class AuditEventViewSet(WorkspaceViewSet):
    """The workspace's audit trail, newest first (append-only: read only here too)."""

    queryset = AuditEvent.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "audit_event_id"
    lookup_value_converter = "int"
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return AuditEvent.objects.for_workspace(self.workspace).order_by("-pk")

    @extend_schema(responses={200: AuditEventOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventOut(page, many=True).data)

    @extend_schema(responses={200: AuditEventOut, **ERRORS})
    def retrieve(self, request, audit_event_id: int):
        return Response(AuditEventOut(self.get_object()).data)
