"""Forms of the CSO area: submitting a proposal letter (step 4) online, and withdrawing it.

The submission form validates what was typed and uploaded — the organisation is one of the
person's, the operation code is in the chosen body's current catalogue, the letter is a PDF by
its content and at most 10 MB. ``services.proposal_submit_online`` then receives it
(which asks the policy) and stores the letter in the same transaction.
"""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Max, QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import GovernmentBody, Organization, User
from accounts.organization_forms import SiteForm
from accounts.policy import may

from . import services
from .fiscal import JAPAN, fiscal_year_of
from .models import Operation, Proposal
from .templatetags.register_tags import fiscal_year_label

LETTER_MAX_BYTES = 10 * 1024 * 1024
PDF_HEADER = b"%PDF-"
# Readers accept the end-of-file marker anywhere in the last kilobyte; a file without one is
# truncated or not a PDF.
PDF_EOF = b"%%EOF"
PDF_TAIL_BYTES = 1024


def is_pdf(upload: UploadedFile) -> bool:
    """True if the file's bytes are a PDF's: the ``%PDF-1.x`` header, ``%%EOF`` near the end.

    Judged by content only: the file's name and the browser's content type are the sender's
    claims, not evidence.
    """
    upload.seek(0)
    head = upload.read(8)  # b"%PDF-1.7"
    version_ok = head[5:6].isdigit() and head[6:7] == b"." and head[7:8].isdigit()
    if not (head.startswith(PDF_HEADER) and version_ok):
        upload.seek(0)
        return False
    upload.seek(max(0, upload.size - PDF_TAIL_BYTES))
    tail = upload.read()
    upload.seek(0)
    return PDF_EOF in tail


def today_in_japan() -> dt.date:
    return timezone.localdate(timezone=JAPAN)


def current_catalogue_year(body: GovernmentBody, today: dt.date) -> int | None:
    """The body's newest catalogue that is not ahead of today: this fiscal year's, or, before
    the new one is published (in April), last year's."""
    return Operation.objects.filter(body=body, fiscal_year__lte=fiscal_year_of(today)).aggregate(
        year=Max("fiscal_year")
    )["year"]


class ProposalSubmitForm(SiteForm):
    NEW_PROJECT = "new"
    CATALOGUED = "operation"

    organization = forms.ModelChoiceField(
        label=_("Proposing organisation"),
        queryset=Organization.objects.none(),
        empty_label=None,
    )
    body = forms.ModelChoiceField(
        label=_("Government body"),
        queryset=GovernmentBody.objects.order_by("code"),
        empty_label=_("Choose the prefecture or a municipality"),
        help_text=_("The prefecture or the municipality you propose to."),
    )
    target = forms.ChoiceField(
        label=_("What do you propose?"),
        choices=[
            (CATALOGUED, _("To take on or improve an operation in the body's catalogue")),
            (NEW_PROJECT, _("A new project (not in the catalogue)")),
        ],
        initial=NEW_PROJECT,
        widget=forms.RadioSelect,
    )
    operation_code = forms.CharField(
        label=_("Operation code"),
        required=False,
        max_length=50,
        help_text=_(
            "For an operation: its code in the body's current catalogue, as shown in the "
            "operations catalogue (e.g. KY-001)."
        ),
    )
    title = forms.CharField(label=_("Title of the proposal"), max_length=300)
    summary = forms.CharField(
        label=_("Summary"),
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=5000,
        help_text=_(
            "What you propose and why. The title and the summary appear in the public register; "
            "the letter is seen only by your organisation, the body and the foundation."
        ),
    )
    letter = forms.FileField(
        label=_("Proposal letter (PDF, optional)"),
        required=False,
        help_text=_("A PDF file of at most 10 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )

    field_order = ["organization", "body", "target", "operation_code", "title", "summary"]

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["organization"].queryset = self.organizations_of(user)
        self.operation: Operation | None = None

    @staticmethod
    def organizations_of(user: User) -> QuerySet[Organization]:
        """The organisations the person may submit for (a member of each)."""
        return Organization.objects.filter(memberships__user=user).order_by("name")

    def clean_organization(self) -> Organization:
        organization = self.cleaned_data["organization"]
        if not may(self.user, "proposal.submit", organization):
            raise ValidationError(_("You may not submit proposals for this organisation."))
        return organization

    def clean_operation_code(self) -> str:
        return self.cleaned_data["operation_code"].strip()

    def clean_letter(self) -> UploadedFile | None:
        letter = self.cleaned_data.get("letter")
        if not letter:
            return None
        if letter.size > LETTER_MAX_BYTES:
            raise ValidationError(
                _("The letter is %(size)s; the limit is 10 MB. Reduce the file and try again.")
                % {"size": filesizeformat(letter.size)},
                code="too_large",
            )
        if not is_pdf(letter):
            raise ValidationError(
                _(
                    "“%(name)s” is not a PDF file (its content is not a PDF's, whatever its "
                    "name). Save the letter as a PDF and attach that."
                )
                % {"name": letter.name},
                code="not_pdf",
            )
        return letter

    def clean(self) -> dict:
        data = super().clean()
        body, target, code = data.get("body"), data.get("target"), data.get("operation_code")
        if target == self.CATALOGUED:
            if not code:
                self.add_error(
                    "operation_code",
                    _("Enter the operation's code, or choose a new project."),
                )
            elif body is not None:
                self.operation = self._catalogued_operation(body, code)
        elif target == self.NEW_PROJECT and code:
            self.add_error(
                "operation_code",
                _("A new project has no operation code: clear the code or choose an operation."),
            )
        return data

    def _catalogued_operation(self, body: GovernmentBody, code: str) -> Operation | None:
        year = current_catalogue_year(body, today_in_japan())
        operation = (
            Operation.objects.filter(body=body, fiscal_year=year, code=code).first()
            if year
            else None
        )
        if operation is None:
            if year is None:
                message = _("%(body)s has no operations catalogue yet: choose a new project.") % {
                    "body": body.name
                }
            else:
                message = _(
                    "“%(code)s” is not in %(body)s's catalogue for %(year)s. Check the code in "
                    "the operations catalogue, or choose a new project."
                ) % {"code": code, "body": body.name, "year": fiscal_year_label(year)}
            self.add_error("operation_code", message)
        return operation

    def submit(self) -> Proposal:
        """Receive the proposal (step 4) as submitted by this person, with its letter."""
        data = self.cleaned_data
        return services.proposal_submit_online(
            actor=self.user,
            organization=data["organization"],
            body=data["body"],
            operation=self.operation,
            title=data["title"],
            summary=data["summary"],
            letter=data.get("letter"),
        )


class WithdrawForm(SiteForm):
    confirm = forms.BooleanField(
        label=_("I confirm that our organisation withdraws this proposal."),
        error_messages={"required": _("Tick the box to confirm the withdrawal.")},
    )
    note = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
