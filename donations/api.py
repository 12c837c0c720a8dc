"""The donations API: open projects with their progress and donors, and giving.

Conventions of ``proposals.api``: a bad parameter or bad input is a 400 whose body names the
field and says what is wrong, and nothing is written; an object the caller may not see is a 404.

- ``GET projects/``: open projects, filtered by body (code) and fiscal year, sorted by
  ``ending`` (closing soonest first) or ``needed`` (largest goal − raised first); paginated.
  Money from the ledger, donors from the gifts, in a fixed number of queries per page.
- ``GET projects/{id}/``: one project; drafts and cancelled ones answer 404 unless the caller
  may manage projects.
- ``POST projects/{id}/donations/``: start a gift to the project → 201 ``{donation_id,
  checkout_url}``; send the donor to ``checkout_url`` (the provider's checkout), which returns
  them to the thank-you page. ``POST donations/`` does the same for the general fund (or for
  the ``project`` in the body).
- ``GET donations/{id}/``: a donation and its payments, for its donor (signed in, the browser
  that gave, or ``?t=`` the signed link from their email) and foundation staff; a 404 for anyone
  else.

Who may give: anyone, without an account. Signed-in callers using the site's session must send
the CSRF token (DRF's ``SessionAuthentication`` checks it for authenticated sessions). An
anonymous call carries no CSRF check: DRF's views are CSRF-exempt and ``SessionAuthentication``
only enforces the token once it has found a signed-in user, so scripts and apps can give
without a session. That is safe here because starting a gift moves no money — the donor still
has to pay at the provider's checkout — and the card-testing limits (per IP, per email and
session, in total) apply to every call: past them the answer is a 429 with a message.
A browser that gave (a session, or an anonymous caller) is remembered in its session, so it may
come back to the thank-you page; token-authenticated scripts are not given a session.
"""

import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, Throttled
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.policy import may
from fund import selectors as fund_selectors
from fund.api import FundBodySerializer
from fund.models import Project
from proposals.api import (
    ANY_ID,
    BodyCodeFilter,
    ErrorSerializer,
    FiscalYearFilter,
    RegisterPagination,
    saved,
)

from . import access, selectors, services
from .models import MAX_AMOUNT_YEN, MIN_AMOUNT_YEN, Donation, Gift, Receipt
from .providers import ProviderError

MANAGE = "project.manage"

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
        return fund_selectors.open_projects(
            body=data.get("body"),
            fiscal_year=data.get("fiscal_year"),
            sort=data.get("sort") or "ending",
        )


# --- Serializers: projects ---------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": list(Project.State.values)})
class ProjectStateField(serializers.CharField):
    """Project.State, described inline: a named "state" enum would collide with Proposal.State
    in spectacular's enum names (a warning)."""


class ProjectSerializer(serializers.ModelSerializer):
    """A project's public particulars and progress (money from the ledger, donors from gifts)."""

    body = FundBodySerializer(source="proposal.body", read_only=True)
    fiscal_year = serializers.IntegerField(
        source="proposal.fiscal_year", read_only=True, help_text=_("The proposal's fiscal year.")
    )
    raised_yen = serializers.SerializerMethodField(help_text=_("Whole yen, from the ledger."))
    matched_yen = serializers.SerializerMethodField(help_text=_("Whole yen."))
    donors = serializers.SerializerMethodField(
        help_text=_("Distinct donors (by email) whose gifts were not refunded in full.")
    )
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

    def _progress(self, project: Project) -> fund_selectors.Progress:
        return self.context["progress"][project.pk]

    def get_raised_yen(self, project: Project) -> int:
        return self._progress(project).raised

    def get_matched_yen(self, project: Project) -> int:
        return self._progress(project).matched

    def get_donors(self, project: Project) -> int:
        return self._progress(project).donors

    def get_days_left(self, project: Project) -> int | None:
        return self._progress(project).days_left


# --- Serializers: giving -----------------------------------------------------------------------


@extend_schema_field({"type": "integer", "minimum": MIN_AMOUNT_YEN, "maximum": MAX_AMOUNT_YEN})
class WholeYenField(serializers.Field):
    """Whole yen as a JSON integer (or a string of ASCII digits, for form posts): 3000.5,
    "3000円" and true are refused, and so is anything outside ¥100–¥10,000,000."""

    default_error_messages = {
        "invalid": _("Give the amount as a whole number of yen, e.g. 3000."),
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and data.isascii() and data.isdigit():
            value = int(data)
        else:
            self.fail("invalid")
        try:
            return services.validate_amount(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict["amount"]) from None

    def to_representation(self, value: int) -> int:
        return value


@extend_schema_field({"type": "string", "enum": list(Donation.Frequency.values)})
class FrequencyField(serializers.ChoiceField):
    """Donation.Frequency, inline (no shared enum component)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Donation.Frequency.choices, **kwargs)


class DonationStartSerializer(serializers.Serializer):
    """What a donor gives and chooses. Each consent is a separate opt-in, off unless sent."""

    amount = WholeYenField(help_text=_("Whole yen, from 100 to 10,000,000."))
    frequency = FrequencyField(default=Donation.Frequency.ONCE)
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("The donor's name; needed for a tax receipt."),
    )
    postal_code = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")
    address = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Needed for a tax receipt."),
    )
    display_name = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("The name on the donor wall, if publish_name is true."),
    )
    publish_name = serializers.BooleanField(required=False, default=False)
    message = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    share_contact = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("Share the name and email with the organisation behind the project."),
    )
    wants_receipt = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("A tax receipt (寄附金受領証明書); needs name and address."),
    )

    def donor(self) -> services.DonorDetails:
        data = self.validated_data
        return services.DonorDetails(
            email=data["email"],
            name=data["name"],
            postal_code=data["postal_code"],
            address=data["address"],
            display_name=data["display_name"],
            publish_name=data["publish_name"],
            message=data["message"],
            share_contact=data["share_contact"],
            wants_receipt=data["wants_receipt"],
        )


class GeneralDonationStartSerializer(DonationStartSerializer):
    project = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("A project's id; omitted or null for the general fund."),
    )

    def validate_project(self, value: int | None) -> Project | None:
        if value is None:
            return None
        project = Project.objects.filter(pk=value, state__in=fund_selectors.PUBLIC_STATES).first()
        if project is None:
            raise serializers.ValidationError(_("There is no project with this id."))
        return project


class DonationStartedSerializer(serializers.Serializer):
    donation_id = serializers.UUIDField()
    checkout_url = serializers.URLField(
        help_text=_("Send the donor here to pay; they come back to the thank-you page.")
    )


@extend_schema_field({"type": "string", "enum": list(Gift.State.values)})
class GiftStateField(serializers.CharField):
    """Gift.State, inline (no enum collision with other "state" fields)."""


@extend_schema_field({"type": "string", "enum": list(Donation.Status.values)})
class DonationStatusField(serializers.CharField):
    """Donation.Status, inline."""


class GiftSerializer(serializers.ModelSerializer):
    state = GiftStateField()
    receipt = serializers.SerializerMethodField(
        help_text=_("The live receipt's number (year-number), or null.")
    )

    class Meta:
        model = Gift
        fields = ["amount", "refunded_amount", "state", "received_at", "receipt"]

    def get_receipt(self, gift: Gift) -> str | None:
        live = gift.live_receipts
        return live[0].display_number if live else None


class DonationSerializer(serializers.ModelSerializer):
    """A donation as its donor sees it: no other person's data."""

    project = serializers.IntegerField(
        source="project_id", allow_null=True, help_text=_("Null for the general fund.")
    )
    frequency = FrequencyField()
    status = DonationStatusField()
    gifts = GiftSerializer(many=True)

    class Meta:
        model = Donation
        fields = ["id", "project", "amount", "frequency", "status", "created_at", "gifts"]


# --- Giving --------------------------------------------------------------------------------------


class ProviderUnavailable(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = _("The payment service could not start the checkout. Please try again later.")
    default_code = "provider_unavailable"


def _client_ip(request: Request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _start(request: Request, project: Project | None, serializer: DonationStartSerializer):
    """Start the gift; the 201 response, or a 400/429/502 with a message."""
    placeholder = str(uuid.UUID(int=0))
    # Braces would be escaped by build_absolute_uri, so the placeholder goes in afterwards.
    success_url = request.build_absolute_uri(
        reverse("donations:thanks", args=[placeholder])
    ).replace(placeholder, "{donation_id}")
    if project is None:
        cancel_url = request.build_absolute_uri(reverse("donations:give-general"))
    else:
        cancel_url = request.build_absolute_uri(
            reverse("donations:project-detail", args=[project.pk])
        )
    browser = not isinstance(request.successful_authenticator, TokenAuthentication)
    session_key = (request.session.session_key or "") if browser else ""
    try:
        donation = saved(
            lambda: services.donation_start(
                project=project,
                amount=serializer.validated_data["amount"],
                frequency=serializer.validated_data["frequency"],
                donor=serializer.donor(),
                user=request.user,
                success_url=success_url,
                cancel_url=cancel_url,
                ip=_client_ip(request),
                session_key=session_key,
            )
        )
    except services.TooManyAttempts as error:
        raise Throttled(detail=str(error)) from None
    except ProviderError:
        raise ProviderUnavailable from None
    if browser:
        access.remember(request, donation)
    return Response(
        DonationStartedSerializer(
            {
                "donation_id": donation.pk,
                "checkout_url": request.build_absolute_uri(donation.checkout_url),
            }
        ).data,
        status=status.HTTP_201_CREATED,
    )


# --- Views --------------------------------------------------------------------------------------

# What starting a gift answers besides the usual 400, 403 and 404 (proposals.api.ApiSchema).
START_RESPONSES = {
    status.HTTP_201_CREATED: DonationStartedSerializer,
    status.HTTP_429_TOO_MANY_REQUESTS: OpenApiResponse(
        ErrorSerializer,
        description=_("Too many attempts (the card-testing limits): try again later."),
    ),
    status.HTTP_502_BAD_GATEWAY: OpenApiResponse(
        ErrorSerializer, description=_("The payment service could not start the checkout.")
    ),
}


def _public_project_or_404(request: Request, pk: Any) -> Project:
    try:
        project = fund_selectors.public_project(int(pk))
    except (TypeError, ValueError):
        raise Http404 from None
    if project is None:
        raise Http404
    if project.state not in fund_selectors.PUBLIC_STATES and not may(request.user, MANAGE):
        raise Http404
    return project


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """Designated-donation projects: the open ones, each project's page, and giving to one."""

    lookup_value_regex = ANY_ID

    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter
    pagination_class = RegisterPagination

    def get_queryset(self) -> QuerySet[Project]:
        return fund_selectors.open_projects()

    def list(self, request: Request) -> Response:
        """Projects open for gifts now, with their progress and donors."""
        projects = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(projects)
        context = {
            **self.get_serializer_context(),
            "progress": selectors.progress_with_donors(page),
        }
        return self.get_paginated_response(ProjectSerializer(page, many=True, context=context).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One project with its progress; drafts and cancelled ones only for programme officers."""
        project = _public_project_or_404(request, pk)
        context = {
            **self.get_serializer_context(),
            "progress": {project.pk: selectors.progress_of(project)},
        }
        return Response(ProjectSerializer(project, context=context).data)

    @extend_schema(
        request=DonationStartSerializer,
        responses=START_RESPONSES,
        summary="Start a gift to the project",
    )
    @action(detail=True, methods=["post"], url_path="donations", filter_backends=[])
    def donations(self, request: Request, pk: str | None = None) -> Response:
        """Start a gift to an open project: send the donor to ``checkout_url`` to pay.

        A closed project answers 400; a draft or cancelled one (not public) 404.
        """
        project = _public_project_or_404(request, pk)
        if project.state not in fund_selectors.PUBLIC_STATES:
            raise Http404  # not public: no gifts, not even from those who may see it
        serializer = DonationStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _start(request, project, serializer)


class DonationViewSet(viewsets.GenericViewSet):
    """Giving to the general fund (or a project), and a donation as its donor sees it."""

    lookup_value_regex = ANY_ID

    serializer_class = DonationSerializer
    filter_backends: list = []
    pagination_class = None

    def get_queryset(self) -> QuerySet[Donation]:
        gifts = Gift.objects.order_by("received_at", "pk").prefetch_related(
            Prefetch(
                "receipts",
                queryset=Receipt.objects.filter(kind=Receipt.Kind.SINGLE, voided_at__isnull=True),
                to_attr="live_receipts",
            )
        )
        return Donation.objects.prefetch_related(Prefetch("gifts", queryset=gifts))

    @extend_schema(
        request=GeneralDonationStartSerializer,
        responses=START_RESPONSES,
        summary="Start a gift to the general fund (or to a project)",
    )
    def create(self, request: Request) -> Response:
        """Start a gift; without ``project`` (or with null) it goes to the general fund."""
        serializer = GeneralDonationStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _start(request, serializer.validated_data["project"], serializer)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """A donation and its payments: for its donor and foundation staff; otherwise 404."""
        try:
            donation_id = uuid.UUID(str(pk))
        except ValueError:
            raise Http404 from None
        donation = self.get_queryset().filter(pk=donation_id).first()
        if donation is None or not access.may_view_donation(request, donation):
            raise Http404
        response = Response(DonationSerializer(donation).data)
        response["Cache-Control"] = "private, no-store"
        return response
