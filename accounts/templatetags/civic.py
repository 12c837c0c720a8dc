from django import template

from accounts.formatting import format_yen

register = template.Library()


@register.filter
def yen(amount):
    """{{ amount|yen }} → ¥12,345"""
    return format_yen(amount)
