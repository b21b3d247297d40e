"""Per-vendor rules: an auto threshold of their own, or never automatic (writes: admin scope)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.base import WorkspaceViewSet
from api.errors import ERRORS
from matching.models import VendorRule
from review import services
from well.models import Role


class VendorRuleOut(serializers.Serializer):
    id = serializers.IntegerField()
    vendor_qbo_id = serializers.CharField()
    vendor_name = serializers.CharField()
    auto_threshold = serializers.FloatField(allow_null=True)
    never_auto = serializers.BooleanField()
    note = serializers.CharField()
    updated_at = serializers.DateTimeField()


class VendorRuleIn(serializers.Serializer):
    vendor_qbo_id = serializers.CharField(max_length=64)
    vendor_name = serializers.CharField(max_length=500, required=False, allow_blank=True)
    auto_threshold = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True
    )
    never_auto = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class VendorRuleViewSet(WorkspaceViewSet):
    """Per-vendor auto thresholds or never-auto (writes need the admin scope)."""

    queryset = VendorRule.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "vendor_rule_id"
    lookup_value_converter = "int"
    write_role = Role.OWNER

    def get_queryset(self):
        return VendorRule.objects.for_workspace(self.workspace).order_by("-pk")

    @extend_schema(responses={200: VendorRuleOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(VendorRuleOut(page, many=True).data)

    @extend_schema(responses={200: VendorRuleOut, **ERRORS})
    def retrieve(self, request, vendor_rule_id: int):
        return Response(VendorRuleOut(self.get_object()).data)

    def _set(self, data: dict, status: int = 200):
        rule = services.vendor_rule_set(workspace=self.workspace, actor=self.caller.actor, **data)
        return Response(VendorRuleOut(rule).data, status=status)

    @extend_schema(request=VendorRuleIn, responses={201: VendorRuleOut, **ERRORS})
    def create(self, request):
        data = VendorRuleIn(data=request.data)
        data.is_valid(raise_exception=True)
        return self._set(data.validated_data, status=201)

    @extend_schema(request=VendorRuleIn, responses={200: VendorRuleOut, **ERRORS})
    def update(self, request, vendor_rule_id: int):
        rule = self.get_object()
        data = VendorRuleIn(
            data={**dict(request.data.items()), "vendor_qbo_id": rule.vendor_qbo_id}
        )
        data.is_valid(raise_exception=True)
        return self._set(data.validated_data)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, vendor_rule_id: int):
        services.vendor_rule_delete(rule=self.get_object(), actor=self.caller.actor)
        return Response(status=204)
