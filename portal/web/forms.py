"""Small helpers shared by the areas' forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import flash
from wtforms import SelectChoice


def options(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices; None becomes the empty "choose…" value."""
    return [SelectChoice("" if value is None else str(value), label) for value, label in pairs]


def int_or_none(value: Any) -> int | None:
    """Coerce a select's value to an id; anything else (empty, junk) is None."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


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
