"""Stripe's webhook: verify, store, acknowledge — nothing else on the request.

Stripe delivers each event at least once, possibly late and out of order, and retries for
days until it gets a 2xx. So the view only checks the signature over the raw body (a bad one
is a 400 and nothing is stored), stores the event under its unique id
(``services.store_event``, committed before the 200; a redelivery is not stored twice) and
answers 200 — also for event types we do not handle. The work is done afterwards by the
drain (``services.drain_events``, a Celery task that ``store_event`` wakes), which fetches the
current state from Stripe instead of trusting the event's copy.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .models import Donation
from .stripe_api import WebhookRejected, verify_webhook

log = logging.getLogger(__name__)


@csrf_exempt  # Stripe signs the body instead; it has no CSRF token
@require_POST
@transaction.non_atomic_requests  # store_event commits on its own, before the 200
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = verify_webhook(
            request.body,
            request.headers.get("Stripe-Signature"),
            settings.STRIPE_WEBHOOK_SECRET,
        )
    except WebhookRejected as error:
        log.warning("stripe webhook refused: %s", error)
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    services.store_event(
        provider=Donation.Provider.STRIPE,
        event_id=event["id"],
        event_type=event["type"],
        payload=event,
    )
    return HttpResponse("ok", content_type="text/plain")
