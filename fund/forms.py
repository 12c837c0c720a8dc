"""Forms of the fund's pages: the public list's filters, and the staff's project and pool forms.

Staff forms mix in ``ServiceFormMixin``: ``submit(actor)`` validates, calls ``fund.services`` and
turns its ``ValidationError`` or ``PermissionDenied`` into form errors, so a refused change is
shown on the page and nothing is written.
"""

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import GovernmentBody, Organization, User
from proposals.fiscal import JAPAN
from proposals.forms import PublicFilterForm
from proposals.models import Proposal
from proposals.officer_forms import (
    DateInput,
    ServiceFormMixin,
    YenField,
    fiscal_year_field,
    textarea,
)
from proposals.templatetags.register_tags import fiscal_year_label

from . import matching, selectors, services
from .models import DEFAULT_FEE_RATE_BP, MatchPool, Project

# A new project's (and pool's) window, as first offered: from today for this many days.
DEFAULT_WINDOW_DAYS = 60
# A pool's priority is a PositiveSmallIntegerField.
PRIORITY_MAX = 32767


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


# --- Staff: match pools ----------------------------------------------------------------------


class PoolFilterForm(PublicFilterForm):
    """The pool list's filter: the state. A bad value is dropped and reported."""

    state = forms.ChoiceField(
        label=gettext_lazy("State"),
        required=False,
        choices=[("", gettext_lazy("Every state")), *MatchPool.State.choices],
        error_messages={
            "invalid_choice": gettext_lazy("Unknown state “%(value)s”; showing every state.")
        },
    )


def _add_rule_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """``validate_rules``' errors on the form, except on fields already refused as typed (their
    own message says more than the rule's)."""
    for name, messages in error.message_dict.items():
        field = name if name in form.fields else None
        if field is None or field not in form.errors:
            form.add_error(field, messages)


class PoolForm(ServiceFormMixin, forms.Form):
    """A new match pool: the sponsor's pledge and the rules that decide each match.

    The rules are checked by ``fund.matching.validate_rules`` (the one place, shared with the
    API and the service); the window is whole days in Japan time, as for projects.
    """

    sponsor = forms.ModelChoiceField(
        label=gettext_lazy("Sponsor"),
        queryset=Organization.objects.order_by("name"),
        empty_label=gettext_lazy("Choose the sponsor organisation"),
    )
    name = forms.CharField(
        label=gettext_lazy("Public name"),
        max_length=200,
        help_text=gettext_lazy("Shown on project pages: “gifts matched 1:1 by …”."),
    )
    pledged = YenField(label=gettext_lazy("Pledged (yen)"))
    ratio_gift = forms.IntegerField(
        label=gettext_lazy("Ratio: yen given"),
        initial=1,
        help_text=gettext_lazy("1 given : 1 matched adds ¥1 per ¥1; 1 : 2 adds ¥2 per ¥1."),
    )
    ratio_match = forms.IntegerField(label=gettext_lazy("Ratio: yen matched"), initial=1)
    cap_per_gift = YenField(
        label=gettext_lazy("Most matched per gift (yen)"),
        required=False,
        help_text=gettext_lazy("Leave empty for no cap."),
    )
    cap_per_donor = YenField(
        label=gettext_lazy("Most matched per donor (yen)"),
        required=False,
        help_text=gettext_lazy("Counted by account and by email address. Leave empty for no cap."),
    )
    scope = forms.ChoiceField(
        label=gettext_lazy("Eligible projects"),
        choices=MatchPool.Scope.choices,
        initial=MatchPool.Scope.ALL,
        widget=forms.RadioSelect,
    )
    projects = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Chosen projects"),
        queryset=Project.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("For “Chosen projects” only. Cancelled projects are not listed."),
    )
    body = forms.ModelChoiceField(
        label=gettext_lazy("Government body"),
        queryset=GovernmentBody.objects.order_by("code"),
        required=False,
        empty_label=gettext_lazy("— none —"),
        help_text=gettext_lazy("For projects from one government body's proposals only."),
    )
    fiscal_year = fiscal_year_field(
        gettext_lazy("Fiscal year of the proposals"),
        required=False,
        help_text=gettext_lazy(
            "For projects from one fiscal year's proposals only: its starting year, e.g. 2026."
        ),
    )
    starts_at = forms.DateField(
        label=gettext_lazy("Matching starts on"),
        widget=DateInput(),
        help_text=gettext_lazy("From 0:00, Japan time."),
    )
    ends_at = forms.DateField(
        label=gettext_lazy("Matching ends on"),
        widget=DateInput(),
        help_text=gettext_lazy("Until 23:59, Japan time."),
    )
    priority = forms.IntegerField(
        label=gettext_lazy("Priority"),
        initial=0,
        min_value=0,
        max_value=PRIORITY_MAX,
        help_text=gettext_lazy("Higher numbers match first."),
    )
    leftover = forms.ChoiceField(
        label=gettext_lazy("Money left at the end"),
        choices=MatchPool.Leftover.choices,
        initial=MatchPool.Leftover.SPONSOR,
        widget=forms.RadioSelect,
    )
    sponsor_consents_to_general_fund = forms.BooleanField(
        label=gettext_lazy(
            "The sponsor agreed in writing that what is left goes to the general fund"
        ),
        required=False,
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        today = timezone.localdate(timezone=JAPAN)
        kwargs.setdefault(
            "initial",
            {"starts_at": today, "ends_at": today + dt.timedelta(days=DEFAULT_WINDOW_DAYS)},
        )
        super().__init__(data, **kwargs)
        self.fields["projects"].queryset = (
            Project.objects.exclude(state=Project.State.CANCELLED)
            .select_related("proposal")
            .order_by("-created_at", "-pk")
        )

    def _window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        data = self.cleaned_data
        starts, ends = data.get("starts_at"), data.get("ends_at")
        return (start_of_day(starts) if starts else None, end_of_day(ends) if ends else None)

    def _rules(self) -> dict[str, Any]:
        data = self.cleaned_data
        starts_at, ends_at = self._window()
        scope = data.get("scope", "")
        return {
            "ratio_gift": data.get("ratio_gift"),
            "ratio_match": data.get("ratio_match"),
            "cap_per_gift": data.get("cap_per_gift"),
            "cap_per_donor": data.get("cap_per_donor"),
            "starts_at": starts_at,
            "ends_at": ends_at,
            "scope": scope,
            "projects": list(data.get("projects") or ()),
            "body": data.get("body"),
            "fiscal_year": data.get("fiscal_year"),
            "leftover": data.get("leftover", ""),
            "sponsor_consents_to_general_fund": data.get("sponsor_consents_to_general_fund", False),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            matching.validate_rules(**self._rules())
        except ValidationError as error:
            _add_rule_errors(self, error)
        return data

    def perform(self, actor: User) -> MatchPool:
        data = self.cleaned_data
        return matching.pool_create(
            actor=actor,
            sponsor=data["sponsor"],
            name=data["name"],
            pledged=data["pledged"],
            priority=data["priority"],
            **self._rules(),
        )


class PoolTopUpForm(ServiceFormMixin, forms.Form):
    """The sponsor pledges more to a running pool."""

    amount = YenField(label=gettext_lazy("Added to the pledge (yen)"))
    note = forms.CharField(
        label=gettext_lazy("Note for the history (optional)"),
        required=False,
        max_length=1000,
        widget=textarea(2),
    )

    def __init__(self, data: Any = None, *, pool: MatchPool, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "top_up")
        super().__init__(data, **kwargs)
        self.pool = pool

    def perform(self, actor: User) -> Any:
        data = self.cleaned_data
        return matching.pool_top_up(
            pool=self.pool, amount=data["amount"], actor=actor, note=data["note"]
        )


class PoolPaymentForm(ServiceFormMixin, forms.Form):
    """A bank transfer from the sponsor paying (part of) the pledge."""

    amount = YenField(label=gettext_lazy("Amount received (yen)"))
    reference = forms.CharField(
        label=gettext_lazy("Bank transfer reference"),
        max_length=100,
        help_text=gettext_lazy("A payment is recorded once per reference."),
    )
    note = forms.CharField(
        label=gettext_lazy("Note for the history (optional)"),
        required=False,
        max_length=1000,
        widget=textarea(2),
    )

    def __init__(self, data: Any = None, *, pool: MatchPool, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "payment")
        super().__init__(data, **kwargs)
        self.pool = pool

    def perform(self, actor: User) -> Any:
        data = self.cleaned_data
        return matching.pool_record_payment(
            pool=self.pool,
            amount=data["amount"],
            reference=data["reference"],
            actor=actor,
            note=data["note"],
        )


class PoolChangeForm(ServiceFormMixin, forms.Form):
    """What may change on a running pool: its public name, priority and last day."""

    name = forms.CharField(label=gettext_lazy("Public name"), max_length=200)
    priority = forms.IntegerField(
        label=gettext_lazy("Priority"),
        min_value=0,
        max_value=PRIORITY_MAX,
        help_text=gettext_lazy("Higher numbers match first."),
    )
    ends_at = forms.DateField(
        label=gettext_lazy("Matching ends on"),
        widget=DateInput(),
        help_text=gettext_lazy("Until 23:59, Japan time."),
    )

    def __init__(self, data: Any = None, *, pool: MatchPool, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "change")
        kwargs.setdefault(
            "initial",
            {"name": pool.name, "priority": pool.priority, "ends_at": japan_date(pool.ends_at)},
        )
        super().__init__(data, **kwargs)
        self.pool = pool

    def perform(self, actor: User) -> MatchPool:
        data = self.cleaned_data
        ends_at = self.pool.ends_at
        # The end's time is kept as it is when only the other fields changed.
        if japan_date(ends_at) != data["ends_at"]:
            ends_at = end_of_day(data["ends_at"])
        return matching.pool_update(
            pool=self.pool,
            actor=actor,
            name=data["name"],
            priority=data["priority"],
            ends_at=ends_at,
        )


class PoolEndForm(ServiceFormMixin, forms.Form):
    """Ending a pool: nothing to fill in; the page says where the money left goes."""

    def __init__(self, data: Any = None, *, pool: MatchPool, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.pool = pool

    def perform(self, actor: User) -> MatchPool:
        return matching.pool_end(pool=self.pool, actor=actor)
