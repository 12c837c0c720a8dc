"""The fund's API: the unfunded proposals, for government and foundation staff.

Conventions of ``proposals.api``: views validate their query parameters (a bad one is a 400
naming it), read through ``fund.selectors`` and serialize. The public projects API (with donors
counted) is ``donations.api``: the fund does not know donors.

- ``GET unfunded-proposals/``: adopted proposals without budget that are unlisted or under
  goal. Government staff see their own body's; foundation staff and the site admin every body's;
  anyone else gets a 403.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import GovernmentBody
from proposals.api import FISCAL_YEAR_MAX, FISCAL_YEAR_MIN, RegisterPagination

from . import selectors
from .views import unfunded_scope

# --- Query parameters ---------------------------------------------------------------------------


class UnfundedQuerySerializer(serializers.Serializer):
    body = serializers.SlugRelatedField(
        slug_field="code",
        queryset=GovernmentBody.objects.all(),
        required=False,
        help_text=_("The body's six-digit local government code, e.g. 410004."),
        error_messages={"does_not_exist": _("No government body has the code {value}.")},
    )
    fiscal_year = serializers.IntegerField(
        required=False,
        min_value=FISCAL_YEAR_MIN,
        max_value=FISCAL_YEAR_MAX,
        help_text=_("The proposal's fiscal year (年度) by its starting year, e.g. 2026."),
    )


# --- Serializers --------------------------------------------------------------------------------


class FundBodySerializer(serializers.ModelSerializer):
    class Meta:
        model = GovernmentBody
        fields = ["code", "name"]


class UnfundedProposalSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="proposal.pk", help_text=_("The proposal's id."))
    reference = serializers.CharField(source="proposal.reference")
    title = serializers.CharField(source="proposal.title")
    body = FundBodySerializer(source="proposal.body")
    fiscal_year = serializers.IntegerField(source="proposal.fiscal_year")
    project = serializers.IntegerField(
        source="project.pk",
        allow_null=True,
        default=None,
        help_text=_("The listing project's id; null when not listed (or its project cancelled)."),
    )
    goal_yen = serializers.IntegerField(allow_null=True, source="goal")
    raised_yen = serializers.IntegerField(allow_null=True, source="raised")
    gap_yen = serializers.IntegerField(
        allow_null=True, source="gap", help_text=_("goal − raised; null when not listed.")
    )
    closes_at = serializers.DateTimeField(
        allow_null=True, source="deadline", help_text=_("The deadline; null when not listed.")
    )


# --- Views --------------------------------------------------------------------------------------


class UnfundedProposalsView(GenericAPIView):
    """Adopted proposals without budget still unfunded: not listed, or listed and under goal.

    Government staff see their own body's; foundation staff and the site admin every body's.
    """

    serializer_class = UnfundedProposalSerializer
    pagination_class = RegisterPagination
    filter_backends: list = []  # the query serializer validates the parameters

    @extend_schema(
        parameters=[UnfundedQuerySerializer],
        responses=UnfundedProposalSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise NotAuthenticated
        scope = unfunded_scope(request.user)
        if scope is False:
            raise PermissionDenied(
                _("Only government and foundation staff may see the unfunded proposals.")
            )
        params = UnfundedQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        body = params.validated_data.get("body")
        fiscal_year = params.validated_data.get("fiscal_year")
        if scope is True:
            rows = selectors.unfunded_proposals(body=body, fiscal_year=fiscal_year)
        elif body is not None and body.pk != scope:
            rows = []  # another body's proposals are not this officer's to see
        else:
            rows = selectors.unfunded_proposals(body=scope, fiscal_year=fiscal_year)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(UnfundedProposalSerializer(page, many=True).data)
