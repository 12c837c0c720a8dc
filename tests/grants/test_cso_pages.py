"""The CSO's grant pages (its grants, reports, bank account, attachments), the public project
timeline, and the fund's outcome on the government's proposal page."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from fund.models import Project
from grants import services, zengin
from grants.models import BankAccount, Report, ReportAttachment
from tests.factories import (
    DonationFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
    approved_grant,
    confirmed_bank_account,
    funded_project,
    grant_staff,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def staff():
    return grant_staff()


@pytest.fixture
def project():
    # Gifts ¥30,000 + ¥20,001, matched 1:1; fee 15% rounded down: ¥7,500 → grant ¥92,502.
    return funded_project(gifts=(30_000, 20_001))


@pytest.fixture
def grant(project, staff):
    return approved_grant(project, staff)


@pytest.fixture
def organization(grant):
    return grant.organization


@pytest.fixture
def member(organization):
    return MembershipFactory(organization=organization).user


@pytest.fixture
def admin(organization):
    return MembershipFactory(organization=organization, role=Membership.Role.ADMIN).user


@pytest.fixture
def outsider():
    """A member of another CSO."""
    return MembershipFactory(organization=OrganizationFactory()).user


@pytest.fixture
def final(grant):
    return grant.reports.get(kind=Report.Kind.FINAL)


def _report_data(**overrides):
    data = {"narrative": "子ども食堂を12回開いた。", "outcomes": "延べ340人が参加した。"}
    data["spent_yen"] = "92502"
    data.update(overrides)
    return data


def _pdf(name="receipt.pdf", content=b"%PDF-1.4 receipt\n%%EOF"):
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def _submit(client, user, report, **data):
    client.force_login(user)
    return client.post(reverse("grants:cso-report", args=[report.pk]), _report_data(**data))


# --- My grants ---------------------------------------------------------------------------------


class TestMyGrants:
    def test_member_sees_own_grant_amount_tranches_and_reports(self, client, member, grant):
        client.force_login(member)
        response = client.get(reverse("grants:cso-grants"))
        assert response.status_code == 200
        body = response.content.decode()
        assert "¥92,502" in body
        assert grant.reference in body
        assert grant.project.title in body
        assert reverse("grants:cso-grant", args=[grant.pk]) in body
        final = grant.reports.get(kind=Report.Kind.FINAL)
        assert reverse("grants:cso-report", args=[final.pk]) in body
        assert final.due_on.strftime("%Y") in body

    def test_other_cso_grant_is_not_listed(self, client, outsider, grant):
        client.force_login(outsider)
        response = client.get(reverse("grants:cso-grants"))
        assert response.status_code == 200
        assert grant.reference not in response.content.decode()
        assert "¥92,502" not in response.content.decode()

    def test_non_member_gets_403(self, client, grant):
        client.force_login(UserFactory())
        assert client.get(reverse("grants:cso-grants")).status_code == 403

    def test_anonymous_is_sent_to_sign_in(self, client):
        response = client.get(reverse("grants:cso-grants"))
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]

    def test_overdue_report_is_flagged(self, client, member, grant, final):
        Report.objects.filter(pk=final.pk).update(
            due_on=timezone.localdate() - dt.timedelta(days=3)
        )
        client.force_login(member)
        body = client.get(reverse("grants:cso-grants")).content.decode()
        assert "grant-reports__overdue" in body

    def test_no_account_yet_offers_admin_the_link(self, client, admin, organization, grant):
        client.force_login(admin)
        body = client.get(reverse("grants:cso-grants")).content.decode()
        assert 'id="bank-account-none"' in body
        assert reverse("grants:cso-bank-account", args=[organization.pk]) in body

    def test_confirmed_account_is_masked(self, client, member, organization, grant):
        confirmed_bank_account(organization)
        client.force_login(member)
        body = client.get(reverse("grants:cso-grants")).content.decode()
        assert "***4567" in body
        assert "1234567" not in body
        assert 'id="bank-account-confirmed"' in body


# --- The grant page ----------------------------------------------------------------------------


class TestGrantPage:
    def test_member_sees_terms(self, client, member, grant):
        client.force_login(member)
        response = client.get(reverse("grants:cso-grant", args=[grant.pk]))
        assert response.status_code == 200
        body = response.content.decode()
        for figure in ("¥92,502", "¥50,001", "¥7,500"):
            assert figure in body

    def test_member_of_another_cso_gets_404(self, client, outsider, grant):
        client.force_login(outsider)
        assert client.get(reverse("grants:cso-grant", args=[grant.pk])).status_code == 404

    def test_foundation_staff_may_read_it(self, client, staff, grant):
        client.force_login(staff.finance)
        response = client.get(reverse("grants:cso-grant", args=[grant.pk]))
        assert response.status_code == 200
        assert "¥92,502" in response.content.decode()

    def test_proposed_grant_is_hidden_from_members(self, client, staff):
        project = funded_project(gifts=(10_000,))
        today = timezone.localdate()
        amount = services.grant_terms(project).amount_yen
        grant = services.grant_propose(
            actor=staff.officer,
            project=project,
            ends_on=today + dt.timedelta(days=30),
            tranches=[services.TrancheTerms(amount, today)],
        )
        user = MembershipFactory(organization=grant.organization).user
        client.force_login(user)
        assert client.get(reverse("grants:cso-grant", args=[grant.pk])).status_code == 404

    def test_officers_note_is_shown_when_changes_requested(
        self, client, member, staff, final, grant
    ):
        _submit(client, member, final)
        services.report_request_changes(
            report=final, actor=staff.officer, note="領収書の写しを添付してください。"
        )
        response = client.get(reverse("grants:cso-grant", args=[grant.pk]))
        assert "領収書の写しを添付してください。" in response.content.decode()


# --- Reports -----------------------------------------------------------------------------------


class TestReportForm:
    def test_member_sees_due_date_and_form(self, client, member, final):
        client.force_login(member)
        response = client.get(reverse("grants:cso-report", args=[final.pk]))
        assert response.status_code == 200
        body = response.content.decode()
        assert 'id="report-form"' in body
        assert 'enctype="multipart/form-data"' in body

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_member_of_another_cso_gets_404(self, client, outsider, final, method):
        client.force_login(outsider)
        url = reverse("grants:cso-report", args=[final.pk])
        response = getattr(client, method)(url, _report_data() if method == "post" else None)
        assert response.status_code == 404
        final.refresh_from_db()
        assert final.state == Report.State.DUE

    def test_foundation_staff_get_404(self, client, staff, final):
        client.force_login(staff.officer)
        assert client.get(reverse("grants:cso-report", args=[final.pk])).status_code == 404

    def test_submit_with_files_then_read_only(self, client, member, final):
        client.force_login(member)
        url = reverse("grants:cso-report", args=[final.pk])
        data = _report_data(
            attachments=[_pdf(), SimpleUploadedFile("photo.png", b"\x89PNG...", "image/png")]
        )
        response = client.post(url, data)
        assert response.status_code == 302
        final.refresh_from_db()
        assert final.state == Report.State.SUBMITTED
        assert final.spent_yen == 92_502
        assert final.submitted_by == member
        assert sorted(a.name for a in final.attachments.all()) == ["photo.png", "receipt.pdf"]
        page = client.get(url).content.decode()
        assert 'id="report-form"' not in page
        assert 'id="report-awaiting"' in page
        assert "子ども食堂を12回開いた。" in page
        for item in final.attachments.all():
            assert reverse("grants:attachment", args=[item.pk]) in page

    @pytest.mark.parametrize(
        "overrides, field",
        [
            ({"narrative": "   "}, "narrative"),
            ({"narrative": ""}, "narrative"),
            ({"spent_yen": "-1"}, "spent_yen"),
            ({"spent_yen": "12.5"}, "spent_yen"),
            ({"spent_yen": "abc"}, "spent_yen"),
            ({"outcomes": ""}, "outcomes"),
        ],
    )
    def test_bad_input_is_shown_again_and_nothing_saved(
        self, client, member, final, overrides, field
    ):
        response = _submit(client, member, final, **overrides)
        assert response.status_code == 200
        assert field in response.context["form"].errors
        final.refresh_from_db()
        assert final.state == Report.State.DUE
        assert final.narrative == "" and final.spent_yen is None
        assert not ReportAttachment.objects.exists()

    def test_bad_attachment_type_is_a_form_error(self, client, member, final):
        response = _submit(
            client,
            member,
            final,
            attachments=[SimpleUploadedFile("tool.exe", b"MZ", "application/octet-stream")],
        )
        assert response.status_code == 200
        assert "attachments" in response.context["form"].errors
        final.refresh_from_db()
        assert final.state == Report.State.DUE
        assert not ReportAttachment.objects.exists()

    def test_second_post_after_submission_changes_nothing(self, client, member, final):
        _submit(client, member, final)
        response = _submit(client, member, final, narrative="書き換え")
        assert response.status_code == 302
        final.refresh_from_db()
        assert final.narrative == "子ども食堂を12回開いた。"

    def test_refiled_after_changes_requested(self, client, member, staff, final):
        _submit(client, member, final)
        services.report_request_changes(report=final, actor=staff.officer, note="支出の内訳を。")
        page = client.get(reverse("grants:cso-report", args=[final.pk])).content.decode()
        assert "支出の内訳を。" in page
        assert 'id="report-form"' in page
        assert _submit(client, member, final, spent_yen="90000").status_code == 302
        final.refresh_from_db()
        assert (final.state, final.spent_yen) == (Report.State.SUBMITTED, 90_000)


class TestAttachment:
    @pytest.fixture
    def item(self, client, member, final):
        client.force_login(member)
        _submit(client, member, final, attachments=[_pdf()])
        client.logout()
        return ReportAttachment.objects.get()

    def test_member_downloads_it(self, client, member, item):
        client.force_login(member)
        response = client.get(reverse("grants:attachment", args=[item.pk]))
        assert response.status_code == 200
        assert "attachment" in response["Content-Disposition"]
        assert b"".join(response.streaming_content) == b"%PDF-1.4 receipt\n%%EOF"

    def test_foundation_staff_download_it(self, client, staff, item):
        client.force_login(staff.officer)
        assert client.get(reverse("grants:attachment", args=[item.pk])).status_code == 200

    @pytest.mark.parametrize("who", ["outsider", "citizen", "anonymous"])
    def test_others_get_404(self, client, outsider, item, who):
        if who == "outsider":
            client.force_login(outsider)
        elif who == "citizen":
            client.force_login(UserFactory())
        assert client.get(reverse("grants:attachment", args=[item.pk])).status_code == 404


# --- The outcome on the government's page ------------------------------------------------------


def test_accepted_final_report_reaches_the_officers_proposal_page(
    client, member, staff, grant, final, project
):
    confirmed_bank_account(grant.organization)
    response = _submit(client, member, final, attachments=[_pdf()])
    assert response.status_code == 302
    services.report_accept(report=final, actor=staff.officer)
    transfer_date = zengin.next_bank_business_day(timezone.localdate())
    batch = services.batch_create(
        transfer_date=transfer_date, tranches=list(grant.tranches.all()), actor=staff.finance
    )
    services.batch_export(batch=batch, actor=staff.finance)
    services.batch_mark_paid(batch=batch, actor=staff.finance)
    grant.refresh_from_db()
    assert grant.state == grant.State.CLOSED

    proposal = project.proposal
    officer = GovernmentStaffFactory(body=proposal.body).user
    client.force_login(officer)
    response = client.get(reverse("officer:proposal-detail", args=[proposal.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="fund-outcome"' in body
    assert grant.reference in body
    for figure in ("¥100,002", "¥50,001", "¥92,502", "¥7,500"):
        assert figure in body
    assert "延べ340人が参加した。" in body

    # The public proposal page shows the same public-money outcome.
    client.logout()
    public = client.get(proposal.get_absolute_url()).content.decode()
    assert 'id="fund-outcome"' in public
    assert "¥92,502" in public


def test_no_fund_block_without_fund_outcome(client, project):
    officer = GovernmentStaffFactory(body=project.proposal.body).user
    client.force_login(officer)
    body = client.get(reverse("officer:proposal-detail", args=[project.proposal.pk])).content
    assert b'id="fund-outcome"' not in body


# --- Bank account ------------------------------------------------------------------------------


def _account_data(**overrides):
    data = {
        "bank_code": "0179",
        "branch_code": "500",
        "account_type": "1",
        "account_number": "7654321",
        "holder_kana": "トクヒ）サガキョウドウ",
    }
    data.update(overrides)
    return data


class TestBankAccount:
    def test_admin_enters_an_account_pending_confirmation(self, client, admin, organization):
        client.force_login(admin)
        url = reverse("grants:cso-bank-account", args=[organization.pk])
        response = client.post(url, _account_data(), follow=True)
        assert response.status_code == 200
        account = BankAccount.objects.get(organization=organization)
        assert account.state == BankAccount.State.PENDING
        assert account.submitted_by == admin
        assert account.holder_kana == "ﾄｸﾋ)ｻｶﾞｷﾖｳﾄﾞｳ"
        body = response.content.decode()
        assert "***4321" in body
        assert "7654321" not in body
        assert [str(m) for m in response.context["messages"]]

    def test_short_number_is_padded(self, client, admin, organization):
        client.force_login(admin)
        url = reverse("grants:cso-bank-account", args=[organization.pk])
        client.post(url, _account_data(account_number="12345"))
        assert BankAccount.objects.get().account_number == "0012345"

    @pytest.mark.parametrize(
        "overrides, field",
        [
            ({"bank_code": "9999"}, "bank_code"),
            ({"bank_code": "01"}, "bank_code"),
            ({"holder_kana": "佐賀協働"}, "holder_kana"),
            ({"account_number": "12ab567"}, "account_number"),
            ({"account_type": "9"}, "account_type"),
        ],
    )
    def test_bad_input_is_a_field_error_and_nothing_saved(
        self, client, admin, organization, overrides, field
    ):
        client.force_login(admin)
        url = reverse("grants:cso-bank-account", args=[organization.pk])
        response = client.post(url, _account_data(**overrides))
        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert not BankAccount.objects.exists()

    def test_member_reads_it_but_cannot_submit(self, client, member, organization):
        confirmed_bank_account(organization)
        client.force_login(member)
        url = reverse("grants:cso-bank-account", args=[organization.pk])
        page = client.get(url)
        assert page.status_code == 200
        assert "***4567" in page.content.decode()
        assert 'id="bank-account-form"' not in page.content.decode()
        response = client.post(url, _account_data())
        assert response.status_code in (403, 404)
        assert BankAccount.objects.count() == 1

    def test_non_member_gets_404(self, client, outsider, organization):
        client.force_login(outsider)
        url = reverse("grants:cso-bank-account", args=[organization.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, _account_data()).status_code == 404
        assert not BankAccount.objects.exists()


# --- The public timeline -----------------------------------------------------------------------


class TestTimeline:
    def test_steps_shown_and_donors_hidden(self, client, grant, project):
        DonationFactory(project=project, name="寄付者 秘密子", email="secret@example.jp")
        confirmed_bank_account(grant.organization)
        response = client.get(reverse("grants:project-timeline", args=[project.pk]))
        assert response.status_code == 200
        body = response.content.decode()
        assert project.title in body
        assert grant.organization.name in body
        assert "¥92,502" in body
        assert "project-timeline__step--done" in body
        assert "project-timeline__step--upcoming" in body
        assert reverse("donations:project-detail", args=[project.pk]) in body
        assert "秘密子" not in body and "secret@example.jp" not in body
        assert "example.jp" not in body
        assert "4567" not in body  # no bank detail
        assert "ｻｶﾞｷﾖｳﾄﾞｳ" not in body

    def test_steps_are_in_order(self, client, grant, project):
        steps = client.get(reverse("grants:project-timeline", args=[project.pk])).context["steps"]
        assert steps[0].done and not steps[-1].done
        assert len(steps) >= 5

    def test_draft_project_is_404(self, client):
        draft = ProjectFactory(state=Project.State.DRAFT)
        assert client.get(reverse("grants:project-timeline", args=[draft.pk])).status_code == 404

    def test_missing_project_is_404(self, client):
        assert client.get(reverse("grants:project-timeline", args=[999_999])).status_code == 404

    def test_public_project_page_links_to_it(self, client, project):
        response = client.get(reverse("donations:project-detail", args=[project.pk]))
        assert reverse("grants:project-timeline", args=[project.pk]) in response.content.decode()
