"""How pages and API views apply ``accounts.policy``: sign-in, two-factor for staff, refusals."""

from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from rest_framework.permissions import BasePermission

from .policy import has_mfa, may, requires_mfa

# Paths a staff member without two-factor authentication may still use: signing in and out,
# setting up the authenticator, switching language, static files.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/i18n/", "/static/", "/media/", "/privacy/", "/healthz")


def mfa_missing(user: Any) -> bool:
    return bool(user and user.is_authenticated and requires_mfa(user) and not has_mfa(user))


class StaffMFAMiddleware:
    """Foundation and government staff set up two-factor authentication before anything else.

    Pages redirect to the authenticator set-up; the API answers 403 with a message.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(MFA_EXEMPT_PREFIXES) and mfa_missing(request.user):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": mfa_message()}, status=403)
            setup = reverse("mfa_activate_totp")
            return redirect(f"{setup}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


def mfa_message() -> str:
    return _(
        "Staff must set up two-factor authentication first (My page → Two-factor authentication)."
    )


class StaffMFARequired(BasePermission):
    """The API's counterpart of StaffMFAMiddleware, for token-authenticated requests too."""

    def has_permission(self, request, view) -> bool:
        if mfa_missing(request.user):
            self.message = mfa_message()
            return False
        return True


def require_area(action: str):
    """A page of an area (the government's, a CSO's, the foundation's): signed in, then allowed.

    Anyone may know the area exists, so a refusal is a 403.
    """

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not may(request.user, action):
                raise PermissionDenied(_("This part of the site is not open to your account."))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def get_allowed_or_404(user: Any, action: str, obj: Any) -> Any:
    """The object if the user may act on it; otherwise a 404, so it does not reveal it exists."""
    if obj is None or not may(user, action, obj):
        raise Http404
    return obj
