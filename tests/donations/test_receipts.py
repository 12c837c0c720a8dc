"""Tax receipts (寄附金受領証明書, DOMAIN.md §3): numbering, voiding, annual summaries, the PDF
and the email.

Numbers run per calendar year by the day the money arrived in Japan, with no gaps and no
duplicates — checked with real parallel connections on PostgreSQL, next to a control run with
the counter's lock taken away that shows the duplicates the lock prevents.
"""

import datetime as dt
import io
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pypdf
import pytest
from django.core import mail, signing
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation

from donations import receipts, services, tasks
from donations.access import SIGNING_SALT
from donations.models import Gift, Receipt, ReceiptCounter, Refund
from donations.receipt_mail import send_receipt_email
from donations.receipt_pdf import render_receipt_pdf, wareki
from donations.receipts import (
    ReceiptError,
    issue_annual_receipt,
    issue_receipt,
    next_receipt_number,
)
from proposals.fiscal import JAPAN
from tests.factories import FoundationRoleFactory, ProjectFactory, give

UTC = dt.UTC
SITE_URL = "https://civicfund.example.jp"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE_URL
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=JAPAN)


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def pdf_fonts(data: bytes) -> set[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    return fonts


def finance_user():
    return FoundationRoleFactory(role="finance").user


# --- Numbering ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_numbers_run_per_calendar_year_of_the_day_received_in_japan():
    project = ProjectFactory()
    # 2026-12-31 23:59 in Japan: still 2026.
    late_2026 = give(project, 1000, received_at=dt.datetime(2026, 12, 31, 14, 59, tzinfo=UTC))
    # 2026-12-31 15:30 UTC is 2027-01-01 00:30 in Japan: the 2027 tax year.
    first_2027 = give(project, 2000, received_at=dt.datetime(2026, 12, 31, 15, 30, tzinfo=UTC))
    second_2027 = give(None, 3000, received_at=jst(2027, 1, 5, 9))
    earlier_2026 = give(project, 4000, received_at=jst(2026, 10, 2, 9))

    r1, created = issue_receipt(late_2026)
    r2, _ = issue_receipt(first_2027)
    r3, _ = issue_receipt(second_2027)
    r4, _ = issue_receipt(earlier_2026)

    assert created
    assert (r1.year, r1.number) == (2026, 1)
    assert (r2.year, r2.number, r2.received_on) == (2027, 1, dt.date(2027, 1, 1))
    assert (r3.year, r3.number) == (2027, 2)
    assert (r4.year, r4.number) == (2026, 2)  # numbered when issued, in its own year
    assert r2.display_number == "2027-000001"
    assert ReceiptCounter.objects.get(year=2026).last_number == 2
    assert ReceiptCounter.objects.get(year=2027).last_number == 2


@pytest.mark.django_db
def test_a_gift_gets_one_receipt_however_often_it_is_issued():
    gift = give(ProjectFactory(), 3000, received_at=jst(2026, 11, 1, 12))
    first, created = issue_receipt(gift)
    again, created_again = issue_receipt(gift)
    tasks.issue_receipt_task(gift.pk)
    assert created and not created_again
    assert again.pk == first.pk
    assert Receipt.objects.count() == 1
    assert ReceiptCounter.objects.get(year=2026).last_number == 1


@pytest.mark.django_db
def test_a_rolled_back_receipt_gives_its_number_back():
    project = ProjectFactory()
    abandoned = give(project, 1000, received_at=jst(2026, 11, 1, 12))
    other = give(project, 2000, received_at=jst(2026, 11, 2, 12))

    with pytest.raises(RuntimeError), transaction.atomic():
        receipt, _ = issue_receipt(abandoned)
        assert receipt.number == 1
        raise RuntimeError("the issuing transaction fails after taking the number")

    assert not Receipt.objects.exists()
    assert issue_receipt(other)[0].number == 1  # no gap
    assert issue_receipt(abandoned)[0].number == 2


@pytest.mark.django_db
def test_a_receipt_needs_a_name_and_address_and_something_to_certify():
    project = ProjectFactory()
    nameless = give(project, 1000, name=" ", wants_receipt=False)
    with pytest.raises(ReceiptError):
        issue_receipt(nameless)
    refunded = give(project, 1000)
    services.refund_gift(gift=refunded, amount=1000, actor=finance_user())
    with pytest.raises(ReceiptError):
        issue_receipt(refunded)
    assert not Receipt.objects.exists()
    assert not ReceiptCounter.objects.filter(last_number__gt=0).exists()


ISSUERS = 24


def _issue_at_once(gifts: list[Gift]) -> tuple[list[int], list[BaseException]]:
    """Each gift's receipt issued by its own thread and database connection, all at once."""
    barrier = threading.Barrier(len(gifts))
    numbers, errors = [], []

    def issuer(gift: Gift) -> None:
        try:
            connection.ensure_connection()  # connect before the start line
            barrier.wait()
            receipt, created = issue_receipt(gift)
            assert created
            numbers.append(receipt.number)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=issuer, args=(gift,)) for gift in gifts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return numbers, errors


def _gifts_to_receipt(count: int) -> list[Gift]:
    project = ProjectFactory()
    # wants_receipt=False: no receipt task after commit; the test issues them itself.
    return [
        give(project, 1000 + n, received_at=jst(2026, 11, 1, 9, n), wants_receipt=False)
        for n in range(count)
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_receipts_issued_at_once_are_numbered_without_gaps_or_duplicates(monkeypatch):
    gifts = _gifts_to_receipt(ISSUERS)

    def slow_next_number(year: int) -> int:
        number = next_receipt_number(year)
        time.sleep(0.02)  # the same window as the control run, here inside the lock
        return number

    monkeypatch.setattr(receipts, "next_receipt_number", slow_next_number)
    numbers, errors = _issue_at_once(gifts)

    assert errors == []
    assert sorted(numbers) == list(range(1, ISSUERS + 1))
    assert sorted(Receipt.objects.values_list("number", flat=True)) == list(range(1, ISSUERS + 1))
    assert ReceiptCounter.objects.get(year=2026).last_number == ISSUERS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_without_the_lock_numbers_collide(monkeypatch):
    """The same race with the counter read and written without a lock: issuers read the same
    last number, so numbers repeat (the second insert of a number is refused) — the failure the
    locked counter prevents, and proof that the test above can fail."""
    gifts = _gifts_to_receipt(ISSUERS)

    def unlocked_next_number(year: int) -> int:
        counter, _ = ReceiptCounter.objects.get_or_create(year=year)
        time.sleep(0.02)
        ReceiptCounter.objects.filter(year=year).update(last_number=counter.last_number + 1)
        return counter.last_number + 1

    monkeypatch.setattr(receipts, "next_receipt_number", unlocked_next_number)
    numbers, errors = _issue_at_once(gifts)

    assert errors, "expected clashing numbers without the lock"
    assert all(isinstance(e, IntegrityError | Receipt.DoesNotExist) for e in errors), errors
    assert len(numbers) < ISSUERS


# --- Refunds -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refunded_gift_has_its_receipt_voided(django_capture_on_commit_callbacks):
    gift = give(ProjectFactory(), 5000, received_at=jst(2026, 11, 1, 12))
    receipt, _ = issue_receipt(gift)

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_gift(gift=gift, amount=5000, actor=finance_user())

    receipt.refresh_from_db()
    assert receipt.voided_at is not None
    assert receipt.void_reason
    assert not Receipt.objects.filter(voided_at__isnull=True).exists()  # nothing left to certify


@pytest.mark.django_db
def test_the_void_reason_is_in_the_receipt_language_whoever_refunds():
    """The reason is printed on the Japanese receipt: a refund made from an English page
    still stores it in Japanese."""
    gift = give(ProjectFactory(), 5000, received_at=jst(2026, 11, 1, 12))
    receipt, _ = issue_receipt(gift)

    with translation.override("en"):
        services.refund_gift(gift=gift, amount=5000, actor=finance_user())

    receipt.refresh_from_db()
    with translation.override("ja"):
        japanese = str(Refund.Reason.REQUESTED.label)
    assert receipt.void_reason == japanese != "Requested by the donor"


@pytest.mark.django_db
def test_a_partial_refund_voids_the_receipt_and_issues_one_for_the_rest(
    django_capture_on_commit_callbacks,
):
    gift = give(ProjectFactory(), 5000, received_at=jst(2026, 11, 1, 12))
    old, _ = issue_receipt(gift)

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_gift(gift=gift, amount=2000, actor=finance_user())

    old.refresh_from_db()
    assert old.voided_at is not None
    new = Receipt.objects.get(gift=gift, voided_at__isnull=True)
    assert new.amount == 3000
    assert (new.year, new.number) == (2026, old.number + 1)
    assert new.received_on == dt.date(2026, 11, 1)
    # The new receipt went to the donor; the old one (voided) did not go again.
    assert [m.to for m in mail.outbox] == [[gift.donation.email]]
    assert new.display_number in mail.outbox[0].subject


# --- Annual summary ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_annual_summary_covers_the_years_gifts_net_of_refunds():
    donor = "hanako@example.jp"
    project = ProjectFactory()
    finance = finance_user()
    # 2026-01-01 00:10 in Japan (still 2025 in UTC): in.
    new_year = give(
        None, 1000, email=donor, received_at=dt.datetime(2025, 12, 31, 15, 10, tzinfo=UTC)
    )
    whole = give(project, 5000, email=donor.upper(), received_at=jst(2026, 10, 2, 9))
    partly = give(project, 3000, email=donor, received_at=jst(2026, 11, 3, 9))
    refunded = give(project, 2000, email=donor, received_at=jst(2026, 11, 4, 9))
    services.refund_gift(gift=partly, amount=1000, actor=finance)
    services.refund_gift(gift=refunded, amount=2000, actor=finance)
    # Out: 2027 in Japan (2026 in UTC), the year before, another donor.
    give(project, 7000, email=donor, received_at=dt.datetime(2026, 12, 31, 15, 10, tzinfo=UTC))
    give(project, 7000, email=donor, received_at=jst(2025, 12, 31, 23, 50))
    give(project, 7000, email="someone-else@example.jp", received_at=jst(2026, 10, 5, 9))

    summary = issue_annual_receipt(email=donor, year=2026)

    assert summary.kind == Receipt.Kind.ANNUAL
    assert summary.amount == 1000 + 5000 + 2000
    assert set(summary.gifts.all()) == {new_year, whole, partly}
    assert (summary.year, summary.number) == (2026, 1)
    assert summary.received_on is None


@pytest.mark.django_db
def test_reissuing_the_annual_summary_replaces_the_old_one():
    donor = "taro@example.jp"
    project = ProjectFactory()
    give(project, 5000, email=donor, received_at=jst(2026, 10, 2, 9))
    first = issue_annual_receipt(email=donor, year=2026)

    assert issue_annual_receipt(email=donor, year=2026).pk == first.pk  # nothing changed

    later = give(project, 2500, email=donor, received_at=jst(2026, 12, 20, 9))
    second = issue_annual_receipt(email=donor, year=2026)
    first.refresh_from_db()
    assert first.voided_at is not None and first.void_reason
    assert second.pk != first.pk and second.number == first.number + 1
    assert second.amount == 7500
    assert later in second.gifts.all()
    assert Receipt.objects.filter(kind="annual", voided_at__isnull=True).get() == second

    # A refund of a gift it counts voids it too.
    services.refund_gift(gift=later, amount=500, actor=finance_user())
    second.refresh_from_db()
    assert second.voided_at is not None
    assert issue_annual_receipt(email=donor, year=2026).amount == 7000


@pytest.mark.django_db
def test_no_annual_summary_without_gifts_that_year():
    gift = give(None, 1000, email="x@example.jp", received_at=jst(2026, 10, 2, 9))
    services.refund_gift(gift=gift, amount=1000, actor=finance_user())
    with pytest.raises(ReceiptError):
        issue_annual_receipt(email="x@example.jp", year=2026)
    with pytest.raises(ReceiptError):
        issue_annual_receipt(email="x@example.jp", year=2025)
    assert not Receipt.objects.exists()


# --- Email -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_receipt_is_emailed_once_after_the_gift_commits():
    project = ProjectFactory(title="子ども食堂プロジェクト")
    with transaction.atomic():
        gift = give(project, 12345, email="hanako@example.jp")
        assert mail.outbox == []  # nothing leaves before the gift is committed
        assert not Receipt.objects.exists()

    receipt = Receipt.objects.get(gift=gift)
    assert receipt.emailed_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["hanako@example.jp"]
    assert receipt.display_number in message.subject
    assert "¥12,345" in message.body
    [(filename, content, mimetype)] = message.attachments
    assert mimetype == "application/pdf"
    assert receipt.display_number in filename
    assert receipt.display_number in pdf_text(content)

    # The link opens the donation without an account: absolute, with the signed token.
    donation = gift.donation
    path = reverse("donations:donation", args=[donation.pk])
    [link] = [line for line in message.body.splitlines() if line.startswith(SITE_URL)]
    assert urlsplit(link).path == path
    token = parse_qs(urlsplit(link).query)["t"][0]
    assert signing.loads(token, salt=SIGNING_SALT) == str(donation.pk)

    # The task delivered again (acks_late) sends nothing more.
    assert tasks.email_receipt_task(receipt.pk) is False
    assert send_receipt_email(receipt.pk) is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_no_receipt_and_no_email_when_the_gift_rolls_back():
    project = ProjectFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        give(project, 3000)
        raise RuntimeError("the payment's transaction fails")
    assert mail.outbox == []
    assert not Receipt.objects.exists()
    assert not Gift.objects.exists()


@pytest.mark.django_db
def test_a_failed_send_is_sent_by_the_retry(monkeypatch):
    gift = give(ProjectFactory(), 3000)
    receipt, _ = issue_receipt(gift)

    def broken_send(self, fail_silently=False):
        raise ConnectionError("the mail server is down")

    with monkeypatch.context() as patched:
        patched.setattr("django.core.mail.EmailMessage.send", broken_send)
        with pytest.raises(ConnectionError):
            send_receipt_email(receipt.pk)
    receipt.refresh_from_db()
    assert receipt.emailed_at is None  # the claim was given back
    assert mail.outbox == []

    assert send_receipt_email(receipt.pk) is True
    assert send_receipt_email(receipt.pk) is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_void_receipt_is_not_emailed():
    gift = give(ProjectFactory(), 3000)
    receipt, _ = issue_receipt(gift)
    Receipt.objects.filter(pk=receipt.pk).update(voided_at=timezone.now())
    assert send_receipt_email(receipt.pk) is False
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_annual_summary_email_links_to_the_donors_gifts():
    donor = "hanako@example.jp"
    give(None, 3000, email=donor, received_at=jst(2026, 10, 2, 9))
    summary = issue_annual_receipt(email=donor, year=2026)
    assert send_receipt_email(summary.pk) is True
    [message] = mail.outbox
    assert message.to == [donor]
    assert SITE_URL + reverse("donations:my-gifts") in message.body
    assert summary.display_number in message.subject
    assert "寄附金受領証明書（年間）" in pdf_text(message.attachments[0][1])


# --- The PDF -----------------------------------------------------------------------------------


def test_era_dates():
    assert wareki(dt.date(2019, 4, 30)) == "平成31年4月30日"
    assert wareki(dt.date(2019, 5, 1)) == "令和元年5月1日"
    assert wareki(dt.date(2026, 12, 31)) == "令和8年12月31日"
    assert wareki(dt.date(1989, 1, 7)) == "昭和64年1月7日"


@pytest.mark.django_db
def test_the_receipt_pdf_carries_what_a_tax_office_reads(settings):
    settings.FOUNDATION_NAME = "公益財団法人 テスト基金"
    settings.FOUNDATION_ADDRESS = "〒840-0000 佐賀県佐賀市テスト町1-2"
    settings.FOUNDATION_REPRESENTATIVE = "理事長 試験 一郎"
    settings.FOUNDATION_CERTIFICATION = "佐賀県知事認定 第999号"
    project = ProjectFactory(title="子ども食堂プロジェクト")
    gift = give(
        project,
        12345,
        name="佐賀 花子",
        postal_code="840-0041",
        address="佐賀県佐賀市城内1-1-59",
        received_at=jst(2026, 11, 3, 10),
    )
    receipt, _ = issue_receipt(gift)
    # Issued at 2026-12-31 15:30 UTC: 2027-01-01 in Japan.
    Receipt.objects.filter(pk=receipt.pk).update(
        issued_at=dt.datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    )
    receipt.refresh_from_db()

    data = render_receipt_pdf(receipt)
    text = pdf_text(data)

    assert data.startswith(b"%PDF")
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) == 1
    assert {"/HeiseiMin-W3", "/HeiseiKakuGo-W5"} <= pdf_fonts(data)
    for expected in [
        "寄附金受領証明書",
        "2026-000001",
        "¥12,345",
        "金12,345円",
        "佐賀 花子",
        "〒840-0041",
        "佐賀県佐賀市城内1-1-59",
        "令和8年11月3日（2026年11月3日）",  # received
        "令和9年1月1日（2027年1月1日）",  # issued, in Japan time
        "子ども食堂プロジェクト",
        "公益財団法人 テスト基金",
        "佐賀県佐賀市テスト町1-2",
        "理事長 試験 一郎",
        "佐賀県知事認定 第999号",
        "寄附金控除",
    ]:
        assert expected in text, expected
    assert "無効" not in text and "VOID" not in text
    assert "（年間）" not in text


@pytest.mark.django_db
def test_a_void_receipt_pdf_says_so():
    gift = give(ProjectFactory(), 3000, received_at=jst(2026, 11, 3, 10))
    receipt, _ = issue_receipt(gift)
    services.refund_gift(gift=gift, amount=3000, actor=finance_user())
    receipt.refresh_from_db()

    text = pdf_text(render_receipt_pdf(receipt))

    assert "無効" in text and "VOID" in text
    assert receipt.void_reason in text
    assert receipt.display_number in text


@pytest.mark.django_db
def test_the_annual_pdf_lists_each_gift_net_of_refunds():
    donor = "hanako@example.jp"
    project = ProjectFactory(title="子ども食堂プロジェクト")
    give(project, 4321, email=donor, received_at=jst(2026, 2, 3, 10))
    partly = give(None, 9876, email=donor, received_at=jst(2026, 12, 24, 10))
    services.refund_gift(gift=partly, amount=1000, actor=finance_user())
    summary = issue_annual_receipt(email=donor, year=2026)

    text = pdf_text(render_receipt_pdf(summary))

    assert "寄附金受領証明書（年間）" in text
    assert summary.display_number in text
    assert "令和8年2月3日" in text and "令和8年12月24日" in text
    assert "¥4,321" in text and "¥8,876" in text  # each gift, net
    assert "¥13,197" in text and "金13,197円" in text  # the total
    assert "¥9,876" not in text


@pytest.mark.django_db
def test_donor_text_cannot_break_the_pdf():
    gift = give(
        None, 3000, name="<b>A & B</b>", address="佐賀市 <para>", received_at=jst(2026, 11, 3)
    )
    receipt, _ = issue_receipt(gift)
    text = pdf_text(render_receipt_pdf(receipt))
    assert "<b>A & B</b>" in text


# --- The re-drive: what a lost task left undone ---------------------------------------------------


@pytest.mark.django_db
def test_the_redrive_issues_and_emails_a_receipt_whose_task_never_ran():
    # Recorded in a transaction that never commits here: the receipt task never ran.
    gift = give(ProjectFactory(), 3000)
    assert not Receipt.objects.exists()
    assert tasks.redrive_receipts_task() == (0, 0)  # a task still has its own chance first

    Gift.objects.filter(pk=gift.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    assert tasks.redrive_receipts_task() == (1, 0)
    receipt = Receipt.objects.get(gift=gift)
    assert receipt.amount == 3000
    assert tasks.redrive_receipts_task() == (0, 0)  # nothing twice


@pytest.mark.django_db
def test_the_redrive_emails_a_receipt_never_sent_once():
    gift = give(ProjectFactory(), 3000)
    receipt, _created = receipts.issue_receipt(gift)
    Receipt.objects.filter(pk=receipt.pk).update(issued_at=timezone.now() - dt.timedelta(hours=1))
    refunded = give(ProjectFactory(), 2000, payment_id="pi_refunded")
    services.refund_gift(
        gift=refunded, amount=2000, actor=FoundationRoleFactory(role="finance").user
    )
    Gift.objects.filter(pk=refunded.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    assert tasks.redrive_receipts_task() == (0, 1)  # the refunded gift has nothing to certify
    assert [m.to for m in mail.outbox] == [[gift.donation.email]]
    assert tasks.redrive_receipts_task() == (0, 0)
    assert len(mail.outbox) == 1
