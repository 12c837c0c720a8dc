"""The fund's API: open projects for everyone, and the unfunded proposals for staff.

Conventions of ``proposals.api``: views validate their query parameters (a bad one is a 400
naming it), read through ``fund.selectors`` and serialize. Money figures come from the ledger in
a fixed number of queries per page (``selectors.progress_for``).

- ``GET projects/``: open projects, filtered by body (code) and fiscal year, sorted by
  ``ending`` (closing soonest first) or ``needed`` (largest goal − raised first); paginated.
- ``GET projects/{id}/``: one project; drafts and cancelled projects answer 404 unless the user
  may manage projects.
- ``GET unfunded-proposals/``: adopted proposals without budget that are unlisted or under
  goal. Government staff see their own body's; foundation staff and the site admin every body's;
  anyone else gets a 403.
"""

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import GovernmentBody
from accounts.policy import may
from proposals.api import (
    FISCAL_YEAR_MAX,
    FISCAL_YEAR_MIN,
    BodyCodeFilter,
    FiscalYearFilter,
    RegisterPagination,
)

from . import selectors
from .models import Project
from .views import MANAGE, unfunded_scope

# --- Filters ------------------------------------------------------------------------------------


class ProjectFilter(filters.FilterSet):
    # field_name: for the schema only; filter_queryset hands the values to the selector.
    body = BodyCodeFilter(field_name="proposal__body")
    fiscal_year = FiscalYearFilter(
        field_name="proposal__fiscal_year",
        help_text=_("The proposal's fiscal year (年度) by its starting year, e.g. 2026."),
    )
    sort = filters.ChoiceFilter(
        choices=[("ending", _("Ending soon")), ("needed", _("Most needed"))],
        help_text=_(
            "ending: closing soonest first (default); needed: largest goal − raised first."
        ),
    )

    class Meta:
        model = Project
        fields = ["body", "fiscal_year", "sort"]

    def filter_queryset(self, queryset: QuerySet[Project]) -> QuerySet[Project]:
        # The selector owns the list's filters and order, shared with the public page.
        data = self.form.cleaned_data
        return selectors.open_projects(
            body=data.get("body"),
            fiscal_year=data.get("fiscal_year"),
            sort=data.get("sort") or "ending",
        )


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


@extend_schema_field({"type": "string", "enum": list(Project.State.values)})
class ProjectStateField(serializers.CharField):
    """Project.State, described inline: a named "state" enum would collide with Proposal.State
    in spectacular's enum names (a warning)."""


class ProjectSerializer(serializers.ModelSerializer):
    """A project's public particulars and progress (read from the ledger)."""

    body = FundBodySerializer(source="proposal.body", read_only=True)
    fiscal_year = serializers.IntegerField(
        source="proposal.fiscal_year", read_only=True, help_text=_("The proposal's fiscal year.")
    )
    raised_yen = serializers.SerializerMethodField(help_text=_("Whole yen, from the ledger."))
    matched_yen = serializers.SerializerMethodField(help_text=_("Whole yen."))
    donors = serializers.SerializerMethodField()
    days_left = serializers.SerializerMethodField(
        help_text=_("Whole days left in Japan time; 0 on the last day, null once closed.")
    )
    state = ProjectStateField(read_only=True)
    proposal = serializers.IntegerField(
        source="proposal_id", read_only=True, help_text=_("The proposal's id (/proposals/{id}/).")
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "title",
            "description",
            "body",
            "fiscal_year",
            "goal_yen",
            "raised_yen",
            "matched_yen",
            "donors",
            "closes_at",
            "days_left",
            "state",
            "proposal",
        ]

    def _progress(self, project: Project) -> selectors.Progress:
        return self.context["progress"][project.pk]

    def get_raised_yen(self, project: Project) -> int:
        return self._progress(project).raised

    def get_matched_yen(self, project: Project) -> int:
        return self._progress(project).matched

    def get_donors(self, project: Project) -> int:
        return self._progress(project).donors

    def get_days_left(self, project: Project) -> int | None:
        return self._progress(project).days_left


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


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """Designated-donation projects: the open ones, and each project's page."""

    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter
    pagination_class = RegisterPagination

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.open_projects()

    def list(self, request: Request) -> Response:
        """Projects open for gifts now."""
        projects = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(projects)
        context = {**self.get_serializer_context(), "progress": selectors.progress_for(page)}
        return self.get_paginated_response(ProjectSerializer(page, many=True, context=context).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One project with its progress; drafts and cancelled ones only for programme officers."""
        try:
            project = selectors.public_project(int(pk))
        except (TypeError, ValueError):
            raise Http404 from None
        if project is None:
            raise Http404
        if project.state not in selectors.PUBLIC_STATES and not may(request.user, MANAGE):
            raise Http404
        context = {
            **self.get_serializer_context(),
            "progress": {project.pk: selectors.project_progress(project)},
        }
        return Response(ProjectSerializer(project, context=context).data)


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
