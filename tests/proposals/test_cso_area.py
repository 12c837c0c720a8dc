"""The CSO area: submitting a proposal letter online (step 4), following it, the private letter."""

import datetime as dt

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Membership
from proposals import cso_forms, services
from proposals.fiscal import current_fiscal_year
from proposals.models import Proposal, ProposalEvent
from tests.factories import (
    FoundationRoleFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    PrefectureFactory,
    ProposalFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SUBMIT = "/cso/proposals/new/"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def pdf_upload(content: bytes = PDF, name: str = "letter.pdf", content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media) -> list:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


@pytest.fixture
def world():
    prefecture = PrefectureFactory()
    city = MunicipalityFactory(name="佐賀市")
    organization_a = OrganizationFactory(name="NPO法人 さが子育てネット")
    organization_b = OrganizationFactory(name="NPO法人 からつ海の会")
    return {
        "prefecture": prefecture,
        "city": city,
        "operation": OperationFactory(
            body=prefecture, code="KY-001", fiscal_year=current_fiscal_year()
        ),
        "city_operation": OperationFactory(
            body=city, code="SG-001", fiscal_year=current_fiscal_year()
        ),
        "a": organization_a,
        "b": organization_b,
        "member_a": MembershipFactory(organization=organization_a, user__email="a@npo.jp").user,
        "member_b": MembershipFactory(organization=organization_b, user__email="b@npo.jp").user,
        "officer": GovernmentStaffFactory(body=prefecture).user,
    }


def form_data(world, **overrides) -> dict:
    data = {
        "organization": world["a"].pk,
        "body": world["prefecture"].pk,
        "target": "new",
        "operation_code": "",
        "title": "子ども食堂ネットワークの立ち上げ",
        "summary": "県内の子ども食堂をつなぐ。",
    }
    data.update(overrides)
    return data


def submit(client: Client, data: dict):
    return client.post(SUBMIT, data)


# Submitting -------------------------------------------------------------------------------------


def test_a_member_submits_a_new_project_without_a_letter(client, world):
    member = world["member_a"]
    response = submit(signed_in(client, member), form_data(world))
    proposal = Proposal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("cso:proposal-detail", args=[proposal.pk])

    today = timezone.localdate(timezone=cso_forms.JAPAN)
    assert proposal.state == Proposal.State.RECEIVED
    assert proposal.received_on == today
    assert proposal.fiscal_year == current_fiscal_year()
    assert proposal.reference == f"WEB-{current_fiscal_year()}-00001"
    assert proposal.organization == world["a"]
    assert proposal.body == world["prefecture"]
    assert proposal.operation is None
    assert not proposal.letter
    event = ProposalEvent.objects.get(proposal=proposal)
    assert (event.action, event.to_state, event.actor) == ("receive", "received", member)
    assert event.effective_on == today

    page = client.get(response["Location"]).content.decode()
    assert "received under the reference" in page
    assert "No letter attached" in page


def test_a_member_submits_for_an_operation_with_a_pdf_letter(client, world, media):
    response = submit(
        signed_in(client, world["member_a"]),
        form_data(world, target="operation", operation_code=" KY-001 ", letter=pdf_upload()),
    )
    assert response.status_code == 302
    proposal = Proposal.objects.get()
    assert proposal.operation == world["operation"]
    assert proposal.letter.name == f"letters/{timezone.now():%Y}/{proposal.reference}.pdf"
    with proposal.letter.open("rb") as letter:
        assert letter.read() == PDF
    assert stored_files(media) == [media / proposal.letter.name]
    # The page links the letter through the checked view, never a media URL.
    page = client.get(response["Location"]).content.decode()
    assert reverse("proposals:proposal-letter", args=[proposal.pk]) in page
    assert settings.MEDIA_URL not in page


def test_a_municipality_operation(client, world):
    response = submit(
        signed_in(client, world["member_a"]),
        form_data(world, body=world["city"].pk, target="operation", operation_code="SG-001"),
    )
    assert response.status_code == 302
    assert Proposal.objects.get().operation == world["city_operation"]


def test_references_count_up_within_the_year(client, world):
    year = current_fiscal_year()
    ProposalFactory(reference=f"WEB-{year}-00007")
    signed_in(client, world["member_a"])
    submit(client, form_data(world))
    submit(client, form_data(world, title="二つ目"))
    assert sorted(Proposal.objects.values_list("reference", flat=True)) == [
        f"WEB-{year}-00007",
        f"WEB-{year}-00008",
        f"WEB-{year}-00009",
    ]


def test_a_reference_taken_meanwhile_is_retried(client, world, monkeypatch):
    # Another submission took the number between reading it and writing the row.
    year = current_fiscal_year()
    ProposalFactory(reference=f"WEB-{year}-00001")
    real = services.next_reference
    calls = []

    def stale_then_real(fiscal_year: int) -> str:
        calls.append(fiscal_year)
        return f"WEB-{year}-00001" if len(calls) == 1 else real(fiscal_year)

    monkeypatch.setattr(services, "next_reference", stale_then_real)
    assert submit(signed_in(client, world["member_a"]), form_data(world)).status_code == 302
    assert len(calls) == 2
    assert Proposal.objects.filter(reference=f"WEB-{year}-00002").exists()


@pytest.mark.parametrize(
    ("utc", "received_on", "fiscal_year"),
    [
        # 2027-04-01 00:30 in Japan: the new fiscal year, though still March 31 in UTC.
        (dt.datetime(2027, 3, 31, 15, 30, tzinfo=dt.UTC), dt.date(2027, 4, 1), 2027),
        # 2027-03-31 23:59 in Japan: still FY2026.
        (dt.datetime(2027, 3, 31, 14, 59, tzinfo=dt.UTC), dt.date(2027, 3, 31), 2026),
    ],
)
def test_received_today_in_japan_time(client, world, monkeypatch, utc, received_on, fiscal_year):
    monkeypatch.setattr(timezone, "now", lambda: utc)
    response = submit(signed_in(client, world["member_a"]), form_data(world))
    assert response.status_code == 302
    proposal = Proposal.objects.get()
    assert proposal.received_on == received_on
    assert proposal.fiscal_year == fiscal_year
    assert proposal.reference == f"WEB-{fiscal_year}-00001"


def assert_refused(response, media, *messages: str) -> None:
    assert response.status_code == 200
    content = response.content.decode()
    assert "The proposal was not submitted" in content
    for message in messages:
        assert escape(message) in content
    assert not Proposal.objects.exists()
    assert not ProposalEvent.objects.exists()
    assert stored_files(media) == []


def test_a_renamed_text_file_is_refused(client, world, media):
    fake = pdf_upload(b"Dear Governor,\nplease fund us.\n%%EOF\n", name="letter.pdf")
    response = submit(signed_in(client, world["member_a"]), form_data(world, letter=fake))
    assert_refused(response, media, "“letter.pdf” is not a PDF file")


def test_other_content_sent_as_pdf_is_refused(client, world, media):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200 + b"%%EOF"
    response = submit(
        signed_in(client, world["member_a"]),
        form_data(world, letter=pdf_upload(png, name="scan.pdf")),
    )
    assert_refused(response, media, "is not a PDF file")


def test_a_truncated_pdf_is_refused(client, world, media):
    truncated = PDF[: len(PDF) // 2]
    response = submit(
        signed_in(client, world["member_a"]),
        form_data(world, letter=pdf_upload(truncated)),
    )
    assert_refused(response, media, "is not a PDF file")


def test_an_oversized_pdf_is_refused(client, world, media):
    big = b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024) + b"\n%%EOF\n"
    assert len(big) > cso_forms.LETTER_MAX_BYTES
    response = submit(
        signed_in(client, world["member_a"]), form_data(world, letter=pdf_upload(big))
    )
    assert_refused(response, media, "the limit is 10 MB")


def test_a_pdf_of_exactly_10_mb_is_accepted(client, world, media):
    body = b"%PDF-1.7\n"
    tail = b"\n%%EOF\n"
    exact = body + b"0" * (cso_forms.LETTER_MAX_BYTES - len(body) - len(tail)) + tail
    response = submit(
        signed_in(client, world["member_a"]), form_data(world, letter=pdf_upload(exact))
    )
    assert response.status_code == 302
    assert Proposal.objects.get().letter.size == cso_forms.LETTER_MAX_BYTES


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target": "operation", "operation_code": ""}, "Enter the operation's code"),
        ({"target": "operation", "operation_code": "NOPE-9"}, "“NOPE-9” is not in"),
        # The city's code is not in the prefecture's catalogue.
        ({"target": "operation", "operation_code": "SG-001"}, "“SG-001” is not in"),
        ({"target": "new", "operation_code": "KY-001"}, "A new project has no operation code"),
        ({"title": ""}, "This field is required"),
        ({"target": "maybe"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error(client, world, media, overrides, message):
    response = submit(signed_in(client, world["member_a"]), form_data(world, **overrides))
    assert_refused(response, media, message)


def test_last_years_operation_is_not_in_the_current_catalogue(client, world, media):
    OperationFactory(body=world["prefecture"], code="OLD-1", fiscal_year=current_fiscal_year() - 1)
    response = submit(
        signed_in(client, world["member_a"]),
        form_data(world, target="operation", operation_code="OLD-1"),
    )
    assert_refused(response, media, "“OLD-1” is not in")


def test_a_member_cannot_submit_for_another_organisation(client, world, media):
    response = submit(
        signed_in(client, world["member_b"]), form_data(world, organization=world["a"].pk)
    )
    assert_refused(response, media, "Select a valid choice")


def test_failure_after_storing_the_letter_leaves_nothing(client, world, media, monkeypatch):
    real_save = Proposal.save

    def failing_save(self, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise RuntimeError("database went away")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Proposal, "save", failing_save)
    signed_in(client, world["member_a"])
    with pytest.raises(RuntimeError):
        submit(client, form_data(world, letter=pdf_upload()))
    assert not Proposal.objects.exists()
    assert stored_files(media) == []


def test_the_form_offers_only_my_organisations(client, world):
    MembershipFactory(user=world["member_a"], organization=OrganizationFactory(name="第二の会"))
    page = signed_in(client, world["member_a"]).get(f"{SUBMIT}?organization={world['a'].pk}")
    assert page.status_code == 200
    choices = [str(label) for _value, label in page.context["form"].fields["organization"].choices]
    assert sorted(choices) == sorted(["NPO法人 さが子育てネット", "第二の会"])
    assert page.context["form"]["organization"].value() == str(world["a"].pk)


def test_missing_csrf_token_is_refused(world, media):
    client = Client(enforce_csrf_checks=True)
    response = submit(signed_in(client, world["member_a"]), form_data(world))
    assert response.status_code == 403
    assert not Proposal.objects.exists()


# Following --------------------------------------------------------------------------------------


def submitted(world, *, letter: bool = True) -> Proposal:
    proposal = services.proposal_submit_online(
        actor=world["member_a"],
        organization=world["a"],
        body=world["prefecture"],
        operation=None,
        title="海岸清掃の協働",
        summary="月一回の清掃。",
        letter=pdf_upload() if letter else None,
    )
    return proposal


def test_cso_home_lists_my_organisations_proposals(client, world):
    mine = submitted(world)
    services.proposal_transition(
        proposal=mine,
        action="consult",
        actor=world["officer"],
        held_on=mine.received_on,
        notes="第1回協議",
    )
    theirs = ProposalFactory(organization=world["b"], title="唐津の提案")
    page = signed_in(client, world["member_a"]).get(reverse("cso:home"))
    assert page.status_code == 200
    content = page.content.decode()
    assert mine.title in content
    assert "5. In consultation" in content
    assert "Consultation held" in content  # the latest dated step
    assert "Pending" in content  # budget provision
    assert theirs.title not in content
    assert f"{SUBMIT}?organization={world['a'].pk}" in content


def test_the_private_page_shows_the_record(client, world):
    proposal = submitted(world)
    services.proposal_transition(
        proposal=proposal,
        action="consult",
        actor=world["officer"],
        held_on=proposal.received_on,
        notes="担当課と予算について協議",
    )
    services.proposal_transition(
        proposal=proposal,
        action="respond",
        actor=world["officer"],
        decision=Proposal.Decision.ADOPTED,
        decided_on=proposal.received_on,
        reason="県の方針と合致",
        budget_provision=Proposal.BudgetProvision.NO,
    )
    page = signed_in(client, world["member_a"]).get(
        reverse("cso:proposal-detail", args=[proposal.pk])
    )
    assert page.status_code == 200
    content = page.content.decode()
    for text in ("担当課と予算について協議", "県の方針と合致", "Adopted", "Not budgeted"):
        assert text in content
    assert world["officer"].email not in content


def test_another_organisation_cannot_see_the_private_page_or_letter(client, world):
    proposal = submitted(world)
    signed_in(client, world["member_b"])
    assert client.get(reverse("cso:proposal-detail", args=[proposal.pk])).status_code == 404
    assert client.get(reverse("proposals:proposal-letter", args=[proposal.pk])).status_code == 404
    withdraw = client.post(reverse("cso:proposal-withdraw", args=[proposal.pk]), {"confirm": "on"})
    assert withdraw.status_code == 404
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.RECEIVED


def test_the_member_and_the_bodys_officer_download_the_letter(client, world):
    proposal = submitted(world)
    url = reverse("proposals:proposal-letter", args=[proposal.pk])
    for user in (world["member_a"], world["officer"], FoundationRoleFactory().user):
        response = signed_in(Client(), user).get(url)
        assert response.status_code == 200, user
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="{proposal.reference}.pdf"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in response["Cache-Control"]


def test_others_get_404_for_the_letter(client, world):
    proposal = submitted(world)
    url = reverse("proposals:proposal-letter", args=[proposal.pk])
    assert client.get(url).status_code == 404  # anonymous
    for user in (
        UserFactory(),  # a citizen
        GovernmentStaffFactory(body=world["city"]).user,  # another body's officer
        world["member_b"],
    ):
        assert signed_in(Client(), user).get(url).status_code == 404, user
    # No letter, or no such proposal: the same answer.
    bare = submitted(world, letter=False)
    member = signed_in(Client(), world["member_a"])
    assert member.get(reverse("proposals:proposal-letter", args=[bare.pk])).status_code == 404
    assert member.get(reverse("proposals:proposal-letter", args=[999_999])).status_code == 404


def test_a_citizen_gets_403_in_the_cso_area(client, world):
    proposal = submitted(world, letter=False)
    assert client.get(reverse("cso:home")).status_code == 302  # anonymous: sign in first
    signed_in(client, UserFactory())
    assert client.get(reverse("cso:home")).status_code == 403
    assert client.get(SUBMIT).status_code == 403
    assert submit(client, form_data(world)).status_code == 403
    assert client.get(reverse("cso:proposal-detail", args=[proposal.pk])).status_code == 403
    assert Proposal.objects.count() == 1


def test_withdraw_needs_confirmation_and_is_recorded(client, world):
    proposal = submitted(world, letter=False)
    member = world["member_a"]
    url = reverse("cso:proposal-withdraw", args=[proposal.pk])
    signed_in(client, member)
    page = client.get(reverse("cso:proposal-detail", args=[proposal.pk])).content.decode()
    assert url in page

    unconfirmed = client.post(url, {"note": "再検討"})
    assert unconfirmed.status_code == 200
    assert "Tick the box to confirm" in unconfirmed.content.decode()
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.RECEIVED

    response = client.post(url, {"confirm": "on", "note": "団体の体制が整わないため"}, follow=True)
    assert "The proposal is withdrawn." in response.content.decode()
    assert url not in response.content.decode()  # no button any more
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.WITHDRAWN
    assert proposal.decision == Proposal.Decision.WITHDRAWN
    event = proposal.events.get(action="withdraw")
    assert (event.actor, event.note) == (member, "団体の体制が整わないため")
    assert event.effective_on == timezone.localdate(timezone=cso_forms.JAPAN)

    again = client.post(url, {"confirm": "on"}, follow=True)
    assert "is not possible while the proposal is" in again.content.decode()
    assert proposal.events.filter(action="withdraw").count() == 1


def test_a_member_who_left_loses_access(client, world):
    proposal = submitted(world)
    Membership.objects.filter(user=world["member_a"]).delete()
    signed_in(client, world["member_a"])
    assert client.get(reverse("proposals:proposal-letter", args=[proposal.pk])).status_code == 404
