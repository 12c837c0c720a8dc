"""Forms of the CSO's grant pages: its bank account (also used by staff) and its reports.

They check shape only; the rules (the bank code list, kana, who may) are in ``grants.services``,
whose ``ValidationError``s the views put back on these forms' fields.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import BankAccount, Report


class BankAccountForm(forms.Form):
    bank_code = forms.CharField(
        label=_("Bank code"),
        max_length=4,
        min_length=4,
        help_text=_("4 digits, e.g. 0179 for the Bank of Saga."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    branch_code = forms.CharField(
        label=_("Branch code"),
        max_length=3,
        min_length=3,
        help_text=_("3 digits."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    account_type = forms.ChoiceField(
        label=_("Account type"), choices=BankAccount.AccountType.choices
    )
    account_number = forms.CharField(
        label=_("Account number"),
        max_length=7,
        help_text=_("7 digits; pad a shorter number with zeros in front."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    holder_kana = forms.CharField(
        label=_("Account holder (kana)"),
        max_length=60,
        help_text=_(
            "As the bank has it, in katakana or hiragana; it is converted to the half-width "
            "kana banks use (e.g. トクヒ）サガキョウドウ → ﾄｸﾋ)ｻｶﾞｷﾖｳﾄﾞｳ)."
        ),
    )

    def clean_account_number(self) -> str:
        value = self.cleaned_data["account_number"].strip()
        # People type 12345 for 0012345; the bank's field is seven digits.
        if value.isascii() and value.isdigit() and len(value) < 7:
            value = value.zfill(7)
        return value


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field: a list of uploads (empty when none was chosen)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class ReportForm(forms.Form):
    """A report on a grant: what was done, what came of it, the money spent, and files."""

    narrative = forms.CharField(
        label=_("What was done"),
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("The activities the grant paid for, with dates and places."),
    )
    outcomes = forms.CharField(
        label=_("Outcomes"),
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("What came of it: who took part, what changed, what you learned."),
    )
    spent_yen = forms.IntegerField(
        label=_("Money spent (yen)"),
        min_value=0,
        help_text=_("Whole yen, without commas."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": "0", "step": "1"}),
    )
    attachments = MultipleFileField(
        label=_("Attachments"),
        required=False,
        help_text=_(
            "Receipts, photos, accounts: PDF, images, Office files, CSV or text, "
            "at most 10 MB each. You may choose several files."
        ),
    )

    @classmethod
    def for_report(cls, report: Report, data=None, files=None) -> "ReportForm":
        """The form, filled in with what was filed before (after the officer asked for
        changes)."""
        initial = {}
        if report.narrative or report.outcomes or report.spent_yen is not None:
            initial = {
                "narrative": report.narrative,
                "outcomes": report.outcomes,
                "spent_yen": report.spent_yen,
            }
        return cls(data, files, initial=initial)
