"""The fund's API: the unfunded proposals, for government and foundation staff; the sponsors'
match pools, public, and each pool's statement, for its sponsor and the foundation.

Conventions of ``proposals.api``: views validate their query parameters (a bad one is a 400
naming it), read through ``fund.selectors`` and serialize. The public projects API (with donors
counted) is ``donations.api``: the fund does not know donors.

- ``GET unfunded-proposals/``: adopted proposals without budget that are unlisted or under
  goal. Government staff see their own body's; foundation staff and the site admin every body's;
  anyone else gets a 403.
- ``GET match-pools/``: every pool with its rules and what it pledged, matched (net of releases)
  and has left — nothing about the sponsor's payments and nothing about donors. ``?state=``
  active or ended; ``?project=`` the pools whose rules and window take that project's gifts now.
  Paginated; a page costs a fixed number of queries (the figures are one aggregate).
  ``GET match-pools/{id}/``: one pool.
- ``GET match-pools/{id}/statement/``: the pool, all its figures (paid, unpaid, released,
  returned too) and every line that moved its money. Private: the sponsor's members, foundation
  staff and the site admin (``pool.view_statement``); anyone else signed in gets a 404, and an
  anonymous caller the API's usual 403. A matched gift appears by date, project and amount only.
"""

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import GovernmentBody
from accounts.policy import may
from proposals.api import (
    ANY_ID,
    FISCAL_YEAR_MAX,
    FISCAL_YEAR_MIN,
    SIGNED_IN,
    RegisterPagination,
)

from . import selectors
from .ledger import EntryKind
from .matching import eligible_pools
from .models import MatchPool, Project
from .views import unfunded_scope

VIEW_STATEMENT = "pool.view_statement"

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


# --- Match pools: query parameters and serializers ------------------------------------------


class PoolQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=MatchPool.State.choices,
        required=False,
        help_text=_("active: still matching (or not started yet); ended: closed by staff or time."),
        error_messages={"invalid_choice": _("Choose active or ended.")},
    )
    project = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text=_("A project's id: only the pools whose rules and window take its gifts now."),
        error_messages={
            "invalid": _("Give the project's id, a whole number."),
            "min_value": _("Give the project's id, a whole number."),
        },
    )

    def validate_project(self, value: int) -> Project:
        project = (
            Project.objects.select_related("proposal")
            .filter(pk=value, state__in=selectors.PUBLIC_STATES)
            .first()
        )
        if project is None:
            raise serializers.ValidationError(_("There is no project with this id."))
        return project


@extend_schema_field({"type": "string", "enum": list(MatchPool.State.values)})
class PoolStateField(serializers.CharField):
    """MatchPool.State, inline: a named "state" enum would collide with the other states."""


@extend_schema_field({"type": "string", "enum": list(MatchPool.Scope.values)})
class PoolScopeField(serializers.CharField):
    """MatchPool.Scope, inline."""


STATEMENT_KINDS = [
    EntryKind.POOL_PLEDGED,
    EntryKind.PLEDGE_PAID,
    EntryKind.MATCH_ALLOCATED,
    EntryKind.MATCH_RELEASED,
    EntryKind.POOL_ENDED,
]


@extend_schema_field({"type": "string", "enum": STATEMENT_KINDS})
class StatementKindField(serializers.CharField):
    """The ledger's entry kind of a statement line (fund.ledger.EntryKind), inline."""


class PoolBodySerializer(serializers.ModelSerializer):
    class Meta:
        model = GovernmentBody
        fields = ["id", "code", "name"]


class MatchPoolSerializer(serializers.ModelSerializer):
    """A pool's public particulars: its rules and how much it pledged, matched and has left.

    The figures come from ``context["figures"]`` (``selectors.pool_figures``, one query for a
    page). Never the sponsor's payments, never a donor."""

    sponsor = serializers.CharField(
        source="sponsor.name", read_only=True, help_text=_("The sponsoring organisation's name.")
    )
    ratio = serializers.CharField(
        source="ratio_label",
        read_only=True,
        help_text=_("gift:match — 1:2 adds ¥2 for every ¥1 given."),
    )
    cap_per_gift_yen = serializers.IntegerField(
        source="cap_per_gift",
        read_only=True,
        allow_null=True,
        help_text=_("The most matched for one gift, whole yen; null for no cap."),
    )
    cap_per_donor_yen = serializers.IntegerField(
        source="cap_per_donor",
        read_only=True,
        allow_null=True,
        help_text=_("The most matched for one donor (by account and email); null for no cap."),
    )
    scope = PoolScopeField(read_only=True)
    projects = serializers.SerializerMethodField(
        help_text=_("For scope=projects: the chosen projects' ids; otherwise empty.")
    )
    body = PoolBodySerializer(
        read_only=True, allow_null=True, help_text=_("For scope=body: the government body.")
    )
    fiscal_year = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text=_("For scope=fiscal_year: the proposals' fiscal year."),
    )
    state = PoolStateField(read_only=True)
    pledged_yen = serializers.SerializerMethodField(
        help_text=_("Pledged, top-ups included; whole yen, from the ledger.")
    )
    matched_yen = serializers.SerializerMethodField(
        help_text=_("Matched to gifts, less what refunds gave back; whole yen.")
    )
    left_yen = serializers.SerializerMethodField(help_text=_("Still available to match."))

    class Meta:
        model = MatchPool
        fields = [
            "id",
            "name",
            "sponsor",
            "ratio_gift",
            "ratio_match",
            "ratio",
            "cap_per_gift_yen",
            "cap_per_donor_yen",
            "scope",
            "projects",
            "body",
            "fiscal_year",
            "starts_at",
            "ends_at",
            "priority",
            "state",
            "pledged_yen",
            "matched_yen",
            "left_yen",
        ]

    def _figures(self, pool: MatchPool) -> selectors.PoolFigures:
        return self.context["figures"][pool.pk]

    def get_projects(self, pool: MatchPool) -> list[int]:
        if pool.scope != MatchPool.Scope.PROJECTS:
            return []
        return [project.pk for project in pool.projects.all()]

    def get_pledged_yen(self, pool: MatchPool) -> int:
        return self._figures(pool).pledged

    def get_matched_yen(self, pool: MatchPool) -> int:
        return self._figures(pool).net_matched

    def get_left_yen(self, pool: MatchPool) -> int:
        return self._figures(pool).left


class PoolFiguresSerializer(serializers.Serializer):
    """All of a pool's money (whole yen), read from its ledger accounts."""

    pledged_yen = serializers.IntegerField(source="pledged")
    paid_yen = serializers.IntegerField(source="paid", help_text=_("Paid by the sponsor so far."))
    unpaid_yen = serializers.IntegerField(
        source="unpaid", help_text=_("Still owed by the sponsor.")
    )
    allocated_yen = serializers.IntegerField(
        source="matched", help_text=_("Matched to gifts, before refunds gave any back.")
    )
    released_yen = serializers.IntegerField(
        source="released", help_text=_("Given back to the pool after refunds and lost disputes.")
    )
    matched_yen = serializers.IntegerField(
        source="net_matched", help_text=_("allocated − released.")
    )
    returned_yen = serializers.IntegerField(
        source="returned", help_text=_("What was left when the pool ended, posted as configured.")
    )
    left_yen = serializers.IntegerField(source="left", help_text=_("Still available to match."))


class StatementProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "title"]


class StatementLineSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = StatementKindField(
        help_text=_(
            "pool_pledged (pledge or top-up), pledge_paid, match_allocated, match_released, "
            "pool_ended."
        )
    )
    amount_yen = serializers.IntegerField(source="amount", help_text=_("Whole yen, positive."))
    project = StatementProjectSerializer(
        allow_null=True, help_text=_("The matched gift's project; null for the pledge's lines.")
    )
    gift_amount_yen = serializers.IntegerField(
        source="gift_amount", allow_null=True, help_text=_("The matched gift's amount.")
    )
    reference = serializers.CharField(help_text=_("The sponsor's bank transfer reference."))


class PoolStatementSerializer(serializers.Serializer):
    pool = MatchPoolSerializer()
    figures = PoolFiguresSerializer()
    lines = StatementLineSerializer(many=True, help_text=_("Oldest first."))


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


class MatchPoolViewSet(viewsets.ReadOnlyModelViewSet):
    """Sponsors' match pools: public rules and figures; each pool's statement for its sponsor."""

    lookup_value_regex = ANY_ID

    serializer_class = MatchPoolSerializer
    pagination_class = RegisterPagination
    filter_backends: list = []  # the query serializer validates the parameters

    def get_queryset(self) -> QuerySet[MatchPool]:
        # Chosen projects that are not public (drafts, cancelled) are not named.
        public = Project.objects.filter(state__in=selectors.PUBLIC_STATES).only("pk").order_by("pk")
        return selectors.all_pools().prefetch_related(Prefetch("projects", queryset=public))

    def _pools(self, pools: Any, **context: Any) -> Any:
        pools = list(pools)
        figures = selectors.pool_figures(pools)
        context = {**self.get_serializer_context(), "figures": figures, **context}
        return MatchPoolSerializer(pools, many=True, context=context).data

    def _pool_or_404(self, pk: Any) -> MatchPool:
        return get_object_or_404(self.get_queryset(), pk=pk)

    @extend_schema(parameters=[PoolQuerySerializer])
    def list(self, request: Request) -> Response:
        """Every match pool, highest priority first, with what it pledged, matched and has left."""
        params = PoolQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        pools = self.get_queryset()
        if state := params.validated_data.get("state"):
            pools = pools.filter(state=state)
        if project := params.validated_data.get("project"):
            now = timezone.now()
            pools = pools.filter(pk__in=eligible_pools(project, at=now).values("pk"))
        page = self.paginate_queryset(pools)
        return self.get_paginated_response(self._pools(page))

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One match pool with its rules and figures."""
        pool = self._pool_or_404(pk)
        return Response(self._pools([pool])[0])

    @extend_schema(responses=PoolStatementSerializer)
    @action(
        detail=True,
        methods=["get"],
        permission_classes=SIGNED_IN,
        filter_backends=[],
        pagination_class=None,
    )
    def statement(self, request: Request, pk: str | None = None) -> Response:
        """The pool's statement: all its figures and every pledge, payment, match, release and
        its end (the sponsor's members and foundation staff; a 404 for anyone else)."""
        pool = self._pool_or_404(pk)
        if not may(request.user, VIEW_STATEMENT, pool):
            raise Http404  # statements are private: no hint that this one exists for them
        figures = selectors.pool_figures([pool])
        statement = {
            "pool": pool,
            "figures": figures[pool.pk],
            "lines": selectors.pool_statement(pool),
        }
        context = {**self.get_serializer_context(), "figures": figures}
        response = Response(PoolStatementSerializer(statement, context=context).data)
        response["Cache-Control"] = "private, no-store"
        return response
