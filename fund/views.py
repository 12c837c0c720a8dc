"""The fund's staff pages, and the unfunded proposals for government and foundation staff.

The public list of open projects and each project's page are gift pages: ``donations.views``.

Staff (``/projects/staff/``): foundation staff see every project and the adopted proposals the
government did not budget; programme officers (``project.manage``) list them and move projects
through their states. Views stay thin: forms validate (``fund.forms``), the services decide and
write the history (``fund.services``), selectors read (``fund.selectors``).
"""

from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import require_area
from accounts.models import GovernmentBody
from accounts.policy import may, roles_of
from proposals.forms import PublicFilterForm
from proposals.models import Proposal
from proposals.templatetags.register_tags import fiscal_year_label

from . import selectors, services
from .forms import ProjectForm, TransitionForm, transition_forms
from .models import Project, ProjectEvent

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
