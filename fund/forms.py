"""Forms of the fund's pages: the public list's filters, and the staff's project forms.

Staff forms mix in ``ServiceFormMixin``: ``submit(actor)`` validates, calls ``fund.services`` and
turns its ``ValidationError`` or ``PermissionDenied`` into form errors, so a refused change is
shown on the page and nothing is written.
"""

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import GovernmentBody, User
from proposals.fiscal import JAPAN
from proposals.forms import PublicFilterForm
from proposals.models import Proposal
from proposals.officer_forms import DateInput, ServiceFormMixin, YenField, textarea
from proposals.templatetags.register_tags import fiscal_year_label

from . import selectors, services
from .models import DEFAULT_FEE_RATE_BP, Project

# A new project's window, as first offered: from today for this many days.
DEFAULT_WINDOW_DAYS = 60


def start_of_day(day: dt.date) -> dt.datetime:
    """00:00:00 in Japan on ``day``: when a window that opens that day opens."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=JAPAN)


def end_of_day(day: dt.date) -> dt.datetime:
    """23:59:59 in Japan on ``day``: when a window that closes that day closes."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=JAPAN)


def japan_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(JAPAN).date()


# --- The public list -------------------------------------------------------------------------


class ProjectFilterForm(PublicFilterForm):
    """Body (by its code), the proposal's fiscal year, and the order."""

    body = forms.ChoiceField(
        label=gettext_lazy("Government body"),
        required=False,
        error_messages={
            "invalid_choice": gettext_lazy(
                "No government body has the code “%(value)s”; showing all bodies."
            )
        },
    )
    fiscal_year = forms.TypedChoiceField(
        label=gettext_lazy("Fiscal year of the proposal"),
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={
            "invalid_choice": gettext_lazy(
                "No open project is from fiscal year “%(value)s”; showing all years."
            )
        },
    )
    sort = forms.ChoiceField(
        label=gettext_lazy("Order"),
        required=False,
        choices=[
            ("ending", gettext_lazy("Ending soon")),
            ("needed", gettext_lazy("Most needed")),
        ],
        error_messages={
            "invalid_choice": gettext_lazy("Unknown order “%(value)s”; showing ending soon first.")
        },
    )

    field_order = ["body", "fiscal_year", "sort"]

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.bodies = {body.code: body for body in GovernmentBody.objects.only("code", "name")}
        self.fields["body"].choices = [("", _("All bodies"))] + [
            (code, body.name) for code, body in self.bodies.items()
        ]
        self.fields["fiscal_year"].choices = [("", _("All years"))] + [
            (year, fiscal_year_label(year)) for year in selectors.fiscal_years_of_open_projects()
        ]

    def clean_body(self) -> GovernmentBody | None:
        return self.bodies.get(self.cleaned_data["body"])

    def project_filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "body": data.get("body"),
            "fiscal_year": data.get("fiscal_year"),
            "sort": data.get("sort") or "ending",
        }


# --- Staff: listing and editing --------------------------------------------------------------


class ProjectForm(ServiceFormMixin, forms.Form):
    """A project's public texts, goal, window and terms: to list a proposal, or to edit."""

    title = forms.CharField(label=gettext_lazy("Public title"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        widget=textarea(8),
        help_text=gettext_lazy("Shown on the public project page: what the gifts will pay for."),
    )
    goal_yen = YenField(label=gettext_lazy("Goal (yen)"), min_value=1)
    opens_at = forms.DateField(
        label=gettext_lazy("Fundraising opens on"),
        widget=DateInput(),
        help_text=gettext_lazy("From 0:00, Japan time."),
    )
    closes_at = forms.DateField(
        label=gettext_lazy("Fundraising closes on"),
        widget=DateInput(),
        help_text=gettext_lazy("Until 23:59, Japan time."),
    )
    fee_rate_bp = forms.IntegerField(
        label=gettext_lazy("Fee rate (basis points)"),
        min_value=0,
        max_value=services.MAX_FEE_RATE_BP,
        help_text=gettext_lazy("1,500 = 15%. Kept by the foundation when the grant is made."),
    )
    close_at_goal = forms.BooleanField(
        label=gettext_lazy("Close the fundraising when the goal is reached"), required=False
    )

    def __init__(
        self,
        data: Any = None,
        *,
        proposal: Proposal | None = None,
        project: Project | None = None,
        **kwargs: Any,
    ) -> None:
        """Either ``proposal`` (list it: prefilled from it) or ``project`` (edit it)."""
        if (proposal is None) == (project is None):
            raise ValueError("Give a proposal to list or a project to edit")
        self.proposal = proposal
        self.project = project
        kwargs.setdefault("initial", self._initial())
        super().__init__(data, **kwargs)
        if project is not None and project.state != Project.State.DRAFT:
            self.fields["fee_rate_bp"].disabled = True
            self.fields["fee_rate_bp"].help_text = _(
                "The fee rate can be changed only before the project opens."
            )

    def _initial(self) -> dict[str, Any]:
        if self.project is not None:
            p = self.project
            return {
                "title": p.title,
                "description": p.description,
                "goal_yen": p.goal_yen,
                "opens_at": japan_date(p.opens_at),
                "closes_at": japan_date(p.closes_at),
                "fee_rate_bp": p.fee_rate_bp,
                "close_at_goal": p.close_at_goal,
            }
        today = timezone.localdate(timezone=JAPAN)
        proposal = self.proposal
        return {
            "title": proposal.title[:200],
            "description": proposal.summary,
            "opens_at": today,
            "closes_at": today + dt.timedelta(days=DEFAULT_WINDOW_DAYS),
            "fee_rate_bp": DEFAULT_FEE_RATE_BP,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        opens, closes = data.get("opens_at"), data.get("closes_at")
        if opens and closes and closes < opens:
            self.add_error("closes_at", _("The fundraising must close after it opens."))
        return data

    def _terms(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "title": data["title"],
            "description": data["description"],
            "goal_yen": data["goal_yen"],
            "opens_at": start_of_day(data["opens_at"]),
            "closes_at": end_of_day(data["closes_at"]),
            "fee_rate_bp": data["fee_rate_bp"],
            "close_at_goal": data["close_at_goal"],
        }

    def perform(self, actor: User) -> Project:
        terms = self._terms()
        if self.project is None:
            return services.project_create(proposal=self.proposal, actor=actor, **terms)
        # The window's times are kept as they are when only the other fields changed.
        for name in ("opens_at", "closes_at"):
            if japan_date(getattr(self.project, name)) == self.cleaned_data[name]:
                terms[name] = getattr(self.project, name)
        return services.project_update(project=self.project, actor=actor, **terms)


class TransitionForm(ServiceFormMixin, forms.Form):
    """One of the project's transitions (a button), with an optional note for the history."""

    note = forms.CharField(
        label=gettext_lazy("Note for the history (optional)"),
        required=False,
        max_length=1000,
        widget=textarea(2),
    )

    def __init__(self, data: Any = None, *, project: Project, action: str, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", action)
        super().__init__(data, **kwargs)
        self.project = project
        self.action = action
        self.title = services.TRANSITIONS[action].label

    def perform(self, actor: User) -> Project:
        return services.project_transition(
            project=self.project,
            action=self.action,
            actor=actor,
            note=self.cleaned_data.get("note", ""),
        )


def transition_forms(project: Project) -> dict[str, TransitionForm]:
    """An unbound form for each transition a programme officer may take by hand now."""
    return {
        action: TransitionForm(project=project, action=action)
        for action in services.allowed_actions(project, by_hand_only=True)
    }
