"""A stand-in URLconf: the services reverse the accept link's URL name only."""

from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path(
        "",
        include(
            (
                [
                    path(
                        "invitations/<str:token>/",
                        lambda r, token: HttpResponse(),
                        name="invitation-accept",
                    )
                ],
                "organizations",
            )
        ),
    ),
]
