"""Reads of gifts: donors per project, the donor wall, a project's progress with its donors,
and what sponsors' match pools added to gifts.

Money figures come from the ledger (``fund.selectors``); who gave comes from the gifts. A donor
is counted once per project by email (case-insensitive), however many gifts they made; a gift
refunded in full does not count. A gift's matches are found by its payment id, the key under
which ``fund.matching`` records them.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Max, QuerySet
from django.db.models.functions import Lower

from fund.models import MatchAllocation, MatchRelease, Project
from fund.selectors import Progress, matches_by_gift, progress_for, project_progress

from .models import Donation, Gift

WALL_SIZE = 60


def counted_gifts() -> QuerySet[Gift]:
    """Gifts that count toward donors: received and not refunded in full."""
    return Gift.objects.exclude(state=Gift.State.REFUNDED)


def donor_counts(project_ids: Iterable[int]) -> dict[int, int]:
    """Distinct donors per project, in ONE query whatever the number of projects or gifts."""
    rows = (
        counted_gifts()
        .filter(project_id__in=list(project_ids))
        .values("project_id")
        .annotate(donors=Count(Lower("donation__email"), distinct=True))
        .order_by()
        .values_list("project_id", "donors")
    )
    return dict(rows)


def progress_with_donors(projects: Iterable[Project]) -> dict[int, Progress]:
    """A page of projects' progress (raised, matched, goal, donors, days left): two queries."""
    projects = list(projects)
    return progress_for(projects, donors=donor_counts(p.pk for p in projects))


def progress_of(project: Project) -> Progress:
    return project_progress(project, donors=donor_counts([project.pk]).get(project.pk, 0))


@dataclass(frozen=True)
class WallEntry:
    name: str
    message: str


@dataclass(frozen=True)
class DonorWall:
    named: list[WallEntry]  # donors who chose to show their name, newest first
    anonymous: int  # the other donors


def donor_wall(project: Project, *, size: int = WALL_SIZE) -> DonorWall:
    """Names only of donors who opted in (publish_name and a display name); the rest counted.

    Two queries: the named donations (latest gift first), the total of donors.
    """
    named = (
        Donation.objects.filter(project=project, publish_name=True)
        .exclude(display_name="")
        .filter(gifts__in=counted_gifts())
        .annotate(last_gift=Max("gifts__received_at"))
        .order_by("-last_gift")
        .values_list("display_name", "message", "email")
    )
    entries, seen = [], set()
    for name, message, email in named[: size * 2]:
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        entries.append(WallEntry(name=name, message=message))
        if len(entries) == size:
            break
    total = donor_counts([project.pk]).get(project.pk, 0)
    return DonorWall(named=entries, anonymous=max(total - len(seen), 0))


def gifts_of(email: str) -> QuerySet[Gift]:
    """A donor's gifts, newest first (their history page)."""
    return (
        Gift.objects.filter(donation__email__iexact=email)
        .select_related("donation", "project")
        .order_by("-received_at", "-pk")
    )


# --- Matches -----------------------------------------------------------------------------------


def with_matches(gifts: Iterable[Gift]) -> list[Gift]:
    """The gifts as a list, each with ``matches``: what sponsors' pools added to it
    (``fund.selectors.GiftMatch``: matched, released after refunds, net). One query for the whole
    list, none for an empty one."""
    gifts = list(gifts)
    found = matches_by_gift(gift.payment_id for gift in gifts)
    for gift in gifts:
        gift.matches = found.get(gift.payment_id, [])
    return gifts


@dataclass(frozen=True)
class MatchHistory:
    """One pool's match of a gift and what refunds gave back of it, dated (the staff's view)."""

    allocation: MatchAllocation
    releases: list[MatchRelease]

    @property
    def released(self) -> int:
        return sum(release.amount for release in self.releases)

    @property
    def net(self) -> int:
        return self.allocation.amount - self.released


def match_history(gift: Gift) -> list[MatchHistory]:
    """The gift's matches with their pools and sponsors, each with its releases, for the
    foundation's gift page. Two queries."""
    allocations = (
        MatchAllocation.objects.filter(gift_key=gift.payment_id)
        .select_related("pool__sponsor")
        .prefetch_related("releases")
        .order_by("created_at", "pk")
    )
    return [MatchHistory(allocation=a, releases=list(a.releases.all())) for a in allocations]
