"""Outgoing webhooks: the endpoints that receive the workspace's events, and their log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from api.base import WorkspaceViewSet, enum_field
from api.errors import ERRORS
from well import webhooks
from well.models import DeliveryState, Role, WebhookEndpoint, WebhookEvent


class WebhookOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(WebhookEvent.choices))
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookCreated(WebhookOut):
    secret = serializers.CharField(help_text="the signing secret: shown once, never again")


class WebhookIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(WebhookEvent.choices), required=False, allow_empty=True
    )


class WebhookPatchIn(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(WebhookEvent.choices), required=False
    )
    active = serializers.BooleanField(required=False)


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    event_id = serializers.UUIDField()
    state = enum_field(DeliveryState.choices)
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


class WebhookViewSet(WorkspaceViewSet):
    """Endpoints that receive the workspace's events (the admin scope), and their delivery log."""

    queryset = WebhookEndpoint.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "webhook_id"
    lookup_value_converter = "int"
    roles = {"GET": Role.OWNER, "HEAD": Role.OWNER, "OPTIONS": Role.VIEWER}
    write_role = Role.OWNER

    def get_queryset(self):
        return webhooks.webhook_endpoints_for_workspace(workspace=self.workspace).order_by("-pk")

    @extend_schema(responses={200: WebhookOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookOut(page, many=True).data)

    @extend_schema(request=WebhookIn, responses={201: WebhookCreated, **ERRORS})
    def create(self, request):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhooks.webhook_endpoint_create(
            workspace=self.workspace,
            url=data.validated_data["url"],
            events=data.validated_data.get("events") or [],
            actor=self.caller.actor,
        )
        return Response({**WebhookOut(endpoint).data, "secret": secret}, status=201)

    @extend_schema(responses={200: WebhookOut, **ERRORS})
    def retrieve(self, request, webhook_id: int):
        return Response(WebhookOut(self.get_object()).data)

    @extend_schema(request=WebhookPatchIn, responses={200: WebhookOut, **ERRORS})
    def partial_update(self, request, webhook_id: int):
        endpoint = self.get_object()
        data = WebhookPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_update(
            endpoint=endpoint, actor=self.caller.actor, **data.validated_data
        )
        return Response(WebhookOut(endpoint).data)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, webhook_id: int):
        webhooks.webhook_endpoint_delete(endpoint=self.get_object(), actor=self.caller.actor)
        return Response(status=204)

    @extend_schema(responses={200: DeliveryOut(many=True), **ERRORS})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, webhook_id: int):
        endpoint = self.get_object()
        page = self.paginate_queryset(webhooks.webhook_deliveries_for_endpoint(endpoint=endpoint))
        return self.get_paginated_response(DeliveryOut(page, many=True).data)
