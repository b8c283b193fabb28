"""Small template helpers shared by every console page."""

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context, url_name: str, label: str, section: str):
    """A navigation link, marked current when the page's URL name starts with ``section``.

    A page whose URL is not there yet renders nothing rather than failing the whole layout.
    """
    try:
        href = reverse(url_name)
    except NoReverseMatch:
        return ""
    match = getattr(context.get("request"), "resolver_match", None)
    current = bool(match and (match.url_name or "").startswith(section))
    if current:
        return format_html('<a href="{}" aria-current="page">{}</a>', href, label)
    return format_html('<a href="{}">{}</a>', href, label)
