"""The password policy: every password a person chooses (`users create`, the password change
form, any account form) must pass it. Only the demo seed, whose passwords are published in
the README anyway, skips it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from portal.i18n import _

MIN_LENGTH = 12
MAX_LENGTH = 256
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line and not line.startswith("#"))


def password_problem(password: str, username: str) -> str | None:
    """Why this password may not be used, or None when it may."""
    if len(password) < MIN_LENGTH:
        return _("A password has at least %(min)s characters; this one has %(num)s.",
                 min=MIN_LENGTH, num=len(password))
    if len(password) > MAX_LENGTH:
        return _("A password has at most %(max)s characters.", max=MAX_LENGTH)
    if password.strip().lower() == username.strip().lower():
        return _("A password must not be the username.")
    if password.strip().lower() in common_passwords():
        return _("This password is on the list of the most common passwords; choose another.")
    return None
