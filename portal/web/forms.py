"""Small helpers shared by the areas' forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import flash
from markupsafe import Markup, escape
from wtforms import SelectChoice
from wtforms.widgets import Select

from portal.web.guard import MAX_ID


class LongSelect(Select):
    """WTForms' select, its plain options written straight out (the same markup): a select
    of tenants has hundreds, and WTForms builds each through html_params."""

    @classmethod
    def render_option(cls, choice: SelectChoice, **kwargs: Any) -> Markup:
        if kwargs or choice.render_kw or isinstance(choice.value, bool):
            return super().render_option(choice, **kwargs)
        selected = "selected " if choice.selected else ""
        label = escape(choice.label or choice.value)
        return Markup(f'<option {selected}value="{escape(choice.value)}">{label}</option>')


def options(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices; None becomes the empty "choose…" value."""
    return [SelectChoice("" if value is None else str(value), label) for value, label in pairs]


def int_or_none(value: Any, minimum: int = 1) -> int | None:
    """Coerce a select's value to an id (or, with minimum=0, a count); anything else
    (empty, junk, a number no database integer holds) is None."""
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.isdigit():
            return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if minimum <= number <= MAX_ID else None


def form_id(value: Any) -> int | None:
    """A select's id: None when nothing is chosen. Anything else that is no id becomes 0,
    which names nothing, so the service refuses it with its own message instead of taking
    it for "none chosen"."""
    if value in (None, ""):
        return None
    return int_or_none(value) or 0


def show_errors(form: Any, errors: dict[str | None, str], flash_rest: bool = False) -> None:
    """Put a service's field → message errors on the form's fields; messages about no
    field of this form become form-level errors, or flashed messages with flash_rest (for
    pages that show no form-level errors)."""
    for name, message in errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message]
        elif flash_rest:
            flash(message, "error")
        else:
            form.form_errors.append(message)
