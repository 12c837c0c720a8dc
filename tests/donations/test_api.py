"""The donations API: open projects with their donors, giving, and a donation for its donor.

The projects API moved here from tests/fund/test_unfunded_and_api.py with the API itself; it now
counts donors. Giving: a good request answers 201 with the checkout's absolute address; bad input
answers 400 (a closed project too), an unknown or unpublished project 404, the card-testing
limit 429 — each with a message and no donation written. Anonymous callers give without a
session or a CSRF token; a signed-in session must send its CSRF token. A donation is shown to
its donor (account, the browser that gave, the signed link) and foundation staff only.
"""

import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import FoundationRole, User
from donations import access, services
from donations.models import DemoCheckout, Donation
from donations.providers import DemoProvider, ProviderError, demo_act
from donations.receipts import issue_receipt
from fund.models import Project
from tests.factories import (
    FoundationRoleFactory,
    MunicipalityFactory,
    ProjectFactory,
    UserFactory,
)
from tests.factories import give as give_factory
from tests.fund.test_project_pages import live
from tests.fund.test_projects import listed, moved, programme_officer

pytestmark = pytest.mark.django_db
State = Project.State

PROJECTS = "/api/v1/projects/"
DONATIONS = "/api/v1/donations/"


@pytest.fixture(autouse=True)
def _fresh_limits():
    # The card-testing counters live in the cache, which outlives a test.
    cache.clear()


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def give(project: Project, amount: int, key: str, **donation_fields) -> None:
    give_factory(project, amount, payment_id=key, **donation_fields)


def gift_url(project: Project) -> str:
    return f"{PROJECTS}{project.pk}/donations/"


def body(**overrides) -> dict:
    data = {"amount": 3000, "email": "hanako@example.jp", "name": "佐賀 花子"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# --- Projects (moved from the fund) ------------------------------------------------------------


def test_the_projects_api_lists_open_projects_with_public_fields_and_donors():
    project = live(goal_yen=100_000, days_left=5, title="公開中")
    give(project, 30_000, "t-api-1", email="a@example.jp")
    give(project, 10_000, "t-api-2", email="A@example.jp")  # the same donor, counted once
    give(project, 1_000, "t-api-3", email="b@example.jp")
    listed(title="下書き")  # a draft: not listed
    moved(live(), "cancel")
    response = api().get(PROJECTS)
    assert response.status_code == 200
    payload = response.json()
    assert payload["count"] == 1
    (item,) = payload["results"]
    assert set(item) == {
        "id",
        "title",
        "description",
        "body",
        "fiscal_year",
        "goal_yen",
        "raised_yen",
        "matched_yen",
        "donors",
        "closes_at",
        "days_left",
        "state",
        "proposal",
    }
    assert item["id"] == project.pk
    assert item["body"] == {"code": "410004", "name": "佐賀県"}
    assert (item["goal_yen"], item["raised_yen"], item["matched_yen"]) == (100_000, 41_000, 0)
    assert item["donors"] == 2
    assert (item["days_left"], item["state"], item["proposal"]) == (5, "open", project.proposal_id)
    assert item["fiscal_year"] == 2026


def test_the_projects_api_filters_and_sorts():
    city = MunicipalityFactory()
    soon = live(days_left=3, goal_yen=100_000)
    late = live(days_left=30, goal_yen=900_000, body=city)
    old = live(days_left=10, goal_yen=500_000, received_on=dt.date(2025, 6, 1))

    def ids(**params) -> list[int]:
        response = api().get(PROJECTS, params)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids() == [soon.pk, old.pk, late.pk]
    assert ids(sort="ending") == [soon.pk, old.pk, late.pk]
    assert ids(sort="needed") == [late.pk, old.pk, soon.pk]
    assert ids(body=city.code) == [late.pk]
    assert ids(fiscal_year=2025) == [old.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"body": "999999"}, "body"),
        ({"body": "abc"}, "body"),
        ({"fiscal_year": "twenty"}, "fiscal_year"),
        ({"fiscal_year": "2026.5"}, "fiscal_year"),
        ({"fiscal_year": "1900"}, "fiscal_year"),
        ({"sort": "random"}, "sort"),
        ({"page": "x"}, "page"),
    ],
)
def test_the_projects_api_answers_400_with_a_message_for_bad_params(params, field):
    live()
    response = api().get(PROJECTS, params)
    assert response.status_code == 400
    assert response.json()[field]


def test_a_project_by_id_with_donors_and_404_for_drafts_and_cancelled_unless_manager():
    shown = live(goal_yen=100_000)
    give(shown, 1_000, "t-one", email="one@example.jp")
    give(shown, 2_000, "t-two", email="two@example.jp")
    closed = moved(live(), "close")
    draft = listed()
    cancelled = moved(live(), "cancel")
    response = api().get(f"{PROJECTS}{shown.pk}/")
    assert response.status_code == 200
    assert (response.json()["raised_yen"], response.json()["donors"]) == (3_000, 2)
    assert api().get(f"{PROJECTS}{closed.pk}/").json()["state"] == "closed"
    for hidden in (draft, cancelled):
        assert api().get(f"{PROJECTS}{hidden.pk}/").status_code == 404
        assert api(UserFactory()).get(f"{PROJECTS}{hidden.pk}/").status_code == 404
        assert api(programme_officer()).get(f"{PROJECTS}{hidden.pk}/").status_code == 200
    assert api().get(f"{PROJECTS}99999/").status_code == 404


def test_the_projects_api_makes_the_same_number_of_queries_for_2_and_10_projects():
    def queries(sort: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api().get(PROJECTS, {"sort": sort}).status_code == 200
        return len(captured)

    for i in range(2):
        give(live(days_left=5 + i), 1_000 + i, f"t-a{i}")
    two = (queries("ending"), queries("needed"))
    for i in range(8):
        project = live(days_left=10 + i)
        give(project, 2_000 + i, f"t-b{i}")
        give(project, 500, f"t-c{i}")
    assert api().get(PROJECTS).json()["count"] == 10
    assert (queries("ending"), queries("needed")) == two


# --- Giving ------------------------------------------------------------------------------------


def test_an_anonymous_gift_answers_201_with_an_absolute_checkout_address():
    project = ProjectFactory()
    response = api().post(
        gift_url(project),
        body(
            amount=5000,
            display_name="はなこ",
            publish_name=True,
            message="応援しています",
            share_contact=True,
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    payload = response.json()
    assert set(payload) == {"donation_id", "checkout_url"}
    donation = Donation.objects.get()
    assert payload["donation_id"] == str(donation.pk)
    assert payload["checkout_url"] == f"http://testserver{donation.checkout_url}"
    assert (donation.project, donation.amount, donation.frequency) == (project, 5000, "once")
    assert (donation.status, donation.donor) == (Donation.Status.PENDING, None)
    assert (donation.public_name, donation.message) == ("はなこ", "応援しています")
    assert donation.share_contact and not donation.wants_receipt
    checkout = DemoCheckout.objects.get(donation=donation)
    assert checkout.success_url == f"http://testserver/donations/{donation.pk}/thanks/"
    assert checkout.cancel_url == f"http://testserver/projects/{project.pk}/"


def test_a_monthly_gift_with_a_receipt():
    project = ProjectFactory()
    response = api().post(
        gift_url(project),
        body(
            frequency="monthly",
            wants_receipt=True,
            postal_code="840-0041",
            address="佐賀県佐賀市城内1-1-59",
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    donation = Donation.objects.get()
    assert donation.frequency == "monthly" and donation.wants_receipt
    assert donation.address == "佐賀県佐賀市城内1-1-59"


def test_a_form_encoded_post_works_too():
    response = api().post(gift_url(ProjectFactory()), {"amount": "3000", "email": "a@example.jp"})
    assert response.status_code == 201, response.content
    assert Donation.objects.get().amount == 3000


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 3000.5}, "amount"),
        ({"amount": 3000.0}, "amount"),
        ({"amount": "3000円"}, "amount"),
        ({"amount": "３０００"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 99}, "amount"),
        ({"amount": 10_000_001}, "amount"),
        ({"amount": -3000}, "amount"),
        ({"amount": None}, "amount"),
        ({"email": None}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"frequency": "yearly"}, "frequency"),
        ({"message": "x" * 1001}, "message"),
        ({"wants_receipt": True}, "non_field_errors"),  # no address for the receipt
    ],
)
def test_bad_input_is_400_with_a_message_and_creates_nothing(overrides, field):
    response = api().post(gift_url(ProjectFactory()), body(**overrides), format="json")
    assert response.status_code == 400
    assert response.json()[field][0]
    assert not Donation.objects.exists()


def test_the_amount_message_names_the_range():
    response = api().post(gift_url(ProjectFactory()), body(amount=50), format="json")
    assert "¥100" in response.json()["amount"][0]
    assert "¥10,000,000" in response.json()["amount"][0]


def test_the_smallest_and_largest_gifts_are_accepted():
    project = ProjectFactory()
    for amount in (100, 10_000_000):
        response = api().post(gift_url(project), body(amount=amount), format="json")
        assert response.status_code == 201, response.content
    assert sorted(Donation.objects.values_list("amount", flat=True)) == [100, 10_000_000]


def test_a_closed_project_is_400_with_a_message():
    closed = ProjectFactory(state=State.CLOSED)
    response = api().post(gift_url(closed), body(), format="json")
    assert response.status_code == 400
    assert response.json()["non_field_errors"][0]
    assert not Donation.objects.exists()


def test_a_project_past_its_window_is_400():
    ended = live(days_left=-1)
    response = api().post(gift_url(ended), body(), format="json")
    assert response.status_code == 400
    assert not Donation.objects.exists()


@pytest.mark.parametrize("state", [State.DRAFT, State.CANCELLED])
def test_a_project_that_is_not_public_is_404_even_for_its_managers(state):
    project = ProjectFactory(state=state)
    for client in (api(), api(programme_officer())):
        assert client.post(gift_url(project), body(), format="json").status_code == 404
    assert not Donation.objects.exists()


def test_an_unknown_project_is_404():
    response = api().post(f"{PROJECTS}99999/donations/", body(), format="json")
    assert response.status_code == 404
    assert response.json()["detail"]
    assert not Donation.objects.exists()


def test_the_card_testing_limit_answers_429_with_a_message(settings):
    settings.CHECKOUT_LIMIT_PER_IP = 2
    project = ProjectFactory()
    for n in range(2):
        response = api().post(gift_url(project), body(email=f"d{n}@example.jp"), format="json")
        assert response.status_code == 201
    response = api().post(gift_url(project), body(email="d3@example.jp"), format="json")
    assert response.status_code == 429
    assert response.json()["detail"]
    assert Donation.objects.count() == 2


def test_an_unavailable_payment_service_is_502_with_a_message(monkeypatch):
    def down(self, donation, **kwargs):
        raise ProviderError("Stripe is down")

    monkeypatch.setattr(DemoProvider, "create_checkout", down)
    response = api().post(gift_url(ProjectFactory()), body(), format="json")
    assert response.status_code == 502
    assert response.json()["detail"]
    # The service keeps the attempt, failed, for the record: no checkout, no money.
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_anonymous_callers_give_without_a_session_or_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(gift_url(ProjectFactory()), body(), content_type="application/json")
    assert response.status_code == 201, response.content


def test_a_signed_in_session_must_send_its_csrf_token():
    user = UserFactory()
    project = ProjectFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(gift_url(project), body(), content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Donation.objects.exists()

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.post(
        gift_url(project), body(), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201, response.content
    donation = Donation.objects.get()
    assert donation.donor == user
    # Remembered in the session: this browser may see the donation.
    assert str(donation.pk) in client.session[access.SESSION_KEY]


def test_a_token_authenticated_gift_is_linked_and_gets_no_session():
    user = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = client.post(gift_url(ProjectFactory()), body(), format="json")
    assert response.status_code == 201
    assert Donation.objects.get().donor == user
    assert "sessionid" not in response.cookies


def test_a_gift_to_the_general_fund_and_to_a_project_by_id():
    response = api().post(DONATIONS, body(), format="json")
    assert response.status_code == 201, response.content
    general = Donation.objects.get(pk=response.json()["donation_id"])
    assert general.project is None
    assert DemoCheckout.objects.get(donation=general).cancel_url == "http://testserver/give/"
    response = api().post(DONATIONS, body(project=None, amount=700), format="json")
    assert Donation.objects.get(pk=response.json()["donation_id"]).project is None
    project = ProjectFactory()
    response = api().post(DONATIONS, body(project=project.pk), format="json")
    assert Donation.objects.get(pk=response.json()["donation_id"]).project == project


@pytest.mark.parametrize("state", [State.DRAFT, State.CANCELLED, "unknown"])
def test_a_gift_to_an_unpublished_or_unknown_project_by_id_is_400(state):
    project_id = 99999 if state == "unknown" else ProjectFactory(state=state).pk
    response = api().post(DONATIONS, body(project=project_id), format="json")
    assert response.status_code == 400
    assert response.json()["project"][0]
    assert not Donation.objects.exists()


# --- A donation, for its donor -----------------------------------------------------------------


def started(client: Client) -> Donation:
    response = client.post(gift_url(ProjectFactory()), body(), content_type="application/json")
    assert response.status_code == 201, response.content
    return Donation.objects.get(pk=response.json()["donation_id"])


def test_the_browser_that_gave_sees_the_donation_and_its_gifts():
    client = Client()
    donation = started(client)
    # The payment's event, processed as the webhook task would (whatever Celery's mode).
    services.process_event(demo_act(donation.checkout_session_id, "pay"))
    response = client.get(f"{DONATIONS}{donation.pk}/")
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {
        "id",
        "project",
        "amount",
        "frequency",
        "status",
        "created_at",
        "gifts",
    }
    assert (payload["id"], payload["project"]) == (str(donation.pk), donation.project_id)
    assert (payload["amount"], payload["frequency"], payload["status"]) == (
        3000,
        "once",
        "succeeded",
    )
    (gift,) = payload["gifts"]
    assert set(gift) == {"amount", "refunded_amount", "state", "received_at", "receipt"}
    assert (gift["amount"], gift["refunded_amount"], gift["state"]) == (3000, 0, "succeeded")
    assert gift["receipt"] is None  # not asked for
    assert "hanako@example.jp" not in response.content.decode()
    assert response["Cache-Control"] == "private, no-store"


def test_the_gift_shows_its_live_receipt_number():
    gift = give_factory(ProjectFactory(), 5_000, wants_receipt=True)
    receipt, _created = issue_receipt(gift)
    token = access.token_for(gift.donation)
    response = api().get(f"{DONATIONS}{gift.donation_id}/", {"t": token})
    assert response.json()["gifts"][0]["receipt"] == receipt.display_number


def test_someone_elses_donation_is_404():
    donation = started(Client())
    for client in (Client(), api(UserFactory()), api()):
        response = client.get(f"{DONATIONS}{donation.pk}/")
        assert response.status_code == 404
    assert api().get(f"{DONATIONS}{donation.pk}/", {"t": "forged"}).status_code == 404
    assert api().get(f"{DONATIONS}{uuid.uuid4()}/").status_code == 404
    assert api().get(f"{DONATIONS}not-a-uuid/").status_code == 404


def test_the_donor_account_the_signed_link_and_foundation_staff_see_it():
    donor = UserFactory()
    client = api(donor)
    response = client.post(gift_url(ProjectFactory()), body(), format="json")
    donation_id = response.json()["donation_id"]
    assert api(donor).get(f"{DONATIONS}{donation_id}/").status_code == 200
    donation = Donation.objects.get(pk=donation_id)
    assert api().get(f"{DONATIONS}{donation_id}/", {"t": access.token_for(donation)}).json()
    staff = FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user
    assert api(staff).get(f"{DONATIONS}{donation_id}/").status_code == 200


def test_giving_and_reading_through_the_service_agree():
    """The API's donation is the service's: confirming it records one gift."""
    client = Client()
    donation = started(client)
    demo_act(donation.checkout_session_id, "pay")
    services.confirm_checkout(donation.checkout_session_id, source="test")
    services.confirm_checkout(donation.checkout_session_id, source="test")
    assert client.get(f"{DONATIONS}{donation.pk}/").json()["status"] == "succeeded"
    assert donation.gifts.count() == 1
