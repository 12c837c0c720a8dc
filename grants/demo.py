"""Demo grants for ``make run``: a grant at every stage, so every grants page has work to show.

Loaded by ``manage.py load_demo`` after the projects, pools and gifts (``fund.demo``,
``donations.demo``). Everything goes through ``grants.services`` as the demo staff and CSO would
do it on the pages — the programme officer proposes and reviews reports, the approver approves,
finance confirms bank accounts and makes, downloads and settles transfer batches, the CSO's admin
enters the bank account and its member files the reports — so the ledger, the history and the
proposal's assessment (for the closed grant) are real.

The grants are on the fund demo's projects that raised money (``fund.demo.PLAN`` slots). The
fund demo closes only one; the others a grant needs are closed here by the programme officer,
as ``fund.services.project_transition`` does on the staff page. The project with three days left
(slot 2) stays open, so the public pages still have a project to give to.

Idempotent: a demo grant is known by its purpose (``DemoGrant.purpose``); if any is there, the
grants are loaded already and none is added. The CSO's memberships, bank accounts and the
pending account change are each added only when missing.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from fund import ledger
from fund.demo import FINANCE, PROGRAMME_OFFICER, demo_projects
from fund.models import Project
from fund.services import project_transition
from proposals.fiscal import JAPAN

from . import services, zengin
from .models import BankAccount, Grant, Report, Tranche, TransferBatch

APPROVER = "approver@civicfund.example.jp"
CSO_ADMIN = "cso-admin@npo.example.jp"
CSO_MEMBER = "cso-member@npo.example.jp"

# The stages, in the order a grant goes through them.
PROPOSED, APPROVED, PART_PAID, REPORTED, CLOSED = (
    "proposed",
    "approved",
    "part_paid",
    "reported",
    "closed",
)
GENERAL = "general_fund"


@dataclass(frozen=True)
class DemoGrant:
    stage: str
    slot: int | None  # the fund demo's project (fund.demo.PLAN); None: from the general fund
    purpose: str  # after the project's title in 「」; unique: it marks the demo grant


GRANTS: tuple[DemoGrant, ...] = (
    # On a prefecture proposal of the demo CSO: the prefecture's demo officer and the CSO's
    # demo logins both see its outcome written back to the register.
    DemoGrant(
        CLOSED,
        0,
        "の実施。地域の自治会・見守りボランティアへの聞き取り調査と、結果を共有する報告会の"
        "開催に要する経費(調査員謝金・会場費・報告書印刷費)。",
    ),
    DemoGrant(
        REPORTED,
        6,
        "の実施。子ども食堂と連携した体験講座(年12回)の運営と、参加する子どもの送迎・"
        "ボランティア保険料・教材費。",
    ),
    DemoGrant(
        PART_PAID,
        4,
        "の実施。高齢者の見守りを兼ねた地域交流サロンの開設(月2回)と、担い手となる"
        "ボランティアの養成講座に要する経費。",
    ),
    DemoGrant(
        APPROVED,
        1,
        "の実施。若手の担い手を募る公開講座と作品展の開催、会場費・講師謝金・広報費。",
    ),
    DemoGrant(
        PROPOSED,
        3,
        "の実施。ひとり親家庭を対象とした相談会と子ども食堂での交流会の開催、"
        "託児ボランティアの保険料・会場費。",
    ),
    DemoGrant(
        GENERAL,
        None,
        "災害ボランティアセンターの立ち上げ訓練と資機材(スコップ・土のう袋・"
        "ヘルメット等)の備蓄。一般寄附(使途を指定しない寄附)からの助成。",
    ),
)

# Bank accounts the CSO's admin enters (佐賀銀行 branches, from the published code list); the
# holder's name as on the passbook, in kana (the service turns it into bank kana).
ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("0179", "500", "トクヒ)サガチイキミマモリネット"),
    ("0179", "601", "トクヒ)サガコドモシヨクドウネット"),
    ("0179", "603", "トクヒ)サガシミンカツドウサポート"),
    ("0179", "607", "イツパンシヤダンホウジン)サガミライ"),
    ("0190", "010", "トクヒ)サガサイガイボランテイア"),
)
# The account the CSO of the closed grant has changed to; finance has not confirmed it yet.
CHANGED_ACCOUNT = ("0190", "001", "トクヒ)サガチイキミマモリネット")

INTERIM_REPORT = (
    "上半期は計画どおり活動を始めました。地域の自治会・学校と打合せを重ね、"
    "参加者の募集チラシを配布しました(約1,200部)。ボランティア向けの事前研修を2回開き、"
    "延べ34人が参加しました。",
    "講座・交流会を6回開催し、延べ182人(うち子ども97人)が参加しました。"
    "参加者アンケートでは9割以上が「また参加したい」と回答しました。"
    "下半期は見守り訪問を加え、参加の少ない地区での開催を増やします。",
)
FINAL_REPORTS = {
    REPORTED: (
        "年間12回の講座を予定どおり開催し、子ども食堂2か所と連携して食事の提供と学習支援を"
        "行いました。ボランティアは延べ96人が活動し、送迎は保護者の協力も得て実施しました。",
        "延べ412人(うち子ども251人)が参加し、うち38人は初めて地域の活動に参加した子ども"
        "でした。連携先の子ども食堂は来年度から月2回の開催に増やします。"
        "経費は計画の範囲内で執行し、収支報告書を添えて報告します。",
    ),
    CLOSED: (
        "自治会18団体と見守りボランティア42人に聞き取り調査を行い、結果を報告書"
        "(300部)にまとめました。報告会は市内2会場で開き、延べ126人が参加しました。",
        "一人暮らし高齢者の見守りで連携が不足している地区が3つ分かり、うち2地区で"
        "自治会と民生委員による見守りの当番表づくりが始まりました。"
        "報告書は市の地域福祉計画の見直しの資料として活用される予定です。",
    ),
}
REVIEW_NOTE = "報告を確認しました。成果が具体的に示されています。ありがとうございました。"
INTERIM_REVIEW_NOTE = "中間報告を確認しました。第2回の支払いに進みます。"


def demo_grants() -> dict[str, Grant]:
    """The demo's grants (not cancelled) by stage, found by their purposes."""
    found = {}
    for spec in GRANTS:
        grant = (
            Grant.objects.filter(purpose__endswith=spec.purpose)
            .exclude(state=Grant.State.CANCELLED)
            .first()
        )
        if grant is not None:
            found[spec.stage] = grant
    return found


def _user(email: str) -> User:
    # A fresh object each time: the roles are cached on it, and memberships change here.
    return User.objects.get(email=email)


def _has_money(project: Project) -> bool:
    return services.grant_terms(project).amount_yen > 0


def _chosen() -> list[tuple[DemoGrant, Project | None]]:
    """The demo grants that can be made, each with its project (None: the general fund)."""
    projects = demo_projects()
    chosen = []
    for spec in GRANTS:
        if spec.slot is None:
            chosen.append((spec, None))
            continue
        project = projects.get(spec.slot)
        if project is None or project.state not in (Project.State.OPEN, Project.State.CLOSED):
            continue  # a smaller register, or the project was granted by hand
        if not _has_money(project):
            continue
        chosen.append((spec, project))
    return chosen


def _demo_cso() -> Organization | None:
    """The demo CSO: the organisation the demo CSO admin belongs to (accounts.demo)."""
    membership = (
        Membership.objects.filter(user__email=CSO_ADMIN, role=Membership.Role.ADMIN)
        .order_by("pk")
        .select_related("organization")
        .first()
    )
    return membership.organization if membership is not None else None


def _ensure_members(organization: Organization) -> int:
    """The demo CSO's people act for every demo grantee: its admin enters the bank account, its
    member files the reports. Returns how many memberships were new."""
    created = 0
    for email, role in ((CSO_ADMIN, Membership.Role.ADMIN), (CSO_MEMBER, Membership.Role.MEMBER)):
        _membership, new = Membership.objects.get_or_create(
            user=_user(email), organization=organization, defaults={"role": role}
        )
        created += new
    return created


def _account_number(organization: Organization, salt: int = 0) -> str:
    return f"{(organization.pk * 7919 + 1_203_000 + salt * 104_729) % 10_000_000:07d}"


def _ensure_confirmed_account(organization: Organization, index: int) -> int:
    """Entered by the CSO's admin, confirmed by finance; returns 1 if it was new."""
    if services.confirmed_account(organization.pk) is not None:
        return 0
    bank, branch, holder = ACCOUNTS[index % len(ACCOUNTS)]
    account = services.bank_account_submit(
        organization=organization,
        actor=_user(CSO_ADMIN),
        bank_code=bank,
        branch_code=branch,
        account_type=BankAccount.AccountType.ORDINARY,
        account_number=_account_number(organization),
        holder_kana=holder,
    )
    services.bank_account_confirm(account=account, actor=_user(FINANCE))
    return 1


def _ensure_pending_change(organization: Organization) -> int:
    """A change of account the CSO's admin has entered and finance has yet to confirm."""
    if BankAccount.objects.filter(
        organization=organization, state=BankAccount.State.PENDING
    ).exists():
        return 0
    bank, branch, holder = CHANGED_ACCOUNT
    services.bank_account_submit(
        organization=organization,
        actor=_user(CSO_ADMIN),
        bank_code=bank,
        branch_code=branch,
        account_type=BankAccount.AccountType.ORDINARY,
        account_number=_account_number(organization, salt=1),
        holder_kana=holder,
    )
    return 1


def _split(amount: int, share_percent: int) -> tuple[int, int]:
    """Two tranches: the first ``share_percent`` of the grant, rounded down to ¥1,000 (the whole
    grant if that leaves nothing), the second the rest."""
    first = amount * share_percent // 100 // 1_000 * 1_000
    if first < 1 or first >= amount:
        return amount, 0
    return first, amount - first


def _schedule(
    amount: int, first_due: dt.date, second_due: dt.date, *, second_needs_report: bool
) -> list[services.TrancheTerms]:
    first, second = _split(amount, 50)
    tranches = [services.TrancheTerms(first, first_due)]
    if second:
        tranches.append(services.TrancheTerms(second, second_due, second_needs_report))
    return tranches


def _pay(tranches: list[Tranche], *, on: dt.date) -> TransferBatch:
    """Finance batches the tranches, downloads the Zengin file and records the bank's payment.

    A payment is recorded on or after its transfer date, which may not have come yet when the
    demo loads (a weekend): the demo plays that day out, with the services' clock set to it."""
    finance = _user(FINANCE)
    batch = services.batch_create(transfer_date=on, tranches=tranches, actor=finance)
    services.batch_export(batch=batch, actor=finance)
    real_today = services.today
    services.today = lambda: on
    try:
        services.batch_mark_paid(batch=batch, actor=finance)
    finally:
        services.today = real_today
    return batch


def _file_report(grant: Grant, kind: str, texts: tuple[str, str], spent: int) -> Report:
    report = grant.reports.get(kind=kind)
    return services.report_submit(
        report=report,
        actor=_user(CSO_MEMBER),
        narrative=texts[0],
        outcomes=texts[1],
        spent_yen=spent,
    )


def _general_fund_amount() -> int:
    """Three quarters of what the general fund holds, in thousands of yen, at most ¥100,000."""
    return min(ledger.balance(services.GENERAL_FUND) * 3 // 4 // 1_000 * 1_000, 100_000)


@transaction.atomic
def load_grants_demo() -> dict[str, int]:
    """Make the demo grants, once; returns how many grants, batches, reports, bank accounts,
    memberships and closed projects were new."""
    counts = dict.fromkeys(
        (
            "demo_projects_closed",
            "demo_cso_memberships",
            "demo_bank_accounts",
            "demo_grants",
            "demo_transfer_batches",
            "demo_grant_reports",
        ),
        0,
    )
    officer = _user(PROGRAMME_OFFICER)
    today = timezone.localdate(timezone=JAPAN)
    pay_day = zengin.next_bank_business_day(today)
    if demo_grants():
        return counts  # loaded already
    chosen = _chosen()
    demo_cso = _demo_cso()

    # The grantees: the demo CSO's people are their members, so reports can be filed.
    grantees: dict[str, Organization] = {}
    for spec, project in chosen:
        if project is not None:
            grantees[spec.stage] = project.proposal.organization
        elif demo_cso is not None:
            grantees[spec.stage] = demo_cso
    chosen = [(spec, project) for spec, project in chosen if spec.stage in grantees]
    for organization in {org.pk: org for org in grantees.values()}.values():
        counts["demo_cso_memberships"] += _ensure_members(organization)

    # The fund demo closes one project; a grant needs its project closed.
    for i, (spec, project) in enumerate(chosen):
        if project is not None and project.state == Project.State.OPEN:
            chosen[i] = (
                spec,
                project_transition(
                    project=project,
                    action="close",
                    actor=officer,
                    note="助成に向けて募集を終了しました(デモ)。",
                ),
            )
            counts["demo_projects_closed"] += 1

    # Every grantee but the one still being proposed to has a confirmed account.
    for index, (stage, organization) in enumerate(grantees.items()):
        if stage != PROPOSED:
            counts["demo_bank_accounts"] += _ensure_confirmed_account(organization, index)

    grants: dict[str, Grant] = {}
    for spec, project in chosen:
        grant = _propose(spec, project, grantees[spec.stage], today=today)
        if grant is None:
            continue
        grants[spec.stage] = grant
        counts["demo_grants"] += 1
        if spec.stage != PROPOSED:
            services.grant_approve(
                grant=grant, actor=_user(APPROVER), note="審査会の意見を踏まえ承認します。"
            )

    # The first transfers: the part-paid grant's first tranche, the reported grant's first and
    # the closed grant's only one — one batch, downloaded and paid.
    first = [
        grants[stage].tranches.get(number=1)
        for stage in (PART_PAID, REPORTED, CLOSED)
        if stage in grants
    ]
    if first:
        _pay(first, on=pay_day)
        counts["demo_transfer_batches"] += 1

    reported = grants.get(REPORTED)
    if reported is not None:
        if reported.reports.filter(kind=Report.Kind.INTERIM).exists():
            interim = _file_report(
                reported, Report.Kind.INTERIM, INTERIM_REPORT, reported.amount_yen * 2 // 5
            )
            services.report_accept(report=interim, actor=officer, note=INTERIM_REVIEW_NOTE)
            counts["demo_grant_reports"] += 1
        rest = list(reported.tranches.filter(state=Tranche.State.SCHEDULED))
        if rest:
            _pay(rest, on=pay_day)
            counts["demo_transfer_batches"] += 1
        _file_report(reported, Report.Kind.FINAL, FINAL_REPORTS[REPORTED], reported.amount_yen)
        counts["demo_grant_reports"] += 1

    closed = grants.get(CLOSED)
    if closed is not None:
        final = _file_report(closed, Report.Kind.FINAL, FINAL_REPORTS[CLOSED], closed.amount_yen)
        services.report_accept(report=final, actor=officer, note=REVIEW_NOTE)
        counts["demo_grant_reports"] += 1

    # One change of bank account awaiting finance: the closed grant's CSO (nothing left to pay
    # it), or else any demo grantee with a confirmed account.
    change_for = grantees.get(CLOSED) or next(
        (org for stage, org in grantees.items() if stage != PROPOSED), None
    )
    if change_for is not None:
        counts["demo_bank_accounts"] += _ensure_pending_change(change_for)
    return counts


def _propose(
    spec: DemoGrant, project: Project | None, organization: Organization, *, today: dt.date
) -> Grant | None:
    """The programme officer proposes the demo grant, with dates that fit its stage."""
    officer = _user(PROGRAMME_OFFICER)
    day = dt.timedelta(days=1)
    if project is None:
        amount = _general_fund_amount()
        if amount < 1_000:
            return None  # the general fund holds (almost) nothing
        return services.grant_propose(
            actor=officer,
            organization=organization,
            purpose=spec.purpose,
            amount_yen=amount,
            ends_on=today + 120 * day,
            tranches=[services.TrancheTerms(amount, today + 14 * day)],
        )
    amount = services.grant_terms(project).amount_yen
    purpose = f"「{project.title}」{spec.purpose}"
    if spec.stage == CLOSED:
        # Ended three weeks ago, paid in one transfer; the final report is in.
        ends_on = today - 21 * day
        tranches = [services.TrancheTerms(amount, today - 120 * day)]
        interim_due = None
    elif spec.stage == REPORTED:
        # Ended last week; paid in two, the second after the interim report was accepted.
        ends_on = today - 7 * day
        tranches = _schedule(amount, today - 150 * day, today - 40 * day, second_needs_report=True)
        interim_due = today - 60 * day
    elif spec.stage == PART_PAID:
        ends_on = today + 150 * day
        tranches = _schedule(amount, today - 7 * day, today + 75 * day, second_needs_report=True)
        interim_due = today + 60 * day
    elif spec.stage == APPROVED:
        # The first tranche is due today: finance has it to pay.
        ends_on = today + 180 * day
        tranches = _schedule(amount, today, today + 100 * day, second_needs_report=True)
        interim_due = today + 90 * day
    else:  # PROPOSED
        ends_on = today + 210 * day
        tranches = _schedule(amount, today + 14 * day, today + 120 * day, second_needs_report=True)
        interim_due = today + 100 * day
    if len(tranches) < 2:
        interim_due = None  # one tranche (a small grant): no interim report
    return services.grant_propose(
        actor=officer,
        project=project,
        purpose=purpose,
        ends_on=ends_on,
        tranches=tranches,
        interim_report_due=interim_due,
        final_report_due=ends_on + 30 * day,
    )
