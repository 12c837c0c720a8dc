"""The grants' API, mounted at /api/v1/ (``grants.api_urls``): grants, their tranches, transfer
batches and the CSOs' reports.

Conventions of ``fund.api`` and ``proposals.api``: every endpoint needs a signed-in user (staff
with two-factor authentication); views validate their input with a serializer (a bad parameter
or body is a 400 naming the field), read through ``grants.selectors`` and write only through
``grants.services``. A service's ``ValidationError`` is a 400 with its messages (by field when
it gives them; ``detail`` otherwise) and nothing is written; its ``PermissionDenied`` is a 403
with its message. An object the user may not know about is a 404.

- ``grants/``: foundation staff see every grant; a CSO's members their organisations' grants
  once approved (``selectors.grants_of``); anyone else an empty list. Programme officers
  propose (POST); approvers approve (never the proposer); officers and approvers cancel.
- ``tranches/``: foundation staff only, with what keeps each from being paid today.
- ``transfer-batches/`` and ``transfer-lines/``: readable by foundation staff; finance staff
  (``transfer.manage``) make batches, download the Zengin file and record what the bank did.
- ``reports/``: staff see all, a CSO's members their grants' reports; the members file them
  (JSON only, no attachments), programme officers accept them or ask for changes.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Organization
from accounts.policy import may, roles_of
from fund.models import Project
from fund.selectors import PUBLIC_STATES
from proposals.api import ANY_ID, BAD_REQUEST, SIGNED_IN, RegisterPagination

from . import selectors, services
from .models import Grant, Report, Tranche, TransferBatch, TransferLine

T = TypeVar("T")

WHOLE_YEN = _("Enter the amount in whole yen, e.g. 150000.")
WHOLE_ID = _("Give the id, a whole number.")
YEN_ERRORS = {"invalid": WHOLE_YEN, "max_string_length": WHOLE_YEN}
ID_ERRORS = {
    "invalid": WHOLE_ID,
    "min_value": WHOLE_ID,
    "max_value": WHOLE_ID,
    "max_string_length": WHOLE_ID,
}
# The largest id (a 64-bit key): larger ones are refused, not sent to the database, where they
# overflow the column's type (a 500).
MAX_ID = 2**63 - 1
ZENGIN_CONTENT_TYPE = "text/plain; charset=Shift_JIS"


# --- Errors and who is who -----------------------------------------------------------------------


def _api_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A service's ValidationError as the 400's body: messages by field, or under ``detail``."""
    if not hasattr(error, "error_dict"):
        return {"detail": error.messages}
    return {
        ("detail" if name == NON_FIELD_ERRORS else name): messages
        for name, messages in error.message_dict.items()
    }


def written(write: Callable[[], T]) -> T:
    """Run a service call: ValidationError → 400 with its messages, PermissionDenied → 403 with
    its message. Either way the service wrote nothing."""
    try:
        return write()
    except DjangoValidationError as error:
        raise ValidationError(_api_errors(error)) from None
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from None


def is_staff(user: Any) -> bool:
    """Foundation staff (any role) and the site admin: they see every grant."""
    return may(user, "foundation.area")


def member_organizations(user: Any) -> list[int]:
    return sorted(roles_of(user).memberships)


def require_staff(user: Any) -> None:
    if not is_staff(user):
        raise PermissionDenied(_("Only the foundation's staff may see this."))


def require_finance(user: Any) -> None:
    if not may(user, "transfer.manage"):
        raise PermissionDenied(_("Only finance staff make and record transfers."))


# --- Enums ---------------------------------------------------------------------------------------


def inline_enum(choices: type) -> Any:
    """A read-only choice field described inline in the schema. The same choice sets appear in
    several components here (a tranche in a grant and in the tranche list, a batch and its
    detail) and "state"/"kind" in other apps': spectacular's enum hook would name them after a
    hash and warn. Wrapped in ``allOf``, the hook leaves them inline (still a plain enum)."""

    @extend_schema_field({"allOf": [{"type": "string", "enum": list(choices.values)}]})
    class EnumField(serializers.CharField):
        pass

    return EnumField


GrantStateField = inline_enum(Grant.State)
GrantSourceField = inline_enum(Grant.Source)
TrancheStateField = inline_enum(Tranche.State)
ReportKindField = inline_enum(Report.Kind)
ReportStateField = inline_enum(Report.State)
BatchStateField = inline_enum(TransferBatch.State)
LineStateField = inline_enum(TransferLine.State)


@extend_schema_field({"type": "string", "enum": list(Grant.State.values)})
class GrantStateChoice(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Grant.State.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": list(Tranche.State.values)})
class TrancheStateChoice(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Tranche.State.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": list(Report.State.values)})
class ReportStateChoice(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Report.State.choices, **kwargs)


def choice_message(choices: type) -> str:
    return _("Choose one of: %(choices)s.") % {"choices": ", ".join(choices.values)}


# --- Serializers: what is shown ------------------------------------------------------------------


class GrantOrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name"]


class GrantTrancheSerializer(serializers.ModelSerializer):
    state = TrancheStateField()

    class Meta:
        model = Tranche
        fields = ["number", "amount_yen", "due_on", "requires_report", "state", "paid_on"]


class GrantReportSummarySerializer(serializers.ModelSerializer):
    kind = ReportKindField()
    state = ReportStateField()

    class Meta:
        model = Report
        fields = ["id", "kind", "due_on", "state"]


class GrantSerializer(serializers.ModelSerializer):
    """A grant's terms and where it stands; money in whole yen."""

    reference = serializers.CharField(read_only=True, help_text=_("e.g. G-00012."))
    source = GrantSourceField(
        read_only=True,
        help_text=_("designated: a project's designated money; general_fund: the general fund."),
    )
    project = serializers.IntegerField(
        source="project_id",
        read_only=True,
        allow_null=True,
        help_text=_("The project's id; null for a grant from the general fund."),
    )
    project_title = serializers.CharField(
        source="project.title", read_only=True, allow_null=True, default=None
    )
    organization = GrantOrganizationSerializer(read_only=True, help_text=_("The CSO."))
    gifts_yen = serializers.IntegerField(
        read_only=True, help_text=_("The project's gifts less refunds; 0 for the general fund.")
    )
    fee_rate_bp = serializers.IntegerField(
        read_only=True, help_text=_("The foundation's fee in basis points (1500 = 15%).")
    )
    fee_yen = serializers.IntegerField(
        read_only=True, help_text=_("The gifts' fee, rounded down to the yen.")
    )
    matched_yen = serializers.IntegerField(
        read_only=True, help_text=_("The sponsors' matches (no fee on them).")
    )
    amount_yen = serializers.IntegerField(
        read_only=True, help_text=_("The grant: gifts − fee + matches, or the general fund's.")
    )
    state = GrantStateField(read_only=True)
    tranches = GrantTrancheSerializer(many=True, read_only=True)
    reports = GrantReportSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Grant
        fields = [
            "id",
            "reference",
            "source",
            "project",
            "project_title",
            "organization",
            "purpose",
            "gifts_yen",
            "fee_rate_bp",
            "fee_yen",
            "matched_yen",
            "amount_yen",
            "ends_on",
            "state",
            "proposed_at",
            "approved_at",
            "tranches",
            "reports",
        ]


class TrancheSerializer(serializers.ModelSerializer):
    """A tranche with its grant and what keeps it from being paid today."""

    grant = serializers.IntegerField(source="grant_id", read_only=True)
    grant_reference = serializers.CharField(source="grant.reference", read_only=True)
    organization = serializers.CharField(
        source="grant.organization.name", read_only=True, help_text=_("The CSO's name.")
    )
    state = TrancheStateField(read_only=True)
    blockers = serializers.SerializerMethodField(
        help_text=_("Why it cannot be paid today; empty when it can.")
    )

    class Meta:
        model = Tranche
        fields = [
            "id",
            "grant",
            "grant_reference",
            "organization",
            "number",
            "amount_yen",
            "due_on",
            "requires_report",
            "state",
            "paid_on",
            "blockers",
        ]

    def get_blockers(self, tranche: Tranche) -> list[str]:
        return [str(reason) for reason in self.context["blockers"][tranche.pk]]


class TransferLineSerializer(serializers.ModelSerializer):
    """One transfer: the tranche, the CSO and its bank account (the number masked)."""

    tranche = serializers.IntegerField(source="tranche_id", read_only=True)
    tranche_number = serializers.IntegerField(source="tranche.number", read_only=True)
    grant_reference = serializers.CharField(source="tranche.grant.reference", read_only=True)
    organization = serializers.CharField(
        source="tranche.grant.organization.name", read_only=True, help_text=_("The CSO's name.")
    )
    bank_name = serializers.CharField(source="bank_account.bank_name", read_only=True)
    branch_name = serializers.CharField(source="bank_account.branch_name", read_only=True)
    account_number = serializers.CharField(
        source="bank_account.masked_number",
        read_only=True,
        help_text=_("The last four digits only, e.g. ***4567."),
    )
    state = LineStateField(read_only=True)

    class Meta:
        model = TransferLine
        fields = [
            "id",
            "tranche",
            "tranche_number",
            "grant_reference",
            "organization",
            "bank_name",
            "branch_name",
            "account_number",
            "amount_yen",
            "state",
            "failure_reason",
        ]


class TransferBatchSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(
        source="__str__", read_only=True, help_text=_("e.g. B-00003.")
    )
    state = BatchStateField(
        read_only=True,
        help_text=_("draft; exported: the file was downloaded; settled: every line recorded."),
    )
    line_count = serializers.IntegerField(read_only=True)
    total_yen = serializers.SerializerMethodField()

    class Meta:
        model = TransferBatch
        fields = [
            "id",
            "reference",
            "transfer_date",
            "state",
            "created_at",
            "line_count",
            "total_yen",
        ]

    def get_total_yen(self, batch: TransferBatch) -> int:
        return batch.total_yen or 0


class TransferBatchDetailSerializer(TransferBatchSerializer):
    lines = TransferLineSerializer(many=True, read_only=True)

    class Meta(TransferBatchSerializer.Meta):
        fields = [*TransferBatchSerializer.Meta.fields, "lines"]


class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    url = serializers.SerializerMethodField(help_text=_("The page that serves it (signed in)."))

    def get_url(self, attachment: Any) -> str:
        return reverse("grants:attachment", args=[attachment.pk])


class ReportSerializer(serializers.ModelSerializer):
    grant = serializers.IntegerField(source="grant_id", read_only=True)
    grant_reference = serializers.CharField(source="grant.reference", read_only=True)
    organization = GrantOrganizationSerializer(source="grant.organization", read_only=True)
    kind = ReportKindField(read_only=True)
    state = ReportStateField(read_only=True)
    spent_yen = serializers.IntegerField(
        read_only=True, allow_null=True, help_text=_("Money spent, whole yen; null until filed.")
    )
    attachments = AttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "grant",
            "grant_reference",
            "organization",
            "kind",
            "due_on",
            "state",
            "narrative",
            "outcomes",
            "spent_yen",
            "submitted_at",
            "reviewed_at",
            "review_note",
            "attachments",
        ]


# --- Serializers: query parameters and bodies ----------------------------------------------------


class GrantQuerySerializer(serializers.Serializer):
    state = GrantStateChoice(
        required=False, error_messages={"invalid_choice": choice_message(Grant.State)}
    )
    project = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text=_("A project's id: only its grants."),
        error_messages=ID_ERRORS,
    )

    def validate_project(self, value: int) -> int:
        projects = Project.objects.filter(pk=value)
        if not self.context.get("staff"):
            projects = projects.filter(state__in=PUBLIC_STATES)
        if not projects.exists():
            raise serializers.ValidationError(_("There is no project with this id."))
        return value


class TrancheTermsSerializer(serializers.Serializer):
    amount_yen = serializers.IntegerField(min_value=1, error_messages=YEN_ERRORS)
    due_on = serializers.DateField(help_text=_("Paid on or after this date."))
    requires_report = serializers.BooleanField(
        default=False,
        help_text=_("Not paid until every report due before it has been accepted."),
    )


class GrantProposeSerializer(serializers.Serializer):
    """Either ``project`` (a closed project: its terms come from the ledger) or
    ``organization`` + ``purpose`` + ``amount_yen`` (a grant from the general fund)."""

    project = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text=_("A closed project's id."),
        error_messages=ID_ERRORS,
    )
    organization = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text=_("For the general fund: the CSO's id."),
        error_messages=ID_ERRORS,
    )
    purpose = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=_("Required for the general fund; a project grant defaults to its title."),
    )
    amount_yen = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text=_("For the general fund: the grant in whole yen."),
        error_messages=YEN_ERRORS,
    )
    ends_on = serializers.DateField(help_text=_("The day the project ends."))
    tranches = TrancheTermsSerializer(
        many=True, help_text=_("In date order; they add up to the grant.")
    )
    final_report_due = serializers.DateField(
        required=False, help_text=_("At most two months after ends_on (the default).")
    )
    interim_report_due = serializers.DateField(
        required=False, help_text=_("Optional; before the final report.")
    )

    def validate_project(self, value: int) -> Project:
        project = Project.objects.filter(pk=value).first()
        if project is None:
            raise serializers.ValidationError(_("There is no project with this id."))
        return project

    def validate_organization(self, value: int) -> Organization:
        organization = Organization.objects.filter(pk=value).first()
        if organization is None:
            raise serializers.ValidationError(_("There is no organisation with this id."))
        return organization

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "project" in attrs:
            extra = [name for name in ("organization", "amount_yen") if name in attrs]
            if extra:
                raise ValidationError(
                    {
                        name: [_("A project's grant takes its CSO and amount from the project.")]
                        for name in extra
                    }
                )
        elif "organization" not in attrs:
            raise ValidationError(
                {"project": [_("Give a project, or an organisation for the general fund.")]}
            )
        return attrs


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class RequiredNoteSerializer(serializers.Serializer):
    note = serializers.CharField(help_text=_("What should change."))


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class TrancheQuerySerializer(serializers.Serializer):
    state = TrancheStateChoice(
        required=False, error_messages={"invalid_choice": choice_message(Tranche.State)}
    )
    due_before = serializers.DateField(
        required=False, help_text=_("Only tranches due on or before this date (YYYY-MM-DD).")
    )


class BatchCreateSerializer(serializers.Serializer):
    transfer_date = serializers.DateField(help_text=_("A bank business day, today or later."))
    tranches = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID, error_messages=ID_ERRORS),
        help_text=_("The tranches' ids."),
    )

    def validate_tranches(self, value: list[int]) -> list[Tranche]:
        ids = sorted(set(value))
        found = {t.pk: t for t in Tranche.objects.filter(pk__in=ids)}
        missing = [str(pk) for pk in ids if pk not in found]
        if missing:
            raise serializers.ValidationError(
                _("No tranche has the id %(ids)s.") % {"ids": ", ".join(missing)}
            )
        return [found[pk] for pk in ids]


class ReportQuerySerializer(serializers.Serializer):
    state = ReportStateChoice(
        required=False, error_messages={"invalid_choice": choice_message(Report.State)}
    )
    grant = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text=_("A grant's id: only its reports."),
        error_messages=ID_ERRORS,
    )


class ReportSubmitSerializer(serializers.Serializer):
    narrative = serializers.CharField(allow_blank=True, help_text=_("What was done."))
    outcomes = serializers.CharField(allow_blank=True, help_text=_("What came of it."))
    spent_yen = serializers.IntegerField(
        min_value=0, help_text=_("Money spent, whole yen."), error_messages=YEN_ERRORS
    )


# --- Views ---------------------------------------------------------------------------------------


class GrantsBase(viewsets.GenericViewSet):
    lookup_value_regex = ANY_ID
    permission_classes = SIGNED_IN
    pagination_class = RegisterPagination
    filter_backends: list = []  # query serializers validate the parameters


def visible_grants(user: Any) -> QuerySet[Grant]:
    """The grants this user may know about: all for staff, their CSOs' for members."""
    if is_staff(user):
        grants = selectors.grants_for_staff()
    elif organizations := member_organizations(user):
        grants = selectors.grants_of(organizations)
    else:
        grants = Grant.objects.none()
    return grants.prefetch_related("tranches", "reports")


class GrantViewSet(GrantsBase):
    """Grants: staff see all, a CSO's members their approved grants."""

    serializer_class = GrantSerializer

    def get_queryset(self) -> QuerySet[Grant]:
        return visible_grants(self.request.user)

    def _grant(self) -> Grant:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def _shown(self, grant: Grant, code: int = status.HTTP_200_OK) -> Response:
        fresh = visible_grants(self.request.user).filter(pk=grant.pk).first()
        if fresh is None:  # e.g. a member who may no longer see it: the bare grant
            fresh = Grant.objects.select_related("project", "organization").get(pk=grant.pk)
        return Response(GrantSerializer(fresh).data, status=code)

    @extend_schema(parameters=[GrantQuerySerializer])
    def list(self, request: Request) -> Response:
        """The grants you may see, newest first; ``state`` and ``project`` filter them."""
        params = GrantQuerySerializer(
            data=request.query_params, context={"staff": is_staff(request.user)}
        )
        params.is_valid(raise_exception=True)
        grants = self.get_queryset()
        if state := params.validated_data.get("state"):
            grants = grants.filter(state=state)
        if project := params.validated_data.get("project"):
            grants = grants.filter(project_id=project)
        page = self.paginate_queryset(grants)
        return self.get_paginated_response(GrantSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One grant (a 404 if you may not see it)."""
        return Response(GrantSerializer(self._grant()).data)

    @extend_schema(
        request=GrantProposeSerializer, responses={status.HTTP_201_CREATED: GrantSerializer}
    )
    def create(self, request: Request) -> Response:
        """Propose a grant (programme officers): for a closed project, or from the general
        fund. An approver — not you — approves it."""
        if not may(request.user, "grant.propose"):
            raise PermissionDenied(_("Only programme officers propose grants."))
        body = GrantProposeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        tranches = [services.TrancheTerms(**terms) for terms in data.pop("tranches")]
        grant = written(
            lambda: services.grant_propose(actor=request.user, tranches=tranches, **data)
        )
        return self._shown(grant, status.HTTP_201_CREATED)

    @extend_schema(request=NoteSerializer, responses=GrantSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve a proposed grant (approvers; never the one who proposed it): the grant and
        its fee are posted to the ledger."""
        grant = self._grant()
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"]
        grant = written(lambda: services.grant_approve(grant=grant, actor=request.user, note=note))
        return self._shown(grant)

    @extend_schema(request=ReasonSerializer, responses=GrantSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a proposed or approved grant (programme officers and approvers): what was not
        paid goes back where it came from."""
        grant = self._grant()
        if not may(request.user, "grant.cancel", grant):
            raise PermissionDenied(_("You may not cancel grants."))
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data["reason"]
        grant = written(
            lambda: services.grant_cancel(grant=grant, actor=request.user, reason=reason)
        )
        return self._shown(grant)


class TrancheViewSet(GrantsBase):
    """Every tranche (foundation staff), with what keeps each from being paid today."""

    serializer_class = TrancheSerializer

    def get_queryset(self) -> QuerySet[Tranche]:
        return Tranche.objects.select_related("grant", "grant__organization").order_by(
            "due_on", "grant_id", "number"
        )

    @extend_schema(parameters=[TrancheQuerySerializer])
    def list(self, request: Request) -> Response:
        """Tranches by due date; ``state`` and ``due_before`` (on or before) filter them."""
        require_staff(request.user)
        params = TrancheQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        tranches = self.get_queryset()
        if state := params.validated_data.get("state"):
            tranches = tranches.filter(state=state)
        if due_before := params.validated_data.get("due_before"):
            tranches = tranches.filter(due_on__lte=due_before)
        page = self.paginate_queryset(tranches)
        # Every listed tranche's blockers in two queries, not two per tranche.
        context = {"blockers": services.blockers_by_tranche(page, on=timezone.localdate())}
        return self.get_paginated_response(TrancheSerializer(page, many=True, context=context).data)


def batch_lines() -> Prefetch:
    return Prefetch(
        "lines",
        queryset=TransferLine.objects.select_related(
            "bank_account", "tranche", "tranche__grant", "tranche__grant__organization"
        ).order_by("pk"),
    )


class TransferBatchViewSet(GrantsBase):
    """Transfer batches: foundation staff read them, finance staff make and settle them."""

    serializer_class = TransferBatchSerializer

    def get_queryset(self) -> QuerySet[TransferBatch]:
        return selectors.batches().order_by("-transfer_date", "-pk")

    def _batch(self) -> TransferBatch:
        require_staff(self.request.user)
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def _detail(self, batch: TransferBatch, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().prefetch_related(batch_lines()).get(pk=batch.pk)
        return Response(TransferBatchDetailSerializer(fresh).data, status=code)

    def list(self, request: Request) -> Response:
        """Transfer batches, latest transfer date first (foundation staff)."""
        require_staff(request.user)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TransferBatchSerializer(page, many=True).data)

    @extend_schema(responses=TransferBatchDetailSerializer)
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One batch and its lines (foundation staff)."""
        return self._detail(self._batch())

    @extend_schema(
        request=BatchCreateSerializer,
        responses={status.HTTP_201_CREATED: TransferBatchDetailSerializer},
    )
    def create(self, request: Request) -> Response:
        """Collect due tranches into a batch for one bank business day (finance staff). A
        tranche that cannot be paid that day is refused with the reason."""
        require_finance(request.user)
        body = BatchCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        batch = written(lambda: services.batch_create(actor=request.user, **body.validated_data))
        return self._detail(batch, status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=_(
                    "The Zengin (全銀) transfer file in Shift_JIS, 120-byte records ending in "
                    "CRLF. Made at the first download and kept: every download is the same bytes."
                ),
            ),
            # A GET without parameters, but the export may refuse (the service's messages).
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
        }
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def file(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Download the batch's Zengin file for the bank (finance staff)."""
        batch = self._batch()
        require_finance(request.user)
        data = written(lambda: services.batch_export(batch=batch, actor=request.user))
        response = HttpResponse(data, content_type=ZENGIN_CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{batch.filename}"'
        response["Cache-Control"] = "private, no-store"
        return response

    @extend_schema(request=None, responses=TransferBatchDetailSerializer)
    @action(detail=True, methods=["post"], url_path="mark-paid")
    def mark_paid(self, request: Request, pk: str | None = None) -> Response:
        """Record every pending line as paid by the bank (finance staff; after the file was
        downloaded). Lines already recorded are left as they are."""
        batch = self._batch()
        require_finance(request.user)
        written(lambda: services.batch_mark_paid(batch=batch, actor=request.user))
        return self._detail(batch)


class TransferLineViewSet(GrantsBase):
    """One transfer's outcome: paid or failed (finance staff)."""

    serializer_class = TransferLineSerializer

    def get_queryset(self) -> QuerySet[TransferLine]:
        return TransferLine.objects.select_related(
            "batch", "bank_account", "tranche", "tranche__grant", "tranche__grant__organization"
        )

    def _line(self) -> TransferLine:
        require_staff(self.request.user)
        line = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        require_finance(self.request.user)
        return line

    def _result(self, line: TransferLine, changed: bool, wanted: str) -> Response:
        line = self.get_queryset().get(pk=line.pk)
        if not changed and line.state != wanted:
            raise ValidationError(
                {
                    "detail": [
                        _("This transfer was already recorded as %(state)s.")
                        % {"state": line.get_state_display()}
                    ]
                }
            )
        return Response(TransferLineSerializer(line).data)

    @extend_schema(request=None, responses=TransferLineSerializer)
    @action(detail=True, methods=["post"])
    def paid(self, request: Request, pk: str | None = None) -> Response:
        """The bank made this transfer: the tranche is paid (a second call changes nothing)."""
        line = self._line()
        changed = written(lambda: services.line_mark_paid(line=line, actor=request.user))
        return self._result(line, changed, TransferLine.State.PAID)

    @extend_schema(request=ReasonSerializer, responses=TransferLineSerializer)
    @action(detail=True, methods=["post"])
    def failed(self, request: Request, pk: str | None = None) -> Response:
        """The bank returned this transfer: the tranche is scheduled again."""
        line = self._line()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data["reason"]
        changed = written(
            lambda: services.line_mark_failed(line=line, actor=request.user, reason=reason)
        )
        return self._result(line, changed, TransferLine.State.FAILED)


class ReportViewSet(GrantsBase):
    """Reports: staff see all, a CSO's members their grants'. Members file them (JSON only:
    attachments are uploaded on the CSO's report page); programme officers review them."""

    serializer_class = ReportSerializer

    def get_queryset(self) -> QuerySet[Report]:
        user = self.request.user
        reports = Report.objects.select_related("grant", "grant__organization").prefetch_related(
            "attachments"
        )
        if is_staff(user):
            return reports
        if organizations := member_organizations(user):
            return reports.filter(grant__in=selectors.grants_of(organizations).values("pk"))
        return reports.none()

    def _report(self) -> Report:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def _shown(self, report: Report) -> Response:
        return Response(ReportSerializer(self.get_queryset().get(pk=report.pk)).data)

    @extend_schema(parameters=[ReportQuerySerializer])
    def list(self, request: Request) -> Response:
        """The reports you may see, by due date; ``state`` and ``grant`` filter them."""
        params = ReportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        reports = self.get_queryset()
        if state := params.validated_data.get("state"):
            reports = reports.filter(state=state)
        if grant := params.validated_data.get("grant"):
            reports = reports.filter(grant_id=grant)
        page = self.paginate_queryset(reports)
        return self.get_paginated_response(ReportSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One report (a 404 if you may not see it)."""
        return Response(ReportSerializer(self._report()).data)

    @extend_schema(
        request=ReportSubmitSerializer,
        responses=ReportSerializer,
        description=_(
            "File the report (the CSO's members), again after the officer asked for changes. "
            "JSON only: attachments cannot be sent through the API — upload them on the CSO's "
            "report page."
        ),
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        report = self._report()
        if not may(request.user, "grant.report", report.grant):
            raise PermissionDenied(_("Only the CSO's members file its reports."))
        body = ReportSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = written(
            lambda: services.report_submit(report=report, actor=request.user, **body.validated_data)
        )
        return self._shown(report)

    @extend_schema(request=NoteSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        """Accept a submitted report (programme officers). The final one, once the grant is
        paid, closes the grant and writes its outcome to the register."""
        report = self._report()
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"]
        report = written(
            lambda: services.report_accept(report=report, actor=request.user, note=note)
        )
        return self._shown(report)

    @extend_schema(request=RequiredNoteSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request: Request, pk: str | None = None) -> Response:
        """Ask the CSO to change a submitted report (programme officers)."""
        report = self._report()
        if not may(request.user, "grant.review_report", report):
            raise PermissionDenied(_("Only programme officers review reports."))
        body = RequiredNoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"]
        report = written(
            lambda: services.report_request_changes(report=report, actor=request.user, note=note)
        )
        return self._shown(report)
