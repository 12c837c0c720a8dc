"""The fund's staff pages, the unfunded proposals for government and foundation staff, and the
match pools' pages.

The public list of open projects and each project's page are gift pages: ``donations.views``.

Staff (``/projects/staff/``): foundation staff see every project and the adopted proposals the
government did not budget; programme officers (``project.manage``) list them and move projects
through their states. Match pools (``/projects/staff/pools/``): foundation staff see every pool
and its money; programme and finance staff (``pool.manage``) create, top up, record the
sponsor's payments, change and end them through ``fund.matching``.

Sponsors (``/pools/``): the members of a pool's sponsor organisation (and foundation staff) read
its statement, on the page or as CSV (``pool.view_statement``); it names no donor.

Views stay thin: forms validate (``fund.forms``), the services decide and write the history
(``fund.services``, ``fund.matching``), selectors read (``fund.selectors``).
"""

import csv
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import get_allowed_or_404, require_area
from accounts.formatting import format_yen
from accounts.models import GovernmentBody
from accounts.policy import may, roles_of
from proposals.fiscal import JAPAN
from proposals.forms import PublicFilterForm
from proposals.models import Proposal
from proposals.templatetags.register_tags import fiscal_year_label

from . import selectors, services
from .forms import (
    PoolChangeForm,
    PoolEndForm,
    PoolFilterForm,
    PoolForm,
    PoolPaymentForm,
    PoolTopUpForm,
    ProjectForm,
    TransitionForm,
    japan_date,
    transition_forms,
)
from .ledger import EntryKind
from .models import MatchAllocation, MatchPool, MatchPoolEvent, Project, ProjectEvent

STAFF_PAGE_SIZE = 50
AREA = "foundation.area"
MANAGE = "project.manage"


# --- Staff pages -------------------------------------------------------------------------------


def _require_manage(request: HttpRequest) -> None:
    if not may(request.user, MANAGE):
        raise PermissionDenied(_("Only programme officers may list and manage projects."))


@require_area(AREA)
@require_safe
def staff_projects(request: HttpRequest) -> HttpResponse:
    projects = list(selectors.all_projects())
    progress = selectors.progress_for(projects)
    unlisted = Paginator(selectors.unlisted_fundable_proposals(), STAFF_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "fund/staff/project_list.html",
        {
            "projects": [(project, progress[project.pk]) for project in projects],
            "page_obj": unlisted,
            "page_range": unlisted.paginator.get_elided_page_range(unlisted.number),
            "may_manage": may(request.user, MANAGE),
        },
    )


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest, proposal_pk: int) -> HttpResponse:
    _require_manage(request)
    proposal = (
        Proposal.objects.select_related("body", "organization", "operation")
        .filter(pk=proposal_pk)
        .first()
    )
    if proposal is None:
        raise Http404
    form = ProjectForm(request.POST if request.method == "POST" else None, proposal=proposal)
    if request.method == "POST" and (project := form.submit(request.user)):
        messages.success(
            request,
            _("“%(title)s” is listed as a draft project. Open it when it is ready.")
            % {"title": project.title},
        )
        return redirect("fund:staff-project", project.pk)
    return render(request, "fund/staff/project_form.html", {"form": form, "proposal": proposal})


def _staff_project(pk: int) -> Project:
    project = selectors.public_project(pk)
    if project is None:
        raise Http404
    return project


HISTORY_LABELS = {
    "create": gettext_lazy("Listed as a project"),
    "open": gettext_lazy("Opened for gifts"),
    "close": gettext_lazy("Fundraising closed"),
    "grant": gettext_lazy("Granted"),
    "cancel": gettext_lazy("Cancelled"),
    "edit": gettext_lazy("Particulars changed"),
}
STATE_LABELS = dict(Project.State.choices)


def _history(project: Project) -> list[dict[str, Any]]:
    return [
        {
            "event": event,
            "label": HISTORY_LABELS.get(event.action, event.action),
            "before": STATE_LABELS.get(event.from_state, event.from_state),
            "after": STATE_LABELS.get(event.to_state, event.to_state),
            "actor": (event.actor.get_full_name() or event.actor.email) if event.actor else "",
        }
        for event in ProjectEvent.objects.filter(project=project).select_related("actor")
    ]


def _render_staff_project(
    request: HttpRequest,
    project: Project,
    *,
    edit_form: ProjectForm | None = None,
    bound: TransitionForm | None = None,
) -> HttpResponse:
    may_manage = may(request.user, MANAGE)
    forms = transition_forms(project) if may_manage else {}
    if bound is not None:
        forms[bound.action] = bound  # shown again with its errors
    editable = may_manage and project.state in (Project.State.DRAFT, Project.State.OPEN)
    if edit_form is None and editable:
        edit_form = ProjectForm(project=project)
    return render(
        request,
        "fund/staff/project_detail.html",
        {
            "project": project,
            "proposal": project.proposal,
            "progress": selectors.project_progress(project),
            "history": _history(project),
            "transition_forms": list(forms.items()),
            "edit_form": edit_form if editable else None,
            "may_manage": may_manage,
        },
    )


@require_area(AREA)
@require_safe
def staff_project(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_staff_project(request, _staff_project(pk))


TRANSITION_MESSAGES = {
    "open": gettext_lazy("The project is open for gifts."),
    "close": gettext_lazy("The fundraising is closed."),
    "cancel": gettext_lazy("The project is cancelled."),
}


@require_area(AREA)
@require_POST
def project_transition(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    _require_manage(request)
    project = _staff_project(pk)
    transition = services.TRANSITIONS.get(action)
    if transition is None or not transition.by_hand:  # "grant" comes from the grants work
        raise Http404
    form = TransitionForm(request.POST, project=project, action=action)
    if form.submit(request.user):
        messages.success(request, TRANSITION_MESSAGES[action])
        return redirect("fund:staff-project", pk)
    return _render_staff_project(request, _staff_project(pk), bound=form)


@require_area(AREA)
@require_POST
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manage(request)
    project = _staff_project(pk)
    form = ProjectForm(request.POST, project=project)
    if form.submit(request.user):
        messages.success(request, _("The project is saved."))
        return redirect("fund:staff-project", pk)
    if project.state not in (Project.State.DRAFT, Project.State.OPEN):
        # No edit form on the page any more: say why on top of it.
        messages.error(request, " ".join(str(e) for e in form.non_field_errors()))
        return redirect("fund:staff-project", pk)
    return _render_staff_project(request, _staff_project(pk), edit_form=form)


# --- Unfunded proposals (government staff; foundation staff and the site admin) ----------------

UNFUNDED_PAGE_SIZE = 50


def unfunded_scope(user: Any) -> int | bool:
    """Whose unfunded proposals the user may see: True for every body (foundation staff, the
    site admin), a body id for a government officer (their own body only), False for no one."""
    if may(user, "foundation.area"):
        return True
    roles = roles_of(user)
    if roles.is_government_staff:
        return roles.body_id
    return False


def require_unfunded_access(view):
    """Signed in, then government staff, foundation staff or the site admin; otherwise a 403."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if unfunded_scope(request.user) is False:
            raise PermissionDenied(_("This part of the site is not open to your account."))
        return view(request, *args, **kwargs)

    return wrapped


class UnfundedFilterForm(PublicFilterForm):
    """Fiscal year, and the body for those who see every body. Bad values are dropped."""

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
        label=gettext_lazy("Fiscal year"),
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={
            "invalid_choice": gettext_lazy(
                "There is no fiscal year “%(value)s” here; showing all years."
            )
        },
    )

    field_order = ["body", "fiscal_year"]

    def __init__(self, data: Any = None, *, all_bodies: bool, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        if all_bodies:
            self.bodies = {b.code: b for b in GovernmentBody.objects.only("code", "name")}
            self.fields["body"].choices = [("", _("All bodies"))] + [
                (code, b.name) for code, b in self.bodies.items()
            ]
        else:
            self.bodies = {}
            del self.fields["body"]
        years = (
            Proposal.objects.filter(
                decision__in=Proposal.ADOPTED_DECISIONS,
                budget_provision=Proposal.BudgetProvision.NO,
            )
            .values_list("fiscal_year", flat=True)
            .distinct()
            .order_by("-fiscal_year")
        )
        self.fields["fiscal_year"].choices = [("", _("All years"))] + [
            (year, fiscal_year_label(year)) for year in years
        ]

    def clean_body(self) -> GovernmentBody | None:
        return self.bodies.get(self.cleaned_data["body"])


@require_unfunded_access
@require_safe
def unfunded(request: HttpRequest) -> HttpResponse:
    scope = unfunded_scope(request.user)
    all_bodies = scope is True
    form = UnfundedFilterForm(request.GET, all_bodies=all_bodies)
    form.is_valid()  # invalid filters are reported and left out
    data = form.cleaned_data
    body = data.get("body") if all_bodies else scope
    rows = selectors.unfunded_proposals(body=body, fiscal_year=data.get("fiscal_year"))
    page = Paginator(rows, UNFUNDED_PAGE_SIZE).get_page(form.page_number)
    own_body = None if all_bodies else GovernmentBody.objects.filter(pk=scope).first()
    return render(
        request,
        "fund/unfunded.html",
        {
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
            "all_bodies": all_bodies,
            "own_body": own_body,
        },
    )


# --- Match pools: the foundation's staff pages -------------------------------------------------

POOL_MANAGE = "pool.manage"
VIEW_STATEMENT = "pool.view_statement"
RECENT_MATCHES = 20
PoolState = MatchPool.State


def _require_pool_manage(request: HttpRequest) -> None:
    if not may(request.user, POOL_MANAGE):
        raise PermissionDenied(_("Only foundation programme or finance staff may manage pools."))


@dataclass(frozen=True)
class PoolRow:
    """A pool on a list: its money and where its window stands (in Japan time)."""

    pool: MatchPool
    figures: selectors.PoolFigures
    started: bool
    days_left: int | None  # None once the window has passed (or the pool has ended)


def _pool_rows(pools: list[MatchPool]) -> list[PoolRow]:
    figures = selectors.pool_figures(pools)  # one query for every pool
    now = timezone.now()
    today = japan_date(now)
    return [
        PoolRow(
            pool=pool,
            figures=figures[pool.pk],
            started=pool.starts_at <= now,
            days_left=(japan_date(pool.ends_at) - today).days
            if pool.state == PoolState.ACTIVE and pool.ends_at > now
            else None,
        )
        for pool in pools
    ]


@require_area(AREA)
@require_safe
def staff_pools(request: HttpRequest) -> HttpResponse:
    form = PoolFilterForm(request.GET)
    form.is_valid()  # a bad state is reported and left out
    pools = list(selectors.all_pools(state=form.cleaned_data.get("state") or ""))
    return render(
        request,
        "fund/staff/pool_list.html",
        {"form": form, "rows": _pool_rows(pools), "may_manage": may(request.user, POOL_MANAGE)},
    )


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def pool_create(request: HttpRequest) -> HttpResponse:
    _require_pool_manage(request)
    form = PoolForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and (pool := form.submit(request.user)):
        messages.success(
            request,
            _("The pool “%(name)s” is pledged and matches gifts from its first day.")
            % {"name": pool.name},
        )
        return redirect("fund:staff-pool", pool.pk)
    return render(request, "fund/staff/pool_form.html", {"form": form})


def _pool(pk: int) -> MatchPool:
    pool = MatchPool.objects.select_related("sponsor", "body", "created_by").filter(pk=pk).first()
    if pool is None:
        raise Http404
    return pool


def _pool_history(pool: MatchPool) -> list[dict[str, Any]]:
    """Rows for ``_history_table.html``; its state column shows the amount (and reference)."""
    rows = []
    for event in pool.events.select_related("actor"):
        amount = format_yen(event.amount) if event.amount is not None else ""
        rows.append(
            {
                "event": event,
                "label": event.get_action_display(),
                "before": "",
                "after": " · ".join(part for part in (amount, event.reference) if part),
                "actor": (event.actor.get_full_name() or event.actor.email) if event.actor else "",
            }
        )
    return rows


def _recent_matches(pool: MatchPool) -> list[dict[str, Any]]:
    """The latest matches: date, project, gift and match. Values only: no donor reaches the page."""
    return list(
        MatchAllocation.objects.filter(pool=pool)
        .annotate(released=Coalesce(Sum("releases__amount"), 0))
        .order_by("-created_at", "-pk")
        .values(
            "pk", "created_at", "project_id", "project__title", "gift_amount", "amount", "released"
        )[:RECENT_MATCHES]
    )


@dataclass(frozen=True)
class Leftover:
    """What ending the pool now does with the money left (as ``matching._post_leftover``)."""

    left: int
    forgiven: int  # never paid: the sponsor no longer owes it
    paid_back: int  # paid: back to the sponsor, or to the general fund
    still_owed: int  # matched but not paid: the sponsor owes it after the end too
    to_general_fund: bool


def _leftover(pool: MatchPool, figures: selectors.PoolFigures) -> Leftover:
    left = max(figures.left, 0)
    forgiven = min(left, figures.unpaid)
    return Leftover(
        left=left,
        forgiven=forgiven,
        paid_back=left - forgiven,
        still_owed=figures.unpaid - forgiven,
        to_general_fund=pool.leftover == MatchPool.Leftover.GENERAL_FUND,
    )


POOL_FORMS: dict[str, type[PoolTopUpForm | PoolPaymentForm | PoolChangeForm]] = {
    "top-up": PoolTopUpForm,
    "payment": PoolPaymentForm,
    "change": PoolChangeForm,
}


def _render_staff_pool(
    request: HttpRequest, pool: MatchPool, *, action: str = "", bound: Any = None
) -> HttpResponse:
    row = _pool_rows([pool])[0]
    figures = row.figures
    may_manage = may(request.user, POOL_MANAGE)
    active = pool.state == PoolState.ACTIVE
    forms: dict[str, Any] = {}
    if may_manage:
        if active:
            forms["top-up"] = PoolTopUpForm(pool=pool)
            forms["change"] = PoolChangeForm(pool=pool)
        if figures.unpaid > 0:
            forms["payment"] = PoolPaymentForm(pool=pool)
    if bound is not None:
        forms[action] = bound  # shown again with its errors
    return render(
        request,
        "fund/staff/pool_detail.html",
        {
            "pool": pool,
            "row": row,
            "figures": figures,
            "matches_count": MatchAllocation.objects.filter(pool=pool).count(),
            "history": _pool_history(pool),
            "matches": _recent_matches(pool),
            "projects": list(pool.projects.order_by("pk")) if pool.scope == "projects" else [],
            "may_manage": may_manage,
            "top_up_form": forms.get("top-up"),
            "payment_form": forms.get("payment"),
            "change_form": forms.get("change"),
            "leftover": _leftover(pool, figures),
        },
    )


@require_area(AREA)
@require_safe
def staff_pool(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_staff_pool(request, _pool(pk))


POOL_MESSAGES = {
    "top-up": gettext_lazy("The pledge is raised by %(amount)s."),
    "payment": gettext_lazy("The sponsor's payment of %(amount)s is recorded."),
    "change": gettext_lazy("The pool is saved."),
}


@require_area(AREA)
@require_POST
def pool_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Top up, record a payment or change the pool (POST only); errors show on the page."""
    _require_pool_manage(request)
    form_class = POOL_FORMS.get(action)
    if form_class is None:
        raise Http404
    pool = _pool(pk)
    form = form_class(request.POST, pool=pool)
    if form.submit(request.user):
        amount = form.cleaned_data.get("amount")
        messages.success(request, POOL_MESSAGES[action] % {"amount": format_yen(amount)})
        return redirect("fund:staff-pool", pk)
    return _render_staff_pool(request, _pool(pk), action=action, bound=form)


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def pool_end(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what ending the pool does with the money left; POST: end it."""
    _require_pool_manage(request)
    pool = _pool(pk)
    if pool.state != PoolState.ACTIVE:
        messages.error(request, _("This pool has already ended."))
        return redirect("fund:staff-pool", pk)
    figures = selectors.pool_figures([pool])[pool.pk]
    form = PoolEndForm(request.POST if request.method == "POST" else None, pool=pool)
    if request.method == "POST":
        if form.submit(request.user):
            ended = pool.events.filter(action=MatchPoolEvent.Action.ENDED).last()
            left = ended.amount if ended and ended.amount else 0
            messages.success(
                request,
                _("The pool has ended; %(left)s was left in it.") % {"left": format_yen(left)},
            )
            return redirect("fund:staff-pool", pk)
        messages.error(request, " ".join(str(e) for e in form.non_field_errors()))
        return redirect("fund:staff-pool", pk)
    return render(
        request,
        "fund/staff/pool_end.html",
        {"pool": pool, "figures": figures, "leftover": _leftover(pool, figures), "form": form},
    )


# --- Match pools: the sponsor's statement ------------------------------------------------------


def _statement_pools(user: Any) -> list[MatchPool]:
    """The pools whose statement the user may read: every pool for foundation staff and the
    site admin, the pools of their own organisations for everyone else."""
    roles = roles_of(user)
    pools = selectors.all_pools()
    if not (roles.site_admin or roles.is_foundation_staff):
        pools = pools.filter(sponsor_id__in=list(roles.memberships))
    return [
        pool
        for pool in pools.order_by("sponsor__name", "-starts_at", "pk")
        if may(user, VIEW_STATEMENT, pool)
    ]


@login_required
@require_safe
def sponsor_pools(request: HttpRequest) -> HttpResponse:
    response = render(
        request, "fund/pools/pool_list.html", {"rows": _pool_rows(_statement_pools(request.user))}
    )
    response["Cache-Control"] = "private, no-store"
    return response


STATEMENT_LABELS = {
    EntryKind.POOL_PLEDGED: gettext_lazy("Pledge"),
    EntryKind.PLEDGE_PAID: gettext_lazy("Payment received"),
    EntryKind.MATCH_ALLOCATED: gettext_lazy("Gift matched"),
    EntryKind.MATCH_RELEASED: gettext_lazy("Match given back (refund)"),
    EntryKind.POOL_ENDED: gettext_lazy("Pool ended"),
}


@dataclass(frozen=True)
class StatementRow:
    line: selectors.StatementLine
    label: str
    left: int  # what the pool had left to match after this line
    passed_on: bool = False  # a match given back after the end goes straight on


def _statement_rows(pool: MatchPool) -> list[StatementRow]:
    """The statement's lines with a running "left": pledges add, matches take, releases give
    back, the end empties it; a payment changes what is owed, not what is left."""
    rows = []
    left = 0
    ended = False
    for line in selectors.pool_statement(pool):
        passed_on = False
        if line.kind == EntryKind.POOL_PLEDGED:
            left += line.amount
        elif line.kind == EntryKind.MATCH_ALLOCATED:
            left -= line.amount
        elif line.kind == EntryKind.MATCH_RELEASED:
            passed_on = ended
            if not ended:
                left += line.amount
        elif line.kind == EntryKind.POOL_ENDED:
            left -= line.amount
            ended = True
        rows.append(
            StatementRow(
                line=line,
                label=str(STATEMENT_LABELS.get(line.kind, line.kind)),
                left=left,
                passed_on=passed_on,
            )
        )
    return rows


def _statement_pool(request: HttpRequest, pk: int) -> MatchPool:
    pool = MatchPool.objects.select_related("sponsor").filter(pk=pk).first()
    return get_allowed_or_404(request.user, VIEW_STATEMENT, pool)


@login_required
@require_safe
def pool_statement(request: HttpRequest, pk: int) -> HttpResponse:
    pool = _statement_pool(request, pk)
    rows = _statement_rows(pool)
    response = render(
        request,
        "fund/pools/statement.html",
        {
            "pool": pool,
            "row": _pool_rows([pool])[0],
            "lines": rows,
            "matches_count": sum(r.line.kind == EntryKind.MATCH_ALLOCATED for r in rows),
            "is_staff": may(request.user, AREA),
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _csv_text(value: str) -> str:
    """Text as a spreadsheet shows it, never as a formula (a title starting with "=")."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@login_required
@require_safe
def pool_statement_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The statement as CSV: UTF-8 with a BOM (so Excel in Japan reads it), whole yen, ISO dates
    in Japan time."""
    pool = _statement_pool(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pool-{pool.pk}-statement.csv"'
    response["Cache-Control"] = "private, no-store"
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            _("Date"),
            _("What"),
            _("Project"),
            _("Gift (yen)"),
            _("Amount (yen)"),
            _("Left to match (yen)"),
            _("Reference"),
        ]
    )
    for row in _statement_rows(pool):
        line = row.line
        writer.writerow(
            [
                line.at.astimezone(JAPAN).isoformat(timespec="seconds"),
                row.label,
                _csv_text(line.project.title) if line.project else "",
                line.gift_amount if line.gift_amount is not None else "",
                line.amount,
                row.left,
                _csv_text(line.reference),
            ]
        )
    return response
