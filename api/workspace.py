"""The key's workspace (its thresholds) and the workspace's API keys."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.base import WorkspaceAPIView, WorkspaceViewSet
from api.errors import ERRORS
from well import api_auth
from well.models import ApiKey, ApiScope, Role
from well.services import workspace_thresholds_update


class WorkspaceOut(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    storage_region = serializers.CharField()
    auto_threshold = serializers.FloatField()
    review_threshold = serializers.FloatField()


class ThresholdsIn(serializers.Serializer):
    auto_threshold = serializers.FloatField(min_value=0, max_value=1)
    review_threshold = serializers.FloatField(min_value=0, max_value=1)


class WorkspaceView(WorkspaceAPIView):
    """The key's workspace: its thresholds (PATCH needs the admin scope)."""

    roles = {**WorkspaceAPIView.roles, "PATCH": Role.OWNER}
    write_role = Role.OWNER

    @extend_schema(responses={200: WorkspaceOut, **ERRORS})
    def get(self, request):
        return Response(WorkspaceOut(self.workspace).data)

    @extend_schema(request=ThresholdsIn, responses={200: WorkspaceOut, **ERRORS})
    def patch(self, request):
        data = ThresholdsIn(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = workspace_thresholds_update(
            workspace=self.workspace, actor=self.caller.actor, **data.validated_data
        )
        return Response(WorkspaceOut(workspace).data)


class ApiKeyOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiScope.choices))
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreated(ApiKeyOut):
    key = serializers.CharField(help_text="the secret: shown once, never again")


class ApiKeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiScope.choices), min_length=1)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="refused from then on; omit: never expires"
    )

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry must be in the future.")
        return value


class ApiKeyViewSet(WorkspaceViewSet):
    """The workspace's API keys (the admin scope): list, create (secret shown once), revoke."""

    queryset = ApiKey.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "api_key_id"
    lookup_value_converter = "int"
    roles = {"GET": Role.OWNER, "HEAD": Role.OWNER, "OPTIONS": Role.VIEWER}
    write_role = Role.OWNER

    def get_queryset(self):
        return api_auth.api_keys_for_workspace(workspace=self.workspace).order_by("-pk")

    @extend_schema(responses={200: ApiKeyOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeyOut(page, many=True).data)

    @extend_schema(request=ApiKeyIn, responses={201: ApiKeyCreated, **ERRORS})
    def create(self, request):
        data = ApiKeyIn(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = api_auth.api_key_create(
            workspace=self.workspace,
            actor=self.caller.actor,
            created_by=self.caller.membership.user if self.caller.membership else None,
            **data.validated_data,
        )
        return Response({**ApiKeyOut(key).data, "key": secret}, status=201)

    @extend_schema(responses={200: ApiKeyOut, **ERRORS})
    def retrieve(self, request, api_key_id: int):
        return Response(ApiKeyOut(self.get_object()).data)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, api_key_id: int):
        api_auth.api_key_revoke(key=self.get_object(), actor=self.caller.actor)
        return Response(status=204)
