"""The register's read-only API: the catalogue, the proposals' public record, adoption statistics.

Views only validate their query parameters, read through ``proposals.selectors`` and serialize.
A bad parameter is a 400 whose body names the parameter and says what is wrong — never a 500.
"""

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import GovernmentBody, Organization, body_code_validator

from .models import (
    Assessment,
    Contract,
    Department,
    Operation,
    Proposal,
)
from .selectors import ALL_KINDS, adoption_statistics, operation_catalogue, proposal_register

# Operation.fiscal_year is a PositiveSmallIntegerField from FY1989 (Heisei 1) on.
FISCAL_YEAR_MIN = 1989
FISCAL_YEAR_MAX = 32767
SEARCH_MAX_LENGTH = 100


# --- Pagination ---------------------------------------------------------------------------------


class RegisterPagination(PageNumberPagination):
    """DRF's page-number pagination, with a 400 for a page "number" that is not one.

    DRF answers ``page=x`` with a 404, as if the page merely did not exist; a page past the end
    keeps DRF's standard 404.
    """

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        raw = request.query_params.get(self.page_query_param)
        if raw and raw not in self.last_page_strings:
            try:
                number = int(raw)
            except ValueError:
                number = 0
            if number < 1:
                raise ValidationError(
                    {self.page_query_param: [_("A page number is a whole number from 1 up.")]}
                )
        return super().get_page_number(request, paginator)


# --- Filters ------------------------------------------------------------------------------------


class BodyCodeField(forms.ModelChoiceField):
    """A government body looked up by its six-digit local government code."""

    default_error_messages = {
        "invalid_choice": _("No government body has the code %(value)s."),
    }

    def to_python(self, value: Any) -> GovernmentBody | None:
        # Say what a code looks like before saying that no body has it.
        if value not in self.empty_values:
            body_code_validator(str(value))
        return super().to_python(value)


class BodyCodeFilter(filters.ModelChoiceFilter):
    field_class = BodyCodeField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", GovernmentBody.objects.all())
        kwargs.setdefault("to_field_name", "code")
        kwargs.setdefault(
            "help_text", _("The body's six-digit local government code, e.g. 410004.")
        )
        super().__init__(**kwargs)


class FiscalYearFilter(filters.NumberFilter):
    # NumberFilter's own field is a DecimalField, which would accept 2025.5.
    field_class = forms.IntegerField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", FISCAL_YEAR_MIN)
        kwargs.setdefault("max_value", FISCAL_YEAR_MAX)
        kwargs.setdefault("help_text", _("The fiscal year (年度) by its starting year, e.g. 2025."))
        super().__init__(**kwargs)


class OperationFilter(filters.FilterSet):
    fiscal_year = FiscalYearFilter()
    body = BodyCodeFilter()
    department = filters.ModelChoiceFilter(
        queryset=Department.objects.all(), help_text=_("The department's id.")
    )
    # As long as the catalogue page's keyword box allows: every keyword adds a clause.
    search = filters.CharFilter(
        max_length=SEARCH_MAX_LENGTH,
        help_text=_(
            "Keywords separated by spaces; every keyword must appear in the title, summary, "
            "code or department name. Japanese text matches anywhere in a word."
        ),
    )

    class Meta:
        model = Operation
        fields = ["fiscal_year", "body", "department", "search"]

    def filter_queryset(self, queryset: QuerySet[Operation]) -> QuerySet[Operation]:
        # The selector owns the catalogue's filters and its search rule, shared with the
        # catalogue page; this filterset only validates and documents the parameters. The
        # queryset it is given is the view's, the same unfiltered catalogue.
        data = self.form.cleaned_data
        department = data.get("department")
        return operation_catalogue(
            fiscal_year=data.get("fiscal_year"),
            body=data.get("body"),
            department_id=department.pk if department else None,
            search=data.get("search") or "",
        )


class ProposalFilter(filters.FilterSet):
    fiscal_year = FiscalYearFilter()
    body = BodyCodeFilter()
    decision = filters.ChoiceFilter(choices=Proposal.Decision.choices)
    state = filters.ChoiceFilter(choices=Proposal.State.choices)
    budget_provision = filters.ChoiceFilter(choices=Proposal.BudgetProvision.choices)
    organization_kind = filters.ChoiceFilter(
        field_name="organization__kind",
        choices=Organization.Kind.choices,
        help_text=_("The kind of the proposing organisation."),
    )

    class Meta:
        model = Proposal
        fields = [
            "fiscal_year",
            "body",
            "decision",
            "state",
            "budget_provision",
            "organization_kind",
        ]


# --- Serializers --------------------------------------------------------------------------------


class GovernmentBodySerializer(serializers.ModelSerializer):
    class Meta:
        model = GovernmentBody
        fields = ["code", "name", "kind"]


class DepartmentSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name"]


class OperationSerializer(serializers.ModelSerializer):
    era_label = serializers.CharField(
        read_only=True, help_text=_("The fiscal year's official name, e.g. 令和7年度.")
    )
    body = GovernmentBodySerializer(read_only=True)
    department = DepartmentSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "fiscal_year",
            "era_label",
            "body",
            "department",
            "code",
            "title",
            "summary",
            "budget_yen",
            "current_provider",
            "collaboration_potential",
            "published_on",
        ]


class OperationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Operation
        fields = ["id", "code", "title"]


class OrganizationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["name", "kind"]


class ContractSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contract
        fields = ["kind", "signed_on", "amount_yen"]


class AssessmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assessment
        fields = ["assessed_on", "summary"]


class ProposalSerializer(serializers.ModelSerializer):
    """The public record of a proposal.

    Consultation notes and the history's actors are internal: they are never listed here.
    """

    era_label = serializers.CharField(
        read_only=True, help_text=_("The fiscal year's official name, e.g. 令和7年度.")
    )
    body = GovernmentBodySerializer(read_only=True)
    operation = OperationSummarySerializer(read_only=True, allow_null=True)
    organization = OrganizationSummarySerializer(read_only=True)
    contract = ContractSerializer(read_only=True, allow_null=True)
    assessment = AssessmentSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Proposal
        fields = [
            "id",
            "reference",
            "received_on",
            "fiscal_year",
            "era_label",
            "body",
            "operation",
            "organization",
            "title",
            "summary",
            "state",
            "decision",
            "decided_on",
            "decision_reason",
            "planned_implementation_year",
            "budget_provision",
            "contract",
            "assessment",
        ]


class AdoptionStatisticsQuerySerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=GovernmentBody.Kind.choices,
        required=False,
        help_text=_("Prefecture or municipalities; both when omitted."),
    )
    proposer_kind = serializers.ChoiceField(
        choices=[*Organization.Kind.choices, (ALL_KINDS, _("All kinds"))],
        default=Organization.Kind.CSO,
        help_text=_("Count only proposals from this kind of organisation (default: CSOs)."),
    )


class AdoptionRowSerializer(serializers.Serializer):
    fiscal_year = serializers.IntegerField()
    # A plain string, not a second enum of GovernmentBody.Kind's choices: spectacular warns
    # about two names for one choice set unless SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
    # names it once.
    level = serializers.CharField(help_text=_("“prefecture” or “municipality”."))
    participating_municipalities = serializers.IntegerField(
        allow_null=True, help_text=_("Municipal level only; null for the prefecture.")
    )
    proposing_organizations = serializers.IntegerField()
    proposals = serializers.IntegerField()
    adopted = serializers.IntegerField()
    adoption_rate_percent = serializers.IntegerField(
        allow_null=True, help_text=_("Whole percent, rounded half up; null without proposals.")
    )


# --- Views --------------------------------------------------------------------------------------


class OperationViewSet(viewsets.ReadOnlyModelViewSet):
    """The published catalogue of operations (steps 1–2)."""

    serializer_class = OperationSerializer
    filterset_class = OperationFilter
    pagination_class = RegisterPagination

    def get_queryset(self) -> QuerySet[Operation]:
        return operation_catalogue()


class ProposalViewSet(viewsets.ReadOnlyModelViewSet):
    """Proposals received by the bodies (steps 4–8): their public record."""

    serializer_class = ProposalSerializer
    filterset_class = ProposalFilter
    pagination_class = RegisterPagination

    def get_queryset(self) -> QuerySet[Proposal]:
        # Everything the serializer reads comes in the one query, whatever the page size.
        return proposal_register()


class AdoptionStatisticsView(APIView):
    """Adoption per fiscal year and level: proposing organisations, proposals, adopted, rate.

    Counts CSO proposals unless ``proposer_kind`` says otherwise; withdrawn ones never count.
    """

    @extend_schema(
        parameters=[AdoptionStatisticsQuerySerializer],
        responses=AdoptionRowSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        params = AdoptionStatisticsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = adoption_statistics(**params.validated_data)
        return Response(AdoptionRowSerializer(rows, many=True).data)
