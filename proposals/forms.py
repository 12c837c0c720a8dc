"""Forms that validate the query strings of the register's public pages.

Every filter arrives as a GET parameter anyone can edit. Each page binds one of these forms to
``request.GET`` and uses only what validated: a bad value is reported to the visitor and
dropped, the rest of the filters still apply, and nothing a visitor types can raise a 500.

The choices of the dropdowns come from one cheap query each (distinct years, the bodies, the
chosen body's departments), so a page's query count does not grow with the register.
"""

from django import forms
from django.db.models import Max, Min, QuerySet
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from accounts.models import GovernmentBody, Organization

from .models import (
    Department,
    Operation,
    Proposal,
)
from .selectors import ALL_KINDS
from .templatetags.register_tags import fiscal_year_label


class PublicFilterForm(forms.Form):
    """A GET filter form whose ``page`` never fails: the paginator picks the nearest page."""

    page = forms.CharField(required=False)

    def clean_page(self) -> int:
        # Page numbers come from our own links; a mangled one goes to a page, not to an error.
        try:
            return max(1, int(self.cleaned_data["page"]))
        except ValueError:
            return 1

    @property
    def page_number(self) -> int:
        return self.cleaned_data.get("page", 1) if hasattr(self, "cleaned_data") else 1

    def filter_errors(self) -> list[str]:
        """The visitor-facing messages for the values that were dropped."""
        return [str(message) for field in self for message in field.errors]

    def clean_query(self) -> QueryDict:
        """The valid, non-empty filters as a query string, for page links that keep them."""
        query = QueryDict(mutable=True)
        for name in self.fields:
            if name != "page" and name in self.cleaned_data and self.data.get(name):
                query[name] = self.data[name]
        return query


def _fiscal_year_field() -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=_("Fiscal year"),
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={
            "invalid_choice": _("There is no fiscal year “%(value)s” here; showing all years.")
        },
    )


def _body_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("Government body"),
        required=False,
        error_messages={
            "invalid_choice": _(
                "No government body has the code “%(value)s”; showing all bodies. "
                "A body's code is its six-digit local government code, e.g. 410004."
            )
        },
    )


class _BodyChoiceMixin:
    """Loads the bodies once; ``clean_body`` returns the ``GovernmentBody`` or ``None``."""

    def _load_bodies(self) -> None:
        self.bodies = {body.code: body for body in GovernmentBody.objects.only("code", "name")}
        self.fields["body"].choices = [("", _("All bodies"))] + [
            (code, body.name) for code, body in self.bodies.items()
        ]

    def clean_body(self) -> GovernmentBody | None:
        return self.bodies.get(self.cleaned_data["body"])


def _year_choices(years) -> list[tuple]:
    return [("", _("All years"))] + [(year, fiscal_year_label(year)) for year in years]


def fiscal_year_choices(records: QuerySet) -> list[tuple]:
    """ "All years" and every fiscal year from the newest to the oldest of ``records``.

    Min and Max are two index look-ups; a DISTINCT over the column would read every row.
    """
    span = records.aggregate(first=Min("fiscal_year"), last=Max("fiscal_year"))
    years = range(span["last"], span["first"] - 1, -1) if span["first"] is not None else []
    return _year_choices(years)


class CatalogueFilterForm(_BodyChoiceMixin, PublicFilterForm):
    """Keyword, fiscal year, body (by code) and, once a body is chosen, its department."""

    q = forms.CharField(
        label=_("Keyword"),
        required=False,
        max_length=100,
        strip=True,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("e.g. 子育て")}),
        error_messages={"max_length": _("Keep the keywords under %(limit_value)d characters.")},
    )
    fiscal_year = _fiscal_year_field()
    body = _body_field()
    department = forms.TypedChoiceField(
        label=_("Department"),
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={
            "invalid_choice": _(
                "That department is not one of the chosen body's; showing all departments."
            )
        },
    )

    field_order = ["q", "fiscal_year", "body", "department"]

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["fiscal_year"].choices = fiscal_year_choices(Operation.objects.all())
        self._load_bodies()
        # The departments depend on the body: read its raw value now so the department's
        # choices are known before validation. Without a body there is nothing to choose.
        body = self.bodies.get(self.data.get("body", ""))
        if body is None:
            self.fields["department"].choices = [("", _("Choose a body first"))]
            self.fields["department"].widget.attrs["disabled"] = True
            self.fields["department"].error_messages["invalid_choice"] = _(
                "Choose a government body before a department; showing all departments."
            )
        else:
            departments = Department.objects.filter(body=body).values_list("pk", "name")
            self.fields["department"].choices = [("", _("All departments")), *departments]

    def catalogue_filters(self) -> dict:
        """Keyword arguments for ``selectors.operation_catalogue`` from the valid values."""
        data = self.cleaned_data
        return {
            "search": data.get("q") or "",
            "fiscal_year": data.get("fiscal_year"),
            "body": data.get("body"),
            "department_id": data.get("department"),
        }


class ProposalFilterForm(_BodyChoiceMixin, PublicFilterForm):
    fiscal_year = _fiscal_year_field()
    body = _body_field()
    decision = forms.ChoiceField(
        label=_("Decision"),
        required=False,
        choices=[("", _("Any decision")), *Proposal.Decision.choices],
        error_messages={"invalid_choice": _("Unknown decision “%(value)s”; showing all.")},
    )
    state = forms.ChoiceField(
        label=_("Step"),
        required=False,
        choices=[("", _("Any step")), *Proposal.State.choices],
        error_messages={"invalid_choice": _("Unknown step “%(value)s”; showing all.")},
    )

    field_order = ["fiscal_year", "body", "decision", "state"]

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["fiscal_year"].choices = fiscal_year_choices(Proposal.objects.all())
        self._load_bodies()

    def proposal_filters(self) -> dict:
        data = self.cleaned_data
        return {
            "fiscal_year": data.get("fiscal_year"),
            "body": data.get("body"),
            "decision": data.get("decision") or "",
            "state": data.get("state") or "",
        }


PROPOSER_KIND_CHOICES = [*Organization.Kind.choices, (ALL_KINDS, _("All kinds"))]


class AdoptionStatsForm(forms.Form):
    """Whose proposals to count; CSO by default, as the seed's own tables do."""

    proposer_kind = forms.ChoiceField(
        label=_("Proposer kind"),
        required=False,
        choices=PROPOSER_KIND_CHOICES,
        error_messages={
            "invalid_choice": _("Unknown proposer kind “%(value)s”; showing CSO proposals.")
        },
    )

    def clean_proposer_kind(self) -> str:
        return self.cleaned_data["proposer_kind"] or Organization.Kind.CSO


class AdoptionCsvForm(AdoptionStatsForm):
    """The download's parameters; unlike the page, a bad value is refused (400), not replaced."""

    level = forms.ChoiceField(
        label=_("Level"),
        required=False,
        choices=[("", _("Both")), *GovernmentBody.Kind.choices],
        error_messages={"invalid_choice": _("Unknown level “%(value)s”.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["proposer_kind"].error_messages["invalid_choice"] = _(
            "Unknown proposer kind “%(value)s”."
        )

    def clean_level(self) -> str | None:
        return self.cleaned_data["level"] or None

    def error_text(self) -> str:
        """Plain text for a 400: which parameter, and what is allowed."""
        lines = []
        for name, errors in self.errors.items():
            allowed = ", ".join(str(value) for value, _label in self.fields[name].choices if value)
            lines.append(
                _("%(name)s: %(errors)s Allowed values: %(allowed)s.")
                % {"name": name, "errors": " ".join(errors), "allowed": allowed}
            )
        return "\n".join(lines) + "\n"
