"""The public give form: the amount, once or monthly, and the donor's particulars and choices.

The form checks what a donor can correct on the page; ``services.donation_start`` checks the
rules again (amount range, the project taking gifts, the card-testing limits) before it writes.
Publishing a name and sharing contact details with the organisation are separate opt-ins (APPI):
each is its own unticked box.
"""

import re
import unicodedata
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.formatting import format_yen
from fund.models import Project
from proposals.officer_forms import YenField

from .models import MAX_AMOUNT_YEN, MIN_AMOUNT_YEN, Donation
from .services import DonorDetails

AMOUNT_PRESETS = (1_000, 3_000, 5_000, 10_000)
OTHER_AMOUNT = "other"
POSTAL_CODE = re.compile(r"^(\d{3})-?(\d{4})$")


class AmountField(YenField):
    """The free amount: whole yen ("3000", "3,000", "¥3,000"), from ¥100 to ¥10,000,000."""

    # One message for both ends of the range: the donor needs the range, not which end.
    default_error_messages = {
        "invalid": gettext_lazy("Enter the amount in whole yen, e.g. 3000."),
        "min_value": gettext_lazy("A gift is from ¥100 to ¥10,000,000."),
        "max_value": gettext_lazy("A gift is from ¥100 to ¥10,000,000."),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=MIN_AMOUNT_YEN, max_value=MAX_AMOUNT_YEN, **kwargs)

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str):
            # Full-width digits and commas ("３，０００") are common from Japanese keyboards.
            value = unicodedata.normalize("NFKC", value)
        return super().to_python(value)


class GiveForm(forms.Form):
    amount = forms.ChoiceField(
        label=gettext_lazy("Amount"),
        required=False,
        widget=forms.RadioSelect,
    )
    other_amount = AmountField(
        label=gettext_lazy("Other amount (yen)"),
        required=False,
        help_text=gettext_lazy("Whole yen, from ¥100 to ¥10,000,000."),
    )
    frequency = forms.ChoiceField(
        label=gettext_lazy("How often"),
        choices=Donation.Frequency.choices,
        initial=Donation.Frequency.ONCE,
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "A monthly gift is taken by card on the same day each month until you cancel it, "
            "which you can do at any time from your gift's page. One-time gifts can also be paid "
            "at a convenience store."
        ),
    )
    email = forms.EmailField(
        label=gettext_lazy("Email address"),
        max_length=254,
        help_text=gettext_lazy("For the confirmation and your receipt."),
    )
    name = forms.CharField(
        label=gettext_lazy("Your name"),
        max_length=200,
        help_text=gettext_lazy("As on your tax return; printed on the receipt, never published."),
    )
    wants_receipt = forms.BooleanField(
        label=gettext_lazy("I want a tax receipt (寄附金受領証明書)"),
        required=False,
        initial=True,
        help_text=gettext_lazy(
            "Needed to deduct the gift from your taxes. The receipt needs your postal code and "
            "address."
        ),
    )
    postal_code = forms.CharField(
        label=gettext_lazy("Postal code"),
        max_length=8,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}),
        help_text=gettext_lazy("e.g. 840-0041"),
    )
    address = forms.CharField(
        label=gettext_lazy("Address"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    publish_name = forms.BooleanField(
        label=gettext_lazy("Show a name of my choice on the project's donor wall"),
        required=False,
        help_text=gettext_lazy("Left unticked, you are counted among the donors without a name."),
    )
    display_name = forms.CharField(
        label=gettext_lazy("Name to show"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("A nickname is fine. Used only if you tick the box above."),
    )
    message = forms.CharField(
        label=gettext_lazy("Message (optional)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Shown on the donor wall next to your name if you choose to show it; otherwise only "
            "the foundation reads it."
        ),
    )
    share_contact = forms.BooleanField(
        label=gettext_lazy(
            "Share my name and email address with the organisation carrying out the project"
        ),
        required=False,
    )

    def __init__(self, *args: Any, project: Project | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["amount"].choices = [
            *((str(yen), format_yen(yen)) for yen in AMOUNT_PRESETS),
            (OTHER_AMOUNT, _("Other amount")),
        ]
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        if project is None:
            # The general fund has no organisation to share contact details with.
            del self.fields["share_contact"]
        else:
            organisation = project.proposal.organization.name
            self.fields["share_contact"].help_text = _(
                "%(organisation)s receives your name and email address so it can thank you and "
                "report on the project. Left unticked, they stay with the foundation."
            ) % {"organisation": organisation}

    def clean_postal_code(self) -> str:
        value = unicodedata.normalize("NFKC", self.cleaned_data["postal_code"]).strip()
        if not value:
            return ""
        match = POSTAL_CODE.match(value)
        if match is None:
            raise forms.ValidationError(_("Enter a postal code of 7 digits, e.g. 840-0041."))
        return f"{match[1]}-{match[2]}"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self._clean_amount(data)
        if data.get("wants_receipt"):
            for field in ("postal_code", "address"):
                if not data.get(field) and field not in self.errors:
                    self.add_error(field, _("A tax receipt needs your postal code and address."))
        if data.get("publish_name") and not data.get("display_name", "").strip():
            self.add_error("display_name", _("Enter the name to show, or untick “show a name”."))
        return data

    def _clean_amount(self, data: dict[str, Any]) -> None:
        if "other_amount" in self.errors:
            return
        choice, typed = data.get("amount"), data.get("other_amount")
        if typed is not None:
            # A typed amount wins over a preset: the donor took the trouble to type it.
            data["amount_yen"] = typed
        elif choice and choice != OTHER_AMOUNT:
            data["amount_yen"] = int(choice)
        elif choice == OTHER_AMOUNT:
            self.add_error("other_amount", _("Enter the amount you want to give."))
        else:
            self.add_error("amount", _("Choose an amount, or enter another amount."))

    def donor_details(self) -> DonorDetails:
        data = self.cleaned_data
        return DonorDetails(
            email=data["email"],
            name=data["name"],
            postal_code=data["postal_code"],
            address=data["address"],
            display_name=data["display_name"],
            publish_name=data["publish_name"],
            message=data["message"],
            share_contact=data.get("share_contact", False),
            wants_receipt=data["wants_receipt"],
        )


class QuickGiveForm(forms.Form):
    """The project page's short form: an amount and how often, then on to the give form."""

    amount = forms.ChoiceField(label=gettext_lazy("Amount"), widget=forms.RadioSelect)
    frequency = forms.ChoiceField(
        label=gettext_lazy("How often"),
        choices=Donation.Frequency.choices,
        initial=Donation.Frequency.ONCE,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "quick_%s")  # the project page may show other forms
        super().__init__(*args, **kwargs)
        self.fields["amount"].choices = [
            *((str(yen), format_yen(yen)) for yen in AMOUNT_PRESETS),
            (OTHER_AMOUNT, _("Other amount")),
        ]
        self.fields["amount"].initial = str(AMOUNT_PRESETS[1])
