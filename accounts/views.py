"""A person's own pages: My page, API token, data download, closing the account, privacy."""

import json

from allauth.account.models import EmailAddress
from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.authtoken.models import Token

from . import services
from .forms import CloseAccountForm
from .models import FoundationRole, GovernmentStaff
from .policy import has_mfa, may, requires_mfa, roles_of

# Where people write to about their personal data until the operator configures its own desk.
DEFAULT_PRIVACY_CONTACT = "privacy@civicfund.example.jp"


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Where a signed-in person lands: their roles, the areas open to them, their settings."""
    user = request.user
    context = {
        "roles": roles_of(user),
        "government_staff": GovernmentStaff.objects.filter(user=user)
        .select_related("body")
        .first(),
        "foundation_roles": FoundationRole.objects.filter(user=user).order_by("role"),
        "memberships": user.memberships.select_related("organization"),
        "may_government": may(user, "government.area"),
        "may_cso": may(user, "cso.area"),
        "email_verified": EmailAddress.objects.filter(
            user=user, email__iexact=user.email, verified=True
        ).exists(),
        "mfa_required": requires_mfa(user),
        "mfa_active": has_mfa(user),
        "token": Token.objects.filter(user=user).first(),
    }
    return render(request, "accounts/dashboard.html", context)


@never_cache
@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Create (or replace) the API token and show its key, this once."""
    try:
        key = services.api_token_create(user=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
        return redirect("accounts:dashboard")
    return render(request, "accounts/token_created.html", {"key": key})


@login_required
@require_POST
def token_revoke(request: HttpRequest) -> HttpResponse:
    if services.api_token_revoke(user=request.user):
        messages.success(request, _("Your API token is revoked: scripts using it stop working."))
    return redirect("accounts:dashboard")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def data_export(request: HttpRequest) -> HttpResponse:
    """The person's data as a JSON file to download."""
    data = services.personal_data_export(user=request.user)
    body = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    filename = f"civic-fund-my-data-{timezone.localdate():%Y%m%d}.json"
    return HttpResponse(
        body,
        content_type="application/json; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def close(request: HttpRequest) -> HttpResponse:
    """Close the account after the password is confirmed; the person is signed out."""
    form = CloseAccountForm(request.POST or None, user=request.user)
    if request.method == "POST":
        # The password check is a guessing target like the sign-in page: same limit as allauth's
        # re-authentication.
        if not ratelimit.consume(request, action="reauthenticate", user=request.user):
            form.add_error(None, _("Too many attempts. Try again in a minute."))
        elif form.is_valid():
            try:
                services.account_close(user=request.user)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                logout(request)
                return redirect("accounts:closed")
    return render(request, "accounts/close.html", {"form": form})


def closed(request: HttpRequest) -> HttpResponse:
    """Shown once the account is closed (the person is signed out by then)."""
    return render(request, "accounts/close.html", {"closed": True})


def privacy(request: HttpRequest) -> HttpResponse:
    """The privacy notice: purposes of use and the person's rights under Japan's APPI."""
    contact = getattr(settings, "PRIVACY_CONTACT_EMAIL", "") or DEFAULT_PRIVACY_CONTACT
    return render(request, "accounts/privacy.html", {"contact_email": contact})
