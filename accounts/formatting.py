"""How money and fiscal years are written for people: one place for every app."""


def format_yen(amount: int | None) -> str:
    """¥12,345 — integer yen only; a float here would be a bug upstream."""
    if amount is None:
        return ""
    if not isinstance(amount, int):
        raise TypeError(f"yen amounts are integers, not {type(amount).__name__}")
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,}"
