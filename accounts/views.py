from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .policy import roles_of


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Where a signed-in person lands: their roles and the areas open to them."""
    return render(request, "accounts/dashboard.html", {"roles": roles_of(request.user)})
