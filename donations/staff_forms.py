"""Forms of the foundation's gift pages: the list's filters and the refund form.

The filter form never fails the page: a bad value is reported and left out (``PublicFilterForm``).
The refund form hands its refusals back as errors (``ServiceFormMixin``): a ``ValidationError``
from ``services.refund_gift`` is shown on the form, a ``ProviderError`` as a message on top of
it. Who may refund is checked by the view before the form runs (a 403 for others).
"""

import datetime as dt
from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from fund.models import Project
from proposals.fiscal import JAPAN
from proposals.forms import PublicFilterForm
from proposals.officer_forms import DateInput, ServiceFormMixin, YenField

from . import services
from .models import Gift, Refund
from .providers import ProviderError

GENERAL_FUND = "general"


class GiftFilterForm(PublicFilterForm):
    """Project (or the general fund), state, disputed, and a range of dates received (Japan)."""

    project = forms.ChoiceField(
        label=gettext_lazy("Project"),
        required=False,
        error_messages={
            "invalid_choice": gettext_lazy("There is no project “%(value)s”; showing all.")
        },
    )
    state = forms.ChoiceField(
        label=gettext_lazy("State"),
        required=False,
        error_messages={
            "invalid_choice": gettext_lazy("Unknown state “%(value)s”; showing every state.")
        },
    )
    disputed = forms.ChoiceField(
        label=gettext_lazy("Disputed"),
        required=False,
        choices=[
            ("", gettext_lazy("Either")),
            ("yes", gettext_lazy("Disputed")),
            ("no", gettext_lazy("Not disputed")),
        ],
        error_messages={
            "invalid_choice": gettext_lazy("Unknown choice “%(value)s”; showing both.")
        },
    )
    received_from = forms.DateField(
        label=gettext_lazy("Received from"),
        required=False,
        widget=DateInput(),
        error_messages={"invalid": gettext_lazy("That start date is not a date; left out.")},
    )
    received_to = forms.DateField(
        label=gettext_lazy("Received until"),
        required=False,
        widget=DateInput(),
        error_messages={"invalid": gettext_lazy("That end date is not a date; left out.")},
    )

    field_order = ["project", "state", "disputed", "received_from", "received_to"]

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.fields["project"].choices = [
            ("", _("All projects and the general fund")),
            (GENERAL_FUND, _("General fund")),
        ] + [
            (str(pk), title)
            for pk, title in Project.objects.order_by("-created_at", "-pk").values_list(
                "pk", "title"
            )
        ]
        self.fields["state"].choices = [("", _("Every state")), *Gift.State.choices]

    def gift_filters(self) -> Q:
        """The valid filters as one condition on gifts."""
        data = getattr(self, "cleaned_data", {})
        condition = Q()
        project = data.get("project")
        if project == GENERAL_FUND:
            condition &= Q(project__isnull=True)
        elif project:
            condition &= Q(project_id=int(project))
        if data.get("state"):
            condition &= Q(state=data["state"])
        if data.get("disputed"):
            condition &= Q(disputed=data["disputed"] == "yes")
        # Days are Japan's: a gift received at 01:00 JST on the 2nd is a gift of the 2nd.
        if data.get("received_from"):
            start = dt.datetime.combine(data["received_from"], dt.time.min, tzinfo=JAPAN)
            condition &= Q(received_at__gte=start)
        if data.get("received_to"):
            end = dt.datetime.combine(
                data["received_to"] + dt.timedelta(days=1), dt.time.min, tzinfo=JAPAN
            )
            condition &= Q(received_at__lt=end)
        return condition


# Reasons a member of staff may give; a lost dispute is recorded by the provider's events.
STAFF_REASONS = [
    (value, label) for value, label in Refund.Reason.choices if value != Refund.Reason.DISPUTE_LOST
]


class RefundForm(ServiceFormMixin, forms.Form):
    """Give back all of a gift or part of it (finance staff)."""

    amount = YenField(
        label=gettext_lazy("Amount to refund (yen)"),
        min_value=1,
        help_text=gettext_lazy("All that is left of the gift, or less for a partial refund."),
    )
    reason = forms.ChoiceField(label=gettext_lazy("Reason"), choices=STAFF_REASONS)

    def __init__(self, data: Any = None, *, gift: Gift, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "refund")
        kwargs.setdefault("initial", {"amount": gift.net_amount, "reason": Refund.Reason.REQUESTED})
        super().__init__(data, **kwargs)
        self.gift = gift
        self.provider_error = ""

    def perform(self, actor: User) -> Refund | None:
        try:
            return services.refund_gift(
                gift=self.gift,
                amount=self.cleaned_data["amount"],
                actor=actor,
                reason=self.cleaned_data["reason"],
            )
        except ProviderError as error:
            # Nothing was recorded: the provider refused or could not be reached.
            self.provider_error = str(error) or _("The payment provider refused the refund.")
            return None
