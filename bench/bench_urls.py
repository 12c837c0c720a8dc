"""The project's URLs plus ``/bench/trivial/``: the baseline the webhook is compared with.

The trivial view passes through the same middleware as the webhook and does nothing else.
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial), *project_urlpatterns]
