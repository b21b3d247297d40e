"""Partner API over connectors: connections (status and health, never a secret), sync runs,
postings toward Qonto. Thin views over connectors' selectors and services."""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled
from rest_framework.response import Response

from api.base import CursorByCreated, WorkspaceViewSet, enum_field
from api.errors import ERRORS, Conflict
from connectors import sync_requests
from connectors.models import (
    Connection,
    ConnectionStatus,
    Provider,
    SyncRun,
    SyncStatus,
)
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.selectors import connections_for_workspace
from well.models import Role


class ConnectionOut(serializers.Serializer):
    id = serializers.UUIDField()
    provider = serializers.ChoiceField(Provider.choices)
    status = serializers.ChoiceField(ConnectionStatus.choices)
    external_id = serializers.CharField()
    external_name = serializers.CharField()
    connected_at = serializers.DateTimeField(allow_null=True)
    last_good_sync_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    last_error_at = serializers.DateTimeField(allow_null=True)
    access_expires_at = serializers.DateTimeField(allow_null=True)
    refresh_expires_at = serializers.DateTimeField(allow_null=True)
    sync_minute = serializers.IntegerField(help_text="minute of the hour of the hourly sync")


class SyncIn(serializers.Serializer):
    full = serializers.BooleanField(required=False, default=False)


class SyncQueuedOut(serializers.Serializer):
    queued = serializers.BooleanField()
    syncs_last_24h = serializers.IntegerField()


class SyncRunOut(serializers.Serializer):
    id = serializers.IntegerField()
    connection = serializers.UUIDField(source="connection_id")
    status = serializers.ChoiceField(SyncStatus.choices)
    full = serializers.BooleanField()
    trigger = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    api_calls = serializers.IntegerField()
    progress = serializers.JSONField()
    error = serializers.CharField()


class PostingOut(serializers.Serializer):
    id = serializers.UUIDField()
    record = serializers.IntegerField(source="record_id")
    source_version = serializers.CharField()
    action = enum_field(PostingAction.choices)
    state = enum_field(PostingState.choices)
    qonto_id = serializers.CharField()
    qonto_url = serializers.CharField(help_text="link to the object in Qonto")
    target_kind = serializers.CharField()
    outcome = serializers.CharField()
    message = serializers.CharField()
    error_code = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    done_at = serializers.DateTimeField(allow_null=True)


class ConnectionViewSet(WorkspaceViewSet):
    """The workspace's QuickBooks and Qonto connections: status and health, never a token."""

    queryset = Connection.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "connection_id"
    pagination_class = CursorByCreated
    lookup_value_converter = "uuid"
    action_roles = {"sync": Role.ACCOUNTANT}

    def get_queryset(self):
        return connections_for_workspace(workspace=self.workspace)

    @extend_schema(responses={200: ConnectionOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ConnectionOut(page, many=True).data)

    @extend_schema(responses={200: ConnectionOut, **ERRORS})
    def retrieve(self, request, connection_id):
        return Response(ConnectionOut(self.get_object()).data)

    @extend_schema(request=SyncIn, responses={202: SyncQueuedOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def sync(self, request, connection_id):
        """Queue a sync now, within the cap of 24 syncs a day per connection (else 429)."""
        connection = self.get_object()
        data = SyncIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            requested = sync_requests.connection_sync_request(
                connection=connection, actor=self.caller.actor, **data.validated_data
            )
        except sync_requests.SyncCapReached as exc:
            raise Throttled(wait=exc.retry_after.total_seconds(), detail=str(exc)) from exc
        except sync_requests.NotConnected as exc:
            raise Conflict(str(exc)) from exc
        return Response({"queued": True, "syncs_last_24h": requested.syncs_last_24h}, status=202)


class SyncRunFilter(django_filters.FilterSet):
    connection = django_filters.UUIDFilter(field_name="connection_id")
    status = django_filters.ChoiceFilter(choices=SyncStatus.choices)

    class Meta:
        model = SyncRun
        fields: list[str] = []


class SyncRunViewSet(WorkspaceViewSet):
    queryset = SyncRun.objects.none()  # the schema reads parameter types from it
    lookup_url_kwarg = "sync_run_id"
    lookup_value_converter = "int"
    filter_backends = [DjangoFilterBackend]
    filterset_class = SyncRunFilter

    def get_queryset(self):
        return SyncRun.objects.for_workspace(self.workspace).order_by("-pk")

    @extend_schema(responses={200: SyncRunOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(SyncRunOut(page, many=True).data)

    @extend_schema(responses={200: SyncRunOut, **ERRORS})
    def retrieve(self, request, sync_run_id: int):
        return Response(SyncRunOut(self.get_object()).data)


class PostingFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=PostingState.choices)
    record = django_filters.NumberFilter(field_name="record_id")

    class Meta:
        model = Posting
        fields: list[str] = []


class PostingViewSet(WorkspaceViewSet):
    """The outbox toward Qonto: each posting's state, Qonto ID and link."""

    queryset = Posting.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "posting_id"
    pagination_class = CursorByCreated
    lookup_value_converter = "uuid"
    filter_backends = [DjangoFilterBackend]
    filterset_class = PostingFilter

    def get_queryset(self):
        return Posting.objects.for_workspace(self.workspace)

    @extend_schema(responses={200: PostingOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(PostingOut(page, many=True).data)

    @extend_schema(responses={200: PostingOut, **ERRORS})
    def retrieve(self, request, posting_id):
        return Response(PostingOut(self.get_object()).data)
