"""Who may see a donation: its donor — signed in, in the browser that gave, or holding the
signed link from their email — and foundation staff. Donor personal data goes no further."""

from django.core import signing
from django.http import HttpRequest

from accounts.policy import may

from .models import Donation

SESSION_KEY = "civicfund_donations"
SIGNING_SALT = "donations.access"
TOKEN_MAX_AGE = 60 * 60 * 24 * 400  # the link in a receipt email works for over a year


def remember(request: HttpRequest, donation: Donation) -> None:
    """This browser gave the donation: it may come back to the thank-you page without an account."""
    ids = request.session.get(SESSION_KEY, [])
    if str(donation.pk) not in ids:
        request.session[SESSION_KEY] = [*ids[-49:], str(donation.pk)]


def token_for(donation: Donation) -> str:
    return signing.dumps(str(donation.pk), salt=SIGNING_SALT)


def _token_matches(token: str, donation: Donation) -> bool:
    try:
        return signing.loads(token, salt=SIGNING_SALT, max_age=TOKEN_MAX_AGE) == str(donation.pk)
    except signing.BadSignature:
        return False


def verified_emails(user) -> set[str]:
    """The signed-in user's verified addresses, lower-cased (a gift made with one is theirs)."""
    from allauth.account.models import EmailAddress

    if not user.is_authenticated:
        return set()
    if not hasattr(user, "_verified_emails"):
        user._verified_emails = {
            email.lower()
            for email in EmailAddress.objects.filter(user=user, verified=True).values_list(
                "email", flat=True
            )
        }
    return user._verified_emails


def may_view_donation(request: HttpRequest, donation: Donation) -> bool:
    user = request.user
    if user.is_authenticated and (donation.donor_id == user.pk or may(user, "donation.view_any")):
        return True
    if donation.email.lower() in verified_emails(user):
        return True
    if str(donation.pk) in request.session.get(SESSION_KEY, []):
        return True
    token = request.GET.get("t", "")
    return bool(token) and _token_matches(token, donation)


def may_manage_donation(request: HttpRequest, donation: Donation) -> bool:
    """Cancel a monthly gift: the signed-in donor or foundation staff; or the browser/link
    holder (a donor who gave without an account)."""
    return may_view_donation(request, donation)
