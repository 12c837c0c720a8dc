"""The register's API: the catalogue, the proposals' public record, adoption statistics — and
the government officers' writes.

Reads are public. Views only validate their query parameters, read through
``proposals.selectors`` and serialize. A bad parameter is a 400 whose body names the parameter
and says what is wrong — never a 500.

Writes (an operation's creation and changes, a proposal's steps and budget provision) and a
proposal's private history need a signed-in user: the session (with its CSRF token) or a token
(``Authorization: Token …``). ``accounts.policy`` decides; the services write. A proposal or an
operation the user may not act on and has no business knowing about answers 404; bad input
answers 400 with a message per field, and nothing is written.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.access import StaffMFARequired
from accounts.models import GovernmentBody, Organization, User, body_code_validator
from accounts.policy import may

from . import services
from .models import (
    Assessment,
    Contract,
    Department,
    Operation,
    Proposal,
    ProposalEvent,
)
from .officer_forms import SERVICE_FIELD_ALIASES
from .selectors import ALL_KINDS, adoption_statistics, operation_catalogue, proposal_register
from .services import operation_save

# Operation.fiscal_year is a PositiveSmallIntegerField from FY1989 (Heisei 1) on.
FISCAL_YEAR_MIN = 1989
FISCAL_YEAR_MAX = 32767
SEARCH_MAX_LENGTH = 100

T = TypeVar("T")


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


# --- Schema: the errors every operation answers -------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """A refusal or an error that is not about one field (403, 404, 429, 502)."""

    detail = serializers.CharField(help_text=_("What went wrong, for a person to read."))


class ValidationErrorsSerializer(serializers.Serializer):
    """A 400's body: the messages by field. Documented by ``ValidationErrorsExtension``."""


class ValidationErrorsExtension(OpenApiSerializerExtension):
    target_class = ValidationErrorsSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "description": str(
                _(
                    "The messages by field or query parameter (non_field_errors, detail or "
                    "action for the request as a whole). A list of objects holds the errors of "
                    "each item of a list; an object, those of a nested object or list item by "
                    "its index. A body that is not JSON answers {detail: why}."
                )
            ),
            "additionalProperties": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
                    {"type": "object"},
                ]
            },
        }


BAD_REQUEST = OpenApiResponse(
    ValidationErrorsSerializer,
    description=_("Bad input: nothing was done; the body names each field and what is wrong."),
)
FORBIDDEN = OpenApiResponse(
    ErrorSerializer,
    description=_(
        "Refused: not signed in where that is needed, not allowed to do this, staff without "
        "two-factor authentication, or a session without its CSRF token."
    ),
)
NOT_FOUND = OpenApiResponse(
    ErrorSerializer,
    description=_("No such object, or one you may not see; or a page past the last."),
)
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(
    ErrorSerializer,
    description=_("A body without a Content-Type, or not in one of the media types listed."),
)


class ApiSchema(AutoSchema):
    """drf-spectacular's schema, with the errors each operation answers documented.

    Every operation may answer 403 (staff without two-factor get nothing); one that takes
    input — a body, or query parameters — 400 with the messages (a write, also when its service
    refuses); one that reads a body, 415 for a body it cannot parse; one with an id in its path,
    or a paginated list, 404. Others (429, 502 …) are declared with ``extend_schema``.
    """

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return dict(sorted(responses.items()))

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        errors = {"403": FORBIDDEN}
        takes_query = any(parameter["in"] == "query" for parameter in self._get_parameters())
        if self.method != "GET" or takes_query:
            errors["400"] = BAD_REQUEST
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            errors["415"] = UNSUPPORTED_MEDIA_TYPE
        paginated = self._is_list_view() and self._get_paginator() is not None
        if "{" in self.path or paginated:
            errors["404"] = NOT_FOUND
        return errors


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


# --- Writes: serializers -------------------------------------------------------------------------

WHOLE_YEN_MESSAGE = _("Enter the amount in whole yen, e.g. 1500000.")


class OperationUpdateSerializer(serializers.ModelSerializer):
    """The fields an officer may change on an operation of their body (any subset, PATCH)."""

    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(),
        allow_null=True,
        required=False,
        help_text=_("The id of one of the body's departments; null for none."),
    )
    department_name = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        help_text=_("A department of the body by name, created if it is new (instead of its id)."),
    )
    budget_yen = serializers.IntegerField(
        min_value=0,
        allow_null=True,
        required=False,
        help_text=_("Whole yen."),
        error_messages={"invalid": WHOLE_YEN_MESSAGE},
    )

    class Meta:
        model = Operation
        fields = [
            "fiscal_year",
            "code",
            "title",
            "department",
            "department_name",
            "summary",
            "budget_yen",
            "current_provider",
            "collaboration_potential",
            "published_on",
        ]
        # A code is unique per body and fiscal year: checked in validate(), with a message on
        # the code rather than DRF's generic one.
        validators: list = []

    def _body(self, attrs: dict[str, Any]) -> GovernmentBody:
        # Set on creation; an operation never moves to another body.
        return attrs["body"] if self.instance is None else self.instance.body

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        year = attrs.get("fiscal_year", getattr(self.instance, "fiscal_year", None))
        code = attrs.get("code", getattr(self.instance, "code", None))
        taken = Operation.objects.filter(body=self._body(attrs), fiscal_year=year, code=code)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(
                {
                    "code": _("Your body already has an operation %(code)s in that fiscal year.")
                    % {"code": code}
                }
            )
        return attrs


class OperationCreateSerializer(OperationUpdateSerializer):
    """A new operation of the officer's own body."""

    body = serializers.SlugRelatedField(
        slug_field="code",
        queryset=GovernmentBody.objects.all(),
        help_text=_("Your body's six-digit local government code, e.g. 410004."),
    )

    class Meta(OperationUpdateSerializer.Meta):
        fields = ["body", *OperationUpdateSerializer.Meta.fields]


# The details each step takes (services.proposal_transition), and which of them it needs.
TRANSITION_DETAILS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # action: (required, optional)
    "consult": (("held_on",), ("notes",)),
    "respond": (
        ("decision", "decided_on"),
        ("reason", "planned_implementation_year", "budget_provision"),
    ),
    "contract": (("kind", "signed_on"), ("amount_yen",)),
    "assess": (("assessed_on", "summary"), ()),
    "withdraw": ((), ("withdrawn_on",)),
}


@extend_schema_field({"type": "string", "enum": list(Contract.Kind.values)})
class ContractKindField(serializers.ChoiceField):
    """Contract.Kind, described inline in the schema: a second component using the named enum
    would make spectacular's enum names for the several "kind" fields collide (a warning)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Contract.Kind.choices, **kwargs)


class TransitionSerializer(serializers.Serializer):
    """One step of a proposal: the action and the details that step records."""

    action = serializers.ChoiceField(
        choices=[(name, transition.label) for name, transition in services.TRANSITIONS.items()],
        help_text=_(
            "consult: held_on, notes. respond: decision, decided_on, reason, "
            "planned_implementation_year, budget_provision. contract: kind, signed_on, "
            "amount_yen. assess: assessed_on, summary. withdraw: withdrawn_on."
        ),
    )
    note = serializers.CharField(
        required=False, allow_blank=True, help_text=_("A note for the history row.")
    )
    held_on = serializers.DateField(required=False)
    notes = serializers.CharField(
        required=False, allow_blank=True, help_text=_("The consultation's notes (internal).")
    )
    decision = serializers.ChoiceField(choices=Proposal.Decision.choices, required=False)
    decided_on = serializers.DateField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True)
    planned_implementation_year = serializers.IntegerField(
        required=False, allow_null=True, min_value=FISCAL_YEAR_MIN, max_value=2100
    )
    budget_provision = serializers.ChoiceField(
        choices=Proposal.BudgetProvision.choices, required=False
    )
    kind = ContractKindField(required=False)
    signed_on = serializers.DateField(required=False)
    amount_yen = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text=_("The contract's amount in whole yen."),
        error_messages={"invalid": WHOLE_YEN_MESSAGE},
    )
    assessed_on = serializers.DateField(required=False)
    summary = serializers.CharField(required=False, help_text=_("The assessment's outcome."))
    withdrawn_on = serializers.DateField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        name = attrs["action"]
        required, optional = TRANSITION_DETAILS[name]
        errors: dict[str, list[str]] = {}
        for field in required:
            if attrs.get(field) in (None, ""):
                errors[field] = [_("This field is required for “%(action)s”.") % {"action": name}]
        for field in set(attrs) - {"action", "note", *required, *optional}:
            errors[field] = [_("“%(action)s” does not take this field.") % {"action": name}]
        if errors:
            raise ValidationError(errors)
        return attrs


class BudgetProvisionSerializer(serializers.Serializer):
    budget_provision = serializers.ChoiceField(choices=Proposal.BudgetProvision.choices)


class ActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text=_("The person's full name, or their email address."))


class ProposalEventSerializer(serializers.ModelSerializer):
    """One row of a proposal's history: what changed, when, and who did it."""

    actor = serializers.SerializerMethodField(
        help_text=_("Who recorded the change; null for an import or the system (see source).")
    )

    class Meta:
        model = ProposalEvent
        fields = [
            "id",
            "action",
            "from_state",
            "to_state",
            "effective_on",
            "occurred_at",
            "actor",
            "source",
            "note",
            "changes",
        ]

    @extend_schema_field(ActorSerializer(allow_null=True))
    def get_actor(self, event: ProposalEvent) -> dict[str, Any] | None:
        user: User | None = event.actor
        if user is None:
            return None
        return {"id": user.pk, "name": user.get_full_name() or user.email}


def _api_errors(error: DjangoValidationError, non_field_key: str) -> dict[str, list[str]]:
    """A service's ValidationError as DRF's 400 body: messages by field."""
    if not hasattr(error, "error_dict"):
        return {non_field_key: error.messages}
    return {
        (non_field_key if name == NON_FIELD_ERRORS else SERVICE_FIELD_ALIASES.get(name, name)): (
            messages
        )
        for name, messages in error.message_dict.items()
    }


def saved(write: Callable[[], T], *, non_field_key: str = api_settings.NON_FIELD_ERRORS_KEY) -> T:
    """Run a service call; its ValidationError becomes a 400 (it wrote nothing)."""
    try:
        return write()
    except DjangoValidationError as error:
        raise ValidationError(_api_errors(error, non_field_key)) from None


# Writes and private reads: a signed-in user (session with CSRF, or token), staff with 2FA.
SIGNED_IN = [StaffMFARequired, IsAuthenticated]

# The routers' ``{id}``: anything up to the next slash, so that a malformed id ("10.5") reaches
# the view and is answered with the API's JSON 404, not the site's HTML page. (DRF's default
# leaves out dots, for format suffixes, which this API does not use.)
ANY_ID = "[^/]+"


# --- Views --------------------------------------------------------------------------------------


class OperationViewSet(viewsets.ReadOnlyModelViewSet):
    """The published catalogue of operations (steps 1–2)."""

    lookup_value_regex = ANY_ID

    serializer_class = OperationSerializer
    filterset_class = OperationFilter
    pagination_class = RegisterPagination

    def get_queryset(self) -> QuerySet[Operation]:
        return operation_catalogue()

    def get_permissions(self) -> list[Any]:
        if self.action in ("create", "partial_update"):
            return [permission() for permission in SIGNED_IN]
        return super().get_permissions()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "create":
            return OperationCreateSerializer
        if self.action == "partial_update":
            return OperationUpdateSerializer
        return OperationSerializer

    @extend_schema(
        request=OperationCreateSerializer, responses={status.HTTP_201_CREATED: OperationSerializer}
    )
    def create(self, request: Request) -> Response:
        """Add an operation to your own body's catalogue (government officers)."""
        serializer = OperationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        body = fields.pop("body")
        if not may(request.user, "operation.create", body):
            # Bodies and their codes are public: refusing says nothing new, so a 403.
            raise PermissionDenied(_("You may add operations only to your own body's catalogue."))
        operation = saved(lambda: operation_save(actor=request.user, body=body, **fields))
        return Response(OperationSerializer(operation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=OperationUpdateSerializer, responses=OperationSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change some fields of one of your body's operations (government officers)."""
        operation = self.get_object()
        if not may(request.user, "operation.change", operation):
            raise Http404
        serializer = OperationUpdateSerializer(operation, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        changed = saved(
            lambda: operation_save(
                actor=request.user, body=operation.body, operation=operation, **fields
            )
        )
        return Response(OperationSerializer(changed).data)


class ProposalViewSet(viewsets.ReadOnlyModelViewSet):
    """Proposals received by the bodies (steps 4–8): their public record."""

    lookup_value_regex = ANY_ID

    serializer_class = ProposalSerializer
    filterset_class = ProposalFilter
    pagination_class = RegisterPagination

    def get_queryset(self) -> QuerySet[Proposal]:
        # Everything the serializer reads comes in the one query, whatever the page size.
        return proposal_register()

    def _proposal_for(self, request: Request, permission: str) -> Proposal:
        """The proposal if the user may do this to it.

        Someone entitled to its private record learns why not (403); anyone else gets a 404,
        as if it did not exist: that is how another body's officer is answered.
        """
        proposal = get_object_or_404(proposal_register(), pk=self.kwargs["pk"])
        if may(request.user, permission, proposal):
            return proposal
        if may(request.user, "proposal.view_private", proposal):
            raise PermissionDenied(_("You may not change this proposal."))
        raise Http404

    def _updated(self, proposal: Proposal) -> Response:
        return Response(ProposalSerializer(proposal_register().get(pk=proposal.pk)).data)

    @extend_schema(request=TransitionSerializer, responses=ProposalSerializer)
    @action(
        detail=True,
        methods=["post"],
        permission_classes=SIGNED_IN,
        filter_backends=[],
        pagination_class=None,
    )
    def transitions(self, request: Request, pk: str | None = None) -> Response:
        """Record the proposal's next step (officers of its body; the proposer may withdraw)."""
        requested = request.data.get("action") if hasattr(request.data, "get") else None
        transition = services.TRANSITIONS.get(requested) if isinstance(requested, str) else None
        # Judge the user on the proposal before reading the details: no hints for outsiders.
        proposal = self._proposal_for(
            request, transition.permission if transition else "proposal.advance"
        )
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        details = dict(serializer.validated_data)
        name, note = details.pop("action"), details.pop("note", "")
        saved(
            lambda: services.proposal_transition(
                proposal=proposal, action=name, actor=request.user, note=note, **details
            ),
            non_field_key="action",
        )
        return self._updated(proposal)

    @extend_schema(request=BudgetProvisionSerializer, responses=ProposalSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path="budget-provision",
        permission_classes=SIGNED_IN,
        filter_backends=[],
        pagination_class=None,
    )
    def budget_provision(self, request: Request, pk: str | None = None) -> Response:
        """Record whether the government budgeted the proposal (officers of its body)."""
        proposal = self._proposal_for(request, "proposal.advance")
        serializer = BudgetProvisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        saved(
            lambda: services.proposal_set_budget_provision(
                proposal=proposal,
                budget_provision=serializer.validated_data["budget_provision"],
                actor=request.user,
            )
        )
        return self._updated(proposal)

    @extend_schema(responses=ProposalEventSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        permission_classes=SIGNED_IN,
        filter_backends=[],
        pagination_class=None,
    )
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every change to the proposal, dated and attributed (private: the body's officers,
        the proposer's members, foundation staff)."""
        proposal = self._proposal_for(request, "proposal.view_private")
        events = ProposalEvent.objects.filter(proposal=proposal).select_related("actor")
        return Response(ProposalEventSerializer(events, many=True).data)


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
