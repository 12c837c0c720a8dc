"""Every write of the grants app (DOMAIN.md §4): grants, tranches, bank accounts, transfer
batches and reports. Each function checks who may act (``accounts.policy``), locks what it
changes, writes a history row, and raises ``ValidationError``/``PermissionDenied`` having
written nothing.

Money: approval posts the grant and the fee (designated or general fund → grant_payable,
fee_income); a paid transfer line posts grant_payable → bank; cancelling posts back what was not
paid. Each entry has a key of its own (``grant:<id>:approved``, ``tranche:<id>:paid`` …), and
each state change is a conditional update or a locked row, so a double click or two clerks at
once cannot post twice.

Rounding (the one place): the fee is the gifts' fee rate rounded down to the yen — in the
CSO's favour (``grant_terms``). Matches carry no fee.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from accounts.policy import may
from fund.ledger import EntryKind, Line, balance, designated, post_entry
from fund.models import Project
from fund.selectors import raised_and_matched
from fund.services import project_transition
from proposals.services import FundOutcome, record_fund_outcome

from . import zengin
from .models import (
    BankAccount,
    BankAccountEvent,
    Clawback,
    Grant,
    GrantEvent,
    Report,
    ReportAttachment,
    Tranche,
    TransferBatch,
    TransferBatchEvent,
    TransferLine,
)

GENERAL_FUND = "general_fund"
FINAL_REPORT_WITHIN = relativedelta(months=2)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ATTACHMENT_TYPES = (".pdf", ".jpg", ".jpeg", ".png", ".xlsx", ".docx", ".csv", ".txt")


def today() -> dt.date:
    """Today in Japan: the one clock of the transfer rules (a batch is not dated in the past; a
    transfer is not recorded as made before its date). Tests and the demo loader, which play
    out days that have not come yet, replace it."""
    return timezone.localdate()


def _require(actor: User | None, action: str, obj: Any = None, message: str = "") -> None:
    if actor is None or not may(actor, action, obj):
        raise PermissionDenied(message or _("You may not do this."))


def _is_whole_yen(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _event(grant: Grant, action: str, *, actor: User | None, **kw: Any) -> GrantEvent:
    return GrantEvent.objects.create(grant=grant, action=action, actor=actor, **kw)


# --- Terms ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantTerms:
    gifts_yen: int
    fee_rate_bp: int
    fee_yen: int
    matched_yen: int

    @property
    def amount_yen(self) -> int:
        return self.gifts_yen - self.fee_yen + self.matched_yen


def grant_terms(project: Project) -> GrantTerms:
    """What a closed project's grant would be: its gifts (less refunds) less the fee, rounded
    down, plus its matches (less releases)."""
    raised, matched = raised_and_matched([project.pk]).get(project.pk, (0, 0))
    gifts = raised - matched
    fee = gifts * project.fee_rate_bp // 10_000
    return GrantTerms(
        gifts_yen=gifts, fee_rate_bp=project.fee_rate_bp, fee_yen=fee, matched_yen=matched
    )


@dataclass(frozen=True)
class TrancheTerms:
    amount_yen: int
    due_on: dt.date
    requires_report: bool = False


def _validate_schedule(amount: int, tranches: Sequence[TrancheTerms]) -> None:
    if not tranches:
        raise ValidationError({"tranches": _("A grant is paid in at least one tranche.")})
    for i, t in enumerate(tranches, start=1):
        if not _is_whole_yen(t.amount_yen) or t.amount_yen < 1:
            raise ValidationError(
                {"tranches": _("Tranche %(n)s: the amount is whole yen, at least ¥1.") % {"n": i}}
            )
        if i > 1 and t.due_on < tranches[i - 2].due_on:
            raise ValidationError(
                {"tranches": _("Tranche %(n)s is dated before the one before it.") % {"n": i}}
            )
    if tranches[0].requires_report:
        raise ValidationError(
            {"tranches": _("The first tranche cannot wait for a report: none is due before it.")}
        )
    total = sum(t.amount_yen for t in tranches)
    if total != amount:
        raise ValidationError(
            {
                "tranches": _("The tranches add up to ¥%(total)s, not the grant's ¥%(amount)s.")
                % {"total": f"{total:,}", "amount": f"{amount:,}"}
            }
        )


def _validate_reports(
    ends_on: dt.date, final_due: dt.date | None, interim_due: dt.date | None
) -> dt.date:
    latest = ends_on + FINAL_REPORT_WITHIN
    final_due = final_due or latest
    if final_due > latest:
        raise ValidationError(
            {
                "final_report_due": _(
                    "The final report is due within two months of the project's end (by %(date)s)."
                )
                % {"date": latest.isoformat()}
            }
        )
    if final_due < ends_on:
        raise ValidationError(
            {"final_report_due": _("The final report is due after the project has ended.")}
        )
    if interim_due is not None and interim_due >= final_due:
        raise ValidationError(
            {"interim_report_due": _("The interim report is due before the final one.")}
        )
    return final_due


# --- Grants --------------------------------------------------------------------------------------


@transaction.atomic
def grant_propose(
    *,
    actor: User,
    ends_on: dt.date,
    tranches: Sequence[TrancheTerms],
    project: Project | None = None,
    organization: Organization | None = None,
    purpose: str = "",
    amount_yen: Any = None,
    final_report_due: dt.date | None = None,
    interim_report_due: dt.date | None = None,
) -> Grant:
    """A programme officer proposes a grant: for a closed project (its terms computed from the
    ledger), or from the general fund to a CSO for a stated purpose."""
    _require(actor, "grant.propose", message=_("Only programme officers propose grants."))
    purpose = (purpose or "").strip()
    if project is not None:
        project = Project.objects.select_for_update().select_related("proposal").get(pk=project.pk)
        if project.state != Project.State.CLOSED:
            raise ValidationError(
                {"project": _("A grant is proposed for a project once its fundraising is closed.")}
            )
        terms = grant_terms(project)
        if terms.amount_yen < 1:
            raise ValidationError({"project": _("This project has raised nothing to grant.")})
        if balance(designated(project)) != terms.gifts_yen + terms.matched_yen:
            raise ValidationError(
                {"project": _("Part of this project's money is already granted.")}
            )
        grant = Grant(
            source=Grant.Source.DESIGNATED,
            project=project,
            organization_id=project.proposal.organization_id,
            purpose=purpose or project.title,
            gifts_yen=terms.gifts_yen,
            fee_rate_bp=terms.fee_rate_bp,
            fee_yen=terms.fee_yen,
            matched_yen=terms.matched_yen,
            amount_yen=terms.amount_yen,
        )
    else:
        if organization is None:
            raise ValidationError({"organization": _("Choose the CSO the grant is for.")})
        if not purpose:
            raise ValidationError(
                {"purpose": _("A grant from the general fund states its purpose.")}
            )
        if not _is_whole_yen(amount_yen) or amount_yen < 1:
            raise ValidationError({"amount_yen": _("The amount is whole yen, at least ¥1.")})
        available = balance(GENERAL_FUND)
        if amount_yen > available:
            raise ValidationError(
                {
                    "amount_yen": _("The general fund holds ¥%(available)s.")
                    % {"available": f"{available:,}"}
                }
            )
        grant = Grant(
            source=Grant.Source.GENERAL_FUND,
            organization=organization,
            purpose=purpose,
            amount_yen=amount_yen,
        )
    grant.ends_on = ends_on
    grant.proposed_by = actor
    final_due = _validate_reports(ends_on, final_report_due, interim_report_due)
    _validate_schedule(grant.amount_yen, tranches)
    try:
        with transaction.atomic():
            grant.save()
    except IntegrityError:
        raise ValidationError({"project": _("This project already has a grant.")}) from None
    Tranche.objects.bulk_create(
        Tranche(
            grant=grant,
            number=i,
            amount_yen=t.amount_yen,
            due_on=t.due_on,
            requires_report=t.requires_report,
        )
        for i, t in enumerate(tranches, start=1)
    )
    if interim_report_due is not None:
        Report.objects.create(grant=grant, kind=Report.Kind.INTERIM, due_on=interim_report_due)
    Report.objects.create(grant=grant, kind=Report.Kind.FINAL, due_on=final_due)
    _event(grant, "propose", to_state=grant.state, actor=actor)
    return grant


def _locked(grant: Grant) -> Grant:
    return Grant.objects.select_for_update(of=("self",)).select_related("project").get(pk=grant.pk)


@transaction.atomic
def grant_approve(*, grant: Grant, actor: User, note: str = "") -> Grant:
    """An approver — never the one who proposed it — approves; the grant and the fee are posted
    and the project is marked granted."""
    _require(actor, "grant.approve", grant, _("Only approvers approve grants."))
    grant = _locked(grant)
    if grant.proposed_by_id == actor.pk:
        raise PermissionDenied(_("You proposed this grant: another approver must approve it."))
    if grant.state != Grant.State.PROPOSED:
        raise ValidationError(_("Only a proposed grant can be approved."))
    if grant.project is not None:
        terms = grant_terms(grant.project)
        if (terms.gifts_yen, terms.fee_yen, terms.matched_yen) != (
            grant.gifts_yen,
            grant.fee_yen,
            grant.matched_yen,
        ):
            raise ValidationError(
                _(
                    "The project's money has changed since this grant was proposed (a refund?): "
                    "cancel it and propose it again."
                )
            )
        source_account = designated(grant.project)
        lines = [Line(source_account, debit=grant.gifts_yen + grant.matched_yen)]
        lines.append(Line(grant.payable_account, credit=grant.amount_yen))
        if grant.fee_yen:
            lines.append(Line("fee_income", credit=grant.fee_yen))
    else:
        lines = [
            Line(GENERAL_FUND, debit=grant.amount_yen),
            Line(grant.payable_account, credit=grant.amount_yen),
        ]
    post_entry(
        kind=EntryKind.GRANT_APPROVED,
        key=f"grant:{grant.pk}:approved",
        lines=lines,
        memo=f"{grant} {grant.purpose[:80]}",
        actor=actor,
    )
    if grant.project is not None:
        project_transition(project=grant.project, action="grant", actor=actor, note=str(grant))
    grant.state = Grant.State.APPROVED
    grant.approved_by = actor
    grant.approved_at = timezone.now()
    grant.save(update_fields=["state", "approved_by", "approved_at"])
    _event(grant, "approve", from_state="proposed", to_state=grant.state, actor=actor, note=note)
    return grant


def _source_account(grant: Grant) -> str:
    return designated(grant.project) if grant.project is not None else GENERAL_FUND


@transaction.atomic
def grant_cancel(*, grant: Grant, actor: User, reason: str) -> Grant:
    """Cancel a grant. Proposed: nothing was posted. Approved and nothing paid: the grant and
    its fee go back where they came from, and the project can be granted again. Partly paid: what
    was not paid goes back (the fee stays); paid tranches can be clawed back
    (``clawback_record``)."""
    _require(actor, "grant.cancel", grant, _("You may not cancel grants."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the grant is cancelled.")})
    grant = _locked(grant)
    if grant.state not in (Grant.State.PROPOSED, Grant.State.APPROVED):
        raise ValidationError(_("Only a proposed or approved grant can be cancelled."))
    tranches = list(grant.tranches.select_for_update())
    if any(t.state == Tranche.State.IN_BATCH for t in tranches):
        raise ValidationError(
            _("A tranche is in a transfer batch: mark it paid or failed before cancelling.")
        )
    from_state = grant.state
    if from_state == Grant.State.APPROVED:
        unpaid = sum(t.amount_yen for t in tranches if t.state == Tranche.State.SCHEDULED)
        nothing_paid = all(t.state != Tranche.State.PAID for t in tranches)
        lines = []
        if unpaid:
            lines.append(Line(grant.payable_account, debit=unpaid))
        fee_back = grant.fee_yen if nothing_paid else 0
        if fee_back:
            lines.append(Line("fee_income", debit=fee_back))
        if lines:
            lines.append(Line(_source_account(grant), credit=unpaid + fee_back))
            post_entry(
                kind=EntryKind.GRANT_CANCELLED,
                key=f"grant:{grant.pk}:cancelled",
                lines=lines,
                memo=f"{grant} {reason[:80]}",
                actor=actor,
            )
        if grant.project is not None and nothing_paid:
            project_transition(project=grant.project, action="ungrant", actor=actor, note=reason)
    Tranche.objects.filter(grant=grant, state=Tranche.State.SCHEDULED).update(
        state=Tranche.State.CANCELLED
    )
    grant.state = Grant.State.CANCELLED
    grant.save(update_fields=["state"])
    _event(grant, "cancel", from_state=from_state, to_state=grant.state, actor=actor, note=reason)
    return grant


@transaction.atomic
def clawback_record(*, tranche: Tranche, amount_yen: Any, reason: str, actor: User) -> Clawback:
    """Record that the CSO must give back (part of) a paid tranche."""
    _require(actor, "grant.cancel", tranche.grant, _("You may not record clawbacks."))
    tranche = (
        Tranche.objects.select_for_update(of=("self",)).select_related("grant").get(pk=tranche.pk)
    )
    if tranche.state != Tranche.State.PAID:
        raise ValidationError(_("Only a paid tranche can be clawed back."))
    if not _is_whole_yen(amount_yen) or amount_yen < 1:
        raise ValidationError({"amount_yen": _("The amount is whole yen, at least ¥1.")})
    already = tranche.clawbacks.aggregate(total=Sum("amount_yen"))["total"] or 0
    if already + amount_yen > tranche.amount_yen:
        raise ValidationError(
            {
                "amount_yen": _("At most ¥%(left)s of this tranche is left to claw back.")
                % {"left": f"{tranche.amount_yen - already:,}"}
            }
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the money is clawed back.")})
    clawback = Clawback.objects.create(
        tranche=tranche, amount_yen=amount_yen, reason=reason, recorded_by=actor
    )
    _event(
        tranche.grant,
        "clawback",
        tranche=tranche,
        actor=actor,
        note=f"¥{amount_yen:,} {reason}",
    )
    return clawback


# --- Bank accounts -------------------------------------------------------------------------------


@transaction.atomic
def bank_account_submit(
    *,
    organization: Organization,
    actor: User,
    bank_code: str,
    branch_code: str,
    account_type: str,
    account_number: str,
    holder_kana: str,
) -> BankAccount:
    """Enter (or change) a CSO's bank account: validated against the bank and branch list, the
    holder's name normalised to bank kana. Used for transfers once another staff member confirms."""
    _require(actor, "bank_account.submit", organization, _("You may not change this account."))
    bank_code, branch_code = (bank_code or "").strip(), (branch_code or "").strip()
    account_number = (account_number or "").strip()
    errors: dict[str, Any] = {}
    try:
        bank_kana, branch_kana = zengin.bank_names(bank_code, branch_code)
        bank_name, branch_name = zengin.bank_display_names(bank_code, branch_code)
    except ValidationError as e:
        errors.update(e.message_dict)
    if not (len(account_number) == 7 and account_number.isascii() and account_number.isdigit()):
        errors["account_number"] = [_("The account number is seven digits (pad with zeros).")]
    if account_type not in BankAccount.AccountType.values:
        errors["account_type"] = [_("Choose the account type.")]
    try:
        holder = zengin.normalize_kana(holder_kana or "", max_length=30)
    except ValidationError as e:
        errors["holder_kana"] = e.messages
    if errors:
        raise ValidationError(errors)
    account = BankAccount.objects.create(
        organization=organization,
        bank_code=bank_code,
        branch_code=branch_code,
        account_type=account_type,
        account_number=account_number,
        holder_kana=holder,
        bank_name_kana=bank_kana,
        branch_name_kana=branch_kana,
        bank_name=bank_name,
        branch_name=branch_name,
        submitted_by=actor,
    )
    BankAccountEvent.objects.create(account=account, action="submit", actor=actor)
    return account


@transaction.atomic
def bank_account_confirm(*, account: BankAccount, actor: User) -> BankAccount:
    """A second staff member confirms an entered account; it replaces the one used before."""
    _require(actor, "bank_account.confirm", account, _("Only finance staff confirm accounts."))
    _lock_organization(account.organization_id)
    account = BankAccount.objects.select_for_update().get(pk=account.pk)
    if account.submitted_by_id == actor.pk:
        raise PermissionDenied(_("You entered this account: another staff member confirms it."))
    if account.state != BankAccount.State.PENDING:
        raise ValidationError(_("Only an account awaiting confirmation can be confirmed."))
    _replace_confirmed(account.organization_id, actor)
    account.state = BankAccount.State.CONFIRMED
    account.confirmed_by = actor
    account.confirmed_at = timezone.now()
    account.save(update_fields=["state", "confirmed_by", "confirmed_at"])
    BankAccountEvent.objects.create(account=account, action="confirm", actor=actor)
    return account


def _lock_organization(organization_id: int) -> None:
    """One confirmation per organisation at a time: two staff confirming two new accounts at
    once would each see no other confirmed account and both confirm theirs (a test turns this
    off to show the race)."""
    Organization.objects.select_for_update().filter(pk=organization_id).first()


def _replace_confirmed(organization_id: int, actor: User) -> None:
    for old in BankAccount.objects.select_for_update().filter(
        organization_id=organization_id, state=BankAccount.State.CONFIRMED
    ):
        old.state = BankAccount.State.REPLACED
        old.save(update_fields=["state"])
        BankAccountEvent.objects.create(account=old, action="replace", actor=actor)


@transaction.atomic
def bank_account_reject(*, account: BankAccount, actor: User, note: str) -> BankAccount:
    _require(actor, "bank_account.confirm", account, _("Only finance staff confirm accounts."))
    account = BankAccount.objects.select_for_update().get(pk=account.pk)
    if account.state != BankAccount.State.PENDING:
        raise ValidationError(_("Only an account awaiting confirmation can be rejected."))
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say what is wrong with it.")})
    account.state = BankAccount.State.REJECTED
    account.save(update_fields=["state"])
    BankAccountEvent.objects.create(account=account, action="reject", actor=actor, note=note)
    return account


def confirmed_account(organization_id: int) -> BankAccount | None:
    return BankAccount.objects.filter(
        organization_id=organization_id, state=BankAccount.State.CONFIRMED
    ).first()


# --- Transfers -----------------------------------------------------------------------------------


def blockers_by_tranche(tranches: Sequence[Tranche], *, on: dt.date) -> dict[int, list[str]]:
    """Why each scheduled tranche cannot be paid on ``on`` (an empty list: it can), by tranche
    id — two queries however many tranches (the transfers page and the API list them all)."""
    organizations = {t.grant.organization_id for t in tranches}
    with_account = set(
        BankAccount.objects.filter(
            organization_id__in=organizations, state=BankAccount.State.CONFIRMED
        ).values_list("organization_id", flat=True)
    )
    waiting_reports: dict[int, list[dt.date]] = {}
    gated = {t.grant_id for t in tranches if t.requires_report}
    for grant_id, due_on in (
        Report.objects.filter(grant_id__in=gated)
        .exclude(state=Report.State.ACCEPTED)
        .values_list("grant_id", "due_on")
    ):
        waiting_reports.setdefault(grant_id, []).append(due_on)
    blockers = {}
    for tranche in tranches:
        reasons = []
        if tranche.state != Tranche.State.SCHEDULED:
            reasons.append(_("It is %(state)s.") % {"state": tranche.get_state_display()})
        if tranche.grant.state != Grant.State.APPROVED:
            reasons.append(_("The grant is not approved."))
        if tranche.due_on > on:
            reasons.append(_("It is due on %(date)s.") % {"date": tranche.due_on.isoformat()})
        if tranche.grant.organization_id not in with_account:
            reasons.append(_("The CSO has no confirmed bank account."))
        if tranche.requires_report and any(
            due_on <= tranche.due_on for due_on in waiting_reports.get(tranche.grant_id, ())
        ):
            reasons.append(_("The report due before it has not been accepted."))
        blockers[tranche.pk] = reasons
    return blockers


def tranche_blockers(tranche: Tranche, *, on: dt.date) -> list[str]:
    """Why one scheduled tranche cannot be paid on ``on`` (empty: it can)."""
    return blockers_by_tranche([tranche], on=on)[tranche.pk]


@transaction.atomic
def batch_create(
    *, transfer_date: dt.date, tranches: Iterable[Tranche], actor: User
) -> TransferBatch:
    """Finance collects due tranches into a batch for one bank business day."""
    _require(actor, "transfer.manage", message=_("Only finance staff make transfer batches."))
    if not zengin.is_bank_business_day(transfer_date):
        raise ValidationError(
            {
                "transfer_date": _("%(date)s is not a bank business day; the next one is %(next)s.")
                % {
                    "date": transfer_date.isoformat(),
                    "next": zengin.next_bank_business_day(transfer_date).isoformat(),
                }
            }
        )
    if transfer_date < today():
        raise ValidationError({"transfer_date": _("The transfer date has passed.")})
    ids = sorted({t.pk for t in tranches})
    if not ids:
        raise ValidationError({"tranches": _("Choose at least one tranche.")})
    locked = list(
        Tranche.objects.select_for_update(of=("self",))
        .select_related("grant")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    problems = []
    blockers = blockers_by_tranche(locked, on=transfer_date)
    for tranche in locked:
        if blockers[tranche.pk]:
            problems.append(f"{tranche}: {' '.join(blockers[tranche.pk])}")
    if len(locked) != len(ids):
        problems.append(_("A chosen tranche no longer exists."))
    if problems:
        raise ValidationError({"tranches": problems})
    batch = TransferBatch.objects.create(transfer_date=transfer_date, created_by=actor)
    for tranche in locked:
        try:
            with transaction.atomic():
                TransferLine.objects.create(
                    batch=batch,
                    tranche=tranche,
                    bank_account=confirmed_account(tranche.grant.organization_id),
                    amount_yen=tranche.amount_yen,
                )
        except IntegrityError:
            raise ValidationError(
                {"tranches": _("%(tranche)s is already in a batch.") % {"tranche": tranche}}
            ) from None
        tranche.state = Tranche.State.IN_BATCH
        tranche.save(update_fields=["state"])
        _event(
            tranche.grant,
            "batch",
            tranche=tranche,
            from_state=Tranche.State.SCHEDULED,
            to_state=tranche.state,
            actor=actor,
            note=str(batch),
        )
    TransferBatchEvent.objects.create(batch=batch, action="create", actor=actor)
    return batch


def _file_lines(batch: TransferBatch) -> list[zengin.TransferLine]:
    return [
        zengin.TransferLine(
            bank_code=line.bank_account.bank_code,
            bank_name_kana=line.bank_account.bank_name_kana,
            branch_code=line.bank_account.branch_code,
            branch_name_kana=line.bank_account.branch_name_kana,
            account_type=line.bank_account.account_type,
            account_number=line.bank_account.account_number,
            holder_kana=line.bank_account.holder_kana,
            amount=line.amount_yen,
            customer_code=f"{line.tranche.grant_id:010d}{line.tranche.number:010d}",
        )
        for line in batch.lines.select_related("bank_account", "tranche").order_by("pk")
    ]


@transaction.atomic
def batch_export(*, batch: TransferBatch, actor: User) -> bytes:
    """The batch's Zengin file: made at the first download and kept, so every later download is
    the same bytes the bank was given."""
    _require(actor, "transfer.manage", message=_("Only finance staff export transfers."))
    batch = TransferBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.file is not None:
        return bytes(batch.file)
    data = zengin.transfer_file(
        originator=zengin.originator_from_settings(),
        transfer_date=batch.transfer_date,
        lines=_file_lines(batch),
    )
    batch.file = data
    batch.state = TransferBatch.State.EXPORTED
    batch.save(update_fields=["file", "state"])
    TransferBatchEvent.objects.create(batch=batch, action="export", actor=actor)
    return data


def _settle_if_done(batch: TransferBatch, actor: User) -> None:
    if not batch.lines.filter(state=TransferLine.State.PENDING).exists():
        TransferBatch.objects.filter(pk=batch.pk).update(state=TransferBatch.State.SETTLED)
        TransferBatchEvent.objects.create(batch=batch, action="settle", actor=actor)


def _check_exported(batch: TransferBatch) -> None:
    # Read now: the caller's copy may predate the download.
    if TransferBatch.objects.get(pk=batch.pk).state == TransferBatch.State.DRAFT:
        raise ValidationError(_("Download the transfer file before recording what the bank did."))


def _check_paid_can_be_recorded(batch: TransferBatch) -> None:
    """A payment is recorded once the file went to the bank, on or after its transfer date."""
    _check_exported(batch)
    if batch.transfer_date > today():
        raise ValidationError(
            _("The transfer is dated %(date)s: record what the bank did on or after that day.")
            % {"date": batch.transfer_date.isoformat()}
        )


@transaction.atomic
def line_mark_paid(*, line: TransferLine, actor: User) -> bool:
    """The bank made this transfer: the tranche is paid (grant_payable → bank). Returns False
    if it was already recorded (a second click changes nothing)."""
    _require(actor, "transfer.manage", message=_("Only finance staff record transfers."))
    _check_paid_can_be_recorded(line.batch)
    if not TransferLine.objects.filter(pk=line.pk, state=TransferLine.State.PENDING).update(
        state=TransferLine.State.PAID
    ):
        return False
    tranche = (
        Tranche.objects.select_for_update(of=("self",))
        .select_related("grant")
        .get(pk=line.tranche_id)
    )
    post_entry(
        kind=EntryKind.TRANCHE_PAID,
        key=f"tranche:{tranche.pk}:paid",
        lines=[
            Line(tranche.grant.payable_account, debit=line.amount_yen),
            Line("bank", credit=line.amount_yen),
        ],
        memo=f"{tranche} {line.batch}",
        actor=actor,
    )
    tranche.state = Tranche.State.PAID
    tranche.paid_on = line.batch.transfer_date
    tranche.save(update_fields=["state", "paid_on"])
    _event(
        tranche.grant,
        "pay",
        tranche=tranche,
        from_state=Tranche.State.IN_BATCH,
        to_state=tranche.state,
        actor=actor,
        note=str(line.batch),
    )
    _after_payment(tranche.grant, actor)
    _settle_if_done(line.batch, actor)
    return True


@transaction.atomic
def line_mark_failed(*, line: TransferLine, actor: User, reason: str) -> bool:
    """The bank returned this transfer: the tranche is scheduled again, nothing is posted."""
    _require(actor, "transfer.manage", message=_("Only finance staff record transfers."))
    _check_exported(line.batch)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the transfer failed.")})
    if not TransferLine.objects.filter(pk=line.pk, state=TransferLine.State.PENDING).update(
        state=TransferLine.State.FAILED, failure_reason=reason
    ):
        return False
    tranche = (
        Tranche.objects.select_for_update(of=("self",))
        .select_related("grant")
        .get(pk=line.tranche_id)
    )
    tranche.state = Tranche.State.SCHEDULED
    tranche.save(update_fields=["state"])
    _event(
        tranche.grant,
        "transfer_failed",
        tranche=tranche,
        from_state=Tranche.State.IN_BATCH,
        to_state=tranche.state,
        actor=actor,
        note=f"{line.batch}: {reason}",
    )
    _settle_if_done(line.batch, actor)
    return True


@transaction.atomic
def batch_mark_paid(*, batch: TransferBatch, actor: User) -> int:
    """Every line still pending is paid; returns how many were recorded now."""
    _require(actor, "transfer.manage", message=_("Only finance staff record transfers."))
    _check_paid_can_be_recorded(batch)
    done = 0
    for line in batch.lines.filter(state=TransferLine.State.PENDING).select_related("batch"):
        done += line_mark_paid(line=line, actor=actor)
    return done


def _after_payment(grant: Grant, actor: User) -> None:
    """A grant whose tranches are all paid is paid; with its final report accepted, closed."""
    grant = _locked(grant)
    if grant.state != Grant.State.APPROVED:
        return
    if grant.tranches.exclude(state=Tranche.State.PAID).exists():
        return
    grant.state = Grant.State.PAID
    grant.save(update_fields=["state"])
    _event(grant, "paid", from_state=Grant.State.APPROVED, to_state=grant.state, actor=actor)
    _close_if_complete(grant, actor)


def _close_if_complete(grant: Grant, actor: User) -> None:
    final = grant.reports.filter(kind=Report.Kind.FINAL).first()
    if grant.state != Grant.State.PAID or final is None or final.state != Report.State.ACCEPTED:
        return
    grant.state = Grant.State.CLOSED
    grant.save(update_fields=["state"])
    _event(grant, "close", from_state=Grant.State.PAID, to_state=grant.state, actor=actor)
    _write_back(grant, final, actor)


def paid_yen(grant: Grant) -> int:
    return (
        grant.tranches.filter(state=Tranche.State.PAID).aggregate(total=Sum("amount_yen"))["total"]
        or 0
    )


def _write_back(grant: Grant, final: Report, actor: User) -> None:
    """Step 8 of the register: the grant's figures and the final report (project grants)."""
    if grant.project is None:
        return
    raised, matched = raised_and_matched([grant.project_id]).get(grant.project_id, (0, 0))
    report = "\n\n".join(part for part in (final.narrative, final.outcomes) if part)
    record_fund_outcome(
        proposal=grant.project.proposal,
        outcome=FundOutcome(
            grant=grant.reference,
            raised_yen=raised,
            matched_yen=matched,
            granted_yen=grant.amount_yen,
            fee_yen=grant.fee_yen,
            paid_yen=paid_yen(grant),
            report=report,
        ),
        assessed_on=timezone.localdate(),
        actor=actor,
    )


# --- Reports -------------------------------------------------------------------------------------


def _validate_attachment(upload: UploadedFile) -> None:
    name = (upload.name or "").lower()
    if not name.endswith(ATTACHMENT_TYPES):
        raise ValidationError(
            {
                "attachments": _("%(name)s: attach PDF, images, Office files, CSV or text.")
                % {"name": upload.name}
            }
        )
    if upload.size > MAX_ATTACHMENT_BYTES:
        raise ValidationError(
            {"attachments": _("%(name)s is larger than 10 MB.") % {"name": upload.name}}
        )


@transaction.atomic
def report_submit(
    *,
    report: Report,
    actor: User,
    narrative: str,
    outcomes: str,
    spent_yen: Any,
    attachments: Sequence[UploadedFile] = (),
) -> Report:
    """The CSO files a report (again, after the officer asked for changes)."""
    report = (
        Report.objects.select_for_update(of=("self",)).select_related("grant").get(pk=report.pk)
    )
    _require(actor, "grant.report", report.grant, _("Only the CSO's members file its reports."))
    if report.grant.state not in (Grant.State.APPROVED, Grant.State.PAID):
        raise ValidationError(_("Reports are filed on an approved grant."))
    if report.state not in (Report.State.DUE, Report.State.CHANGES_REQUESTED):
        raise ValidationError(_("This report has been filed and awaits the officer."))
    errors = {}
    narrative, outcomes = (narrative or "").strip(), (outcomes or "").strip()
    if not narrative:
        errors["narrative"] = [_("Say what was done.")]
    if not outcomes:
        errors["outcomes"] = [_("Say what came of it.")]
    if not _is_whole_yen(spent_yen) or spent_yen < 0:
        errors["spent_yen"] = [_("The money spent is whole yen (0 or more).")]
    if errors:
        raise ValidationError(errors)
    for upload in attachments:
        _validate_attachment(upload)
    from_state = report.state
    report.narrative, report.outcomes, report.spent_yen = narrative, outcomes, spent_yen
    report.state = Report.State.SUBMITTED
    report.submitted_by, report.submitted_at = actor, timezone.now()
    report.save()
    for upload in attachments:
        ReportAttachment.objects.create(
            report=report, file=upload, name=upload.name[:200], uploaded_by=actor
        )
    _event(
        report.grant,
        "report_submit",
        report=report,
        from_state=from_state,
        to_state=report.state,
        actor=actor,
    )
    return report


def _locked_submitted(report: Report, actor: User) -> Report:
    _require(actor, "grant.review_report", message=_("Only programme officers review reports."))
    report = (
        Report.objects.select_for_update(of=("self",)).select_related("grant").get(pk=report.pk)
    )
    if report.state != Report.State.SUBMITTED:
        raise ValidationError(_("Only a submitted report can be reviewed."))
    return report


@transaction.atomic
def report_accept(*, report: Report, actor: User, note: str = "") -> Report:
    """An officer accepts a report. The final one, once the grant is paid, closes the grant and
    writes its outcome back to the proposal's assessment."""
    report = _locked_submitted(report, actor)
    report.state = Report.State.ACCEPTED
    report.reviewed_by, report.reviewed_at = actor, timezone.now()
    report.review_note = (note or "").strip()
    report.save()
    _event(
        report.grant,
        "report_accept",
        report=report,
        from_state=Report.State.SUBMITTED,
        to_state=report.state,
        actor=actor,
        note=report.review_note,
    )
    if report.kind == Report.Kind.FINAL:
        _close_if_complete(_locked(report.grant), actor)
    return report


@transaction.atomic
def report_request_changes(*, report: Report, actor: User, note: str) -> Report:
    report = _locked_submitted(report, actor)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say what should change.")})
    report.state = Report.State.CHANGES_REQUESTED
    report.reviewed_by, report.reviewed_at = actor, timezone.now()
    report.review_note = note
    report.save()
    _event(
        report.grant,
        "report_changes",
        report=report,
        from_state=Report.State.SUBMITTED,
        to_state=report.state,
        actor=actor,
        note=note,
    )
    return report
