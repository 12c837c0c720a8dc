from django import template
from django.utils.translation import get_language

from proposals.fiscal import era_label

register = template.Library()


@register.filter
def fiscal_year_label(fiscal_year):
    """令和7年度（2025年度） in Japanese, FY2025 in English."""
    if fiscal_year in (None, ""):
        return ""
    if (get_language() or "ja").startswith("ja"):
        return f"{era_label(int(fiscal_year))}（{fiscal_year}年度）"
    return f"FY{fiscal_year}"
