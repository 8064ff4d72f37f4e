"""Text people type into names: trimmed, NFC-normalised, and free of characters that hide
or reorder what a reader sees — a right-to-left override turns ``prod-db`` into something
that reads otherwise, a zero-width space makes two names that look the same. Every
service checks its name-like fields with this one validator, so pages and API agree.
Letters of any script stay valid: 研發中心 is a fine tenant name."""

from __future__ import annotations

import unicodedata

from portal.i18n import _

MAX_DESCRIPTION = 10_000  # descriptions of groups, tenants, flavors, meshes, people groups

# Control, format (bidi overrides and isolates, zero-width space and joiners, byte-order
# mark), private-use, surrogate and unassigned code points, and line/paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
# Letters that draw nothing: Hangul fillers, the combining grapheme joiner, braille blank.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u2800")


def clean(value: str | None) -> str:
    """Trimmed and NFC-normalised: the same name typed on two keyboards is one name."""
    return unicodedata.normalize("NFC", (value or "").strip())


def hidden_character(value: str) -> str | None:
    """The first invisible or control character of ``value``, as U+XXXX, or None."""
    for char in value:
        if char in BLANK_LETTERS or unicodedata.category(char) in REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def name_problem(value: str, what: str | None = None) -> str | None:
    """Why ``value`` cannot be a name because of the characters in it, or None; ``what``
    is the field as the reader calls it, already translated (default: the name)."""
    code = hidden_character(value)
    if code is None:
        return None
    return _("%(what)s contains an invisible or control character (%(code)s); retype it "
             "without.", what=what or _("The name"), code=code)


def too_long(value: str, limit: int, what: str | None = None) -> str | None:
    if len(value) <= limit:
        return None
    return _("%(what)s has at most %(limit)s characters (this one has %(length)s).",
             what=what or _("The description"), limit=f"{limit:,}", length=f"{len(value):,}")
