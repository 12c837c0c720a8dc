"""Demo gifts for ``make run``: donors give to the demo projects and the general fund through the
real pipeline, so every page has money to show and ``check_ledger`` has something to check.

Each gift is started by ``services.donation_start`` and paid on the demo provider
(``providers.demo_act``: card, a konbini voucher paid at the store, a monthly gift's second
month), and its event is processed at once by ``services.process_event`` — the webhook
pipeline's own step — so the gifts, ledger entries and history are exactly what a real donor's
would be. The demo finance officer refunds part of one gift through ``services.refund_gift``.
Receipts are issued for the donors who asked for one, without the email.

The gifts are matched as they succeed by the match pools ``fund.demo`` pledged just before
(``planned_gifts`` tells it what is coming, for the pool that ends up nearly spent); the figures
below are given, then raised with the matches (gifts and matches count towards a goal).

A couple of projects are well funded, one is close to its goal with days left, one has a
monthly donor. Donors' emails are at ``DONOR_DOMAIN``; if any donation there exists the
demo gifts are loaded already and nothing is added (a second ``load_demo`` adds no rows).
"""

import copy
import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from fund.demo import demo_projects
from fund.models import Project

from . import providers, receipts, services
from .models import Donation

DONOR_DOMAIN = "demo-donor.example.jp"
FINANCE = "finance@civicfund.example.jp"
CITIZEN = "citizen@example.jp"
GENERAL_FUND = None

# Ways to pay, as the donor does on the demo checkout page.
CARD = ("pay",)
KONBINI = ("pay_later", "store_paid")
KONBINI_UNPAID = ("pay_later",)  # the voucher is issued; the store payment has not come yet
MONTHLY = ("pay", "next_month")  # two monthly payments so far
# How many payments (gifts) each way to pay makes.
PAYMENTS = {CARD: 1, KONBINI: 1, KONBINI_UNPAID: 0, MONTHLY: 2}
GIVABLE = (Project.State.OPEN, Project.State.CLOSED, Project.State.GRANTED)


@dataclass(frozen=True)
class DemoGift:
    slot: int | None  # the fund demo's project (an index into fund.demo.PLAN); None: general
    amount: int
    donor: str  # the email's local part at DONOR_DOMAIN
    name: str
    display_name: str = ""  # shown on the donor wall (publish_name) when set
    message: str = ""
    share_contact: bool = False
    wants_receipt: bool = False
    steps: tuple[str, ...] = CARD
    refund: int = 0  # part of the gift the finance officer gives back
    citizen: bool = False  # given by the demo citizen, signed in (their "my gifts" page)


ADDRESS = "佐賀県佐賀市城内1-1-59"

# Slots of fund.demo.PLAN: 0 open ¥1.6M (10 days left), 1 open ¥800k, 2 open ¥750k (3 days
# left), 3 open ¥2M (closes at its goal), 4 open ¥500k, 5 draft, 6 closed ¥800k, 7 cancelled.
GIFTS: tuple[DemoGift, ...] = (
    # Well funded: ¥1,010,000 given, ¥1,350,000 of ¥1,600,000 with the matches.
    DemoGift(
        0,
        300_000,
        "sagatech",
        "株式会社さがテック",
        "株式会社さがテック",
        "地域の未来を応援しています。",
        share_contact=True,
        wants_receipt=True,
    ),
    DemoGift(0, 200_000, "koga", "古賀 健一", "古賀健一", "子どもたちのために使ってください。"),
    DemoGift(0, 150_000, "nakashima", "中島 美咲", steps=KONBINI),
    DemoGift(0, 100_000, "yamaguchi", "山口 太郎", share_contact=True),
    DemoGift(0, 100_000, "matsuo", "松尾 由美", "まつお"),
    DemoGift(0, 50_000, "tanaka", "田中 誠", "たなか", "がんばってください!"),
    DemoGift(0, 50_000, "ikeda", "池田 直子", share_contact=True),
    DemoGift(0, 30_000, "inoue", "井上 大輔"),
    DemoGift(0, 20_000, "hara", "原 さくら", "さくら", "応援しています。", share_contact=True),
    DemoGift(0, 10_000, "", "佐賀 市民", citizen=True),
    # Modest: ¥165,000 given, ¥270,000 of ¥800,000; a konbini voucher not paid yet.
    DemoGift(1, 100_000, "eguchi", "江口 翔太", "江口翔太", share_contact=True),
    DemoGift(1, 30_000, "mori", "森 千尋"),
    DemoGift(1, 20_000, "yoshida", "吉田 浩二", steps=KONBINI),
    DemoGift(1, 10_000, "kitamura", "北村 愛", "あい", "素敵な取り組みですね。"),
    DemoGift(1, 5_000, "sakai", "坂井 剛"),
    DemoGift(1, 8_000, "kubo", "久保 真理子", steps=KONBINI_UNPAID),
    # Close to its goal with three days left: ¥470,000 given, ¥695,000 of ¥750,000.
    DemoGift(
        2,
        200_000,
        "maeda",
        "前田 亮",
        share_contact=True,
        wants_receipt=True,
    ),
    DemoGift(2, 100_000, "noguchi", "野口 綾", "野口綾", "目標達成まであと少し!"),
    DemoGift(2, 80_000, "oka", "岡 拓海"),
    DemoGift(2, 50_000, "miyazaki", "宮崎 陽子", "みやざき", share_contact=True),
    DemoGift(2, 30_000, "ishibashi", "石橋 健太", steps=KONBINI),
    DemoGift(2, 10_000, "saga", "佐賀 花子", "はなこ", "少しですが応援します。"),
    # Just started: a monthly donor (two months so far) and one more.
    DemoGift(3, 5_000, "nakamura", "中村 優", "ゆう", "毎月応援します。", steps=MONTHLY),
    DemoGift(3, 30_000, "fujita", "藤田 恵", share_contact=True),
    # Well funded after a partial refund: ¥255,000 kept, ¥422,000 of ¥500,000.
    DemoGift(4, 100_000, "okawa", "大川 修", "大川修"),
    DemoGift(4, 80_000, "matsumoto", "松本 香織", share_contact=True),
    DemoGift(4, 50_000, "kobayashi", "小林 弘", refund=20_000),
    DemoGift(4, 30_000, "murakami", "村上 葵", "あおい", "地元の子どもたちに届きますように。"),
    DemoGift(4, 15_000, "yamamoto", "山本 勇気"),
    # Closed under its goal: ¥380,000 given while it was open, ¥580,000 of ¥800,000.
    DemoGift(6, 200_000, "sato", "佐藤 誠一", wants_receipt=True),
    DemoGift(6, 100_000, "takahashi", "高橋 美和", "高橋美和", share_contact=True),
    DemoGift(6, 50_000, "watanabe", "渡辺 淳"),
    DemoGift(6, 30_000, "ito", "伊藤 真由", "まゆ"),
    # The general fund.
    DemoGift(GENERAL_FUND, 10_000, "suzuki", "鈴木 一郎", wants_receipt=True),
    DemoGift(GENERAL_FUND, 5_000, "kimura", "木村 陽菜", "ひな", "佐賀のために。"),
    DemoGift(GENERAL_FUND, 3_000, "hayashi", "林 悠斗", steps=KONBINI),
)


def _as_it_was_open(project: Project) -> Project:
    """A closed (or granted) project's gifts came while it was open. ``donation_start`` checks
    the project as it was then — open, in its window; all that follows is the live pipeline."""
    if project.state == Project.State.OPEN:
        return project
    then = copy.copy(project)
    now = timezone.now()
    then.state = Project.State.OPEN
    then.opens_at = min(project.opens_at, now)
    then.closes_at = now + dt.timedelta(minutes=1)
    return then


def _act(session_id: str, action: str) -> None:
    """The donor's click on the demo checkout page, and the webhook pipeline's processing of the
    event it sends, now rather than after the load's transaction commits."""
    event_id = providers.demo_act(session_id, action)
    if event_id is not None:
        services.process_event(event_id)


def _urls(project: Project | None) -> tuple[str, str]:
    placeholder = str(uuid.UUID(int=0))
    thanks = reverse("donations:thanks", args=[placeholder]).replace(placeholder, "{donation_id}")
    if project is None:
        return thanks, reverse("donations:give-general")
    return thanks, reverse("donations:project-detail", args=[project.pk])


def _to_give(
    projects: dict[int, Project], *, citizen: User | None
) -> list[tuple[DemoGift, Project | None]]:
    """The demo gifts that can be given, each with its project (None: the general fund)."""
    chosen = []
    for spec in GIFTS:
        if spec.slot is GENERAL_FUND:
            project = None
        elif spec.slot in projects and projects[spec.slot].state in GIVABLE:
            project = projects[spec.slot]
        else:
            continue  # the fund demo has no such project (a smaller register)
        if spec.citizen and citizen is None:
            continue
        chosen.append((spec, project))
    return chosen


def planned_gifts() -> dict[int, list[tuple[int, int]]]:
    """What ``load_donations_demo`` will give to each demo project, by ``fund.demo.PLAN`` slot:
    (yen, yen of it refunded) per payment — so ``fund.demo`` can pledge the nearly spent match
    pool before the gifts are made. Empty once the demo gifts are loaded."""
    if Donation.objects.filter(email__iendswith=f"@{DONOR_DOMAIN}").exists():
        return {}
    citizen = User.objects.filter(email=CITIZEN).first()
    planned: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for spec, project in _to_give(demo_projects(), citizen=citizen):
        if project is None:
            continue
        for n in range(PAYMENTS[spec.steps]):
            planned[spec.slot].append((spec.amount, spec.refund if n == 0 else 0))
    return dict(planned)


@transaction.atomic
def load_donations_demo() -> dict[str, int]:
    """Give the demo gifts, once; returns how many donations, gifts and refunds were new."""
    if Donation.objects.filter(email__iendswith=f"@{DONOR_DOMAIN}").exists():
        return {"demo_donations": 0, "demo_gifts": 0, "demo_refunds": 0}
    finance = User.objects.get(email=FINANCE)
    citizen = User.objects.filter(email=CITIZEN).first()
    donations = gifts = refunds = 0
    for spec, project in _to_give(demo_projects(), citizen=citizen):
        success_url, cancel_url = _urls(project)
        donation = services.donation_start(
            project=_as_it_was_open(project) if project is not None else None,
            amount=spec.amount,
            frequency=Donation.Frequency.MONTHLY
            if spec.steps == MONTHLY
            else Donation.Frequency.ONCE,
            donor=services.DonorDetails(
                email=CITIZEN if spec.citizen else f"{spec.donor}@{DONOR_DOMAIN}",
                name=spec.name,
                address=ADDRESS if spec.wants_receipt else "",
                postal_code="840-0041" if spec.wants_receipt else "",
                display_name=spec.display_name,
                publish_name=bool(spec.display_name),
                message=spec.message,
                share_contact=spec.share_contact,
                wants_receipt=spec.wants_receipt,
            ),
            user=citizen if spec.citizen else None,
            success_url=success_url,
            cancel_url=cancel_url,
            rate_limited=False,
        )
        donations += 1
        for action in spec.steps:
            _act(donation.checkout_session_id, action)
        received = list(donation.gifts.order_by("received_at", "pk"))
        gifts += len(received)
        if spec.wants_receipt:
            # Issued now, as the receipt task would; the task that runs after the load finds it
            # issued and sends no email (demo donors' addresses do not exist).
            for gift in received:
                receipts.issue_receipt(gift)
        if spec.refund and received:
            services.refund_gift(
                gift=received[0], amount=spec.refund, actor=finance, reason="requested"
            )
            refunds += 1
    return {"demo_donations": donations, "demo_gifts": gifts, "demo_refunds": refunds}
