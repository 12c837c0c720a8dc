"""Celery tasks of the fund. Safe to run twice: ending a pool is a conditional state change."""

from celery import shared_task

from config.celery import one_at_a_time

from .matching import end_expired_pools


@shared_task(acks_late=True)
@one_at_a_time("end-expired-match-pools", timeout=600)
def end_expired_pools_task() -> int | None:
    """End the match pools whose window has passed (run by beat): what is left goes back."""
    return end_expired_pools()
