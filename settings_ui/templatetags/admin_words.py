"""`{% load admin_words %}`: `{{ text|error_words }}` rewords engine errors for the admin pages."""

from __future__ import annotations

from django import template

from settings_ui.words import error_words as _error_words

register = template.Library()


@register.filter
def error_words(text: str) -> str:
    return _error_words(str(text or ""))
